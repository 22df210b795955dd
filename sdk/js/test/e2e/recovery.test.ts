// Recovery of missed publications from channel history, and history reads, against the real
// daemon. The memory engine loses history with the process, so recovered:true is tested by
// keeping the network down until the daemon forgets the sessions (sessions.ttl 1 s): the clients
// then come back with resumed:false to a daemon that still has the history.
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { ServerError, type SubscribedInfo } from "../../src/index.js";
import { connected, disconnectAll, makeClient, type TestClient } from "../helpers/clients.js";
import { startDaemon, type Daemon } from "../helpers/daemon.js";
import { Forwarder } from "../helpers/forwarder.js";
import { sleep, waitFor } from "../helpers/wait.js";

afterEach(disconnectAll);

const HISTORY = { history_size: 1000, history_ttl: 300, recovery_max: 1000 };
const CLIENTS = 10;

/** Publishes 0, 1, 2, … to `channel` over HTTP, one at a time, until `stop()`. */
function startPublisher(daemon: Daemon, channel: string) {
    const published: number[] = [];
    let running = true;
    const done = (async () => {
        for (let i = 0; running; i++) {
            const res = await daemon.api("publish", { channel, data: i });
            assert.equal(res.status, 200, JSON.stringify(res.body));
            published.push(i);
            await sleep(10); // about 100 per second: the outage below stays well within recovery_max
        }
    })();
    return {
        published,
        stop: async () => {
            running = false;
            await done;
        },
    };
}

/** `clients` subscribed to `channel`, each with the list of its `subscribed` events. */
async function subscribeAll(clients: TestClient[], channel: string): Promise<SubscribedInfo[][]> {
    const infos: SubscribedInfo[][] = clients.map(() => []);
    await Promise.all(clients.map((c) => connected(c.client)));
    await Promise.all(
        clients.map((c, i) => {
            const sub = c.client.subscribe(channel);
            sub.on("subscribed", (info) => infos[i].push(info));
            return sub.ready();
        }),
    );
    return infos;
}

test(`${CLIENTS} clients whose sessions expired while their network was down recover every publication, once, in order`, async () => {
    const channel = "feed";
    const daemon = await startDaemon({ config: { channel_defaults: HISTORY, sessions: { ttl: 1 } } });
    const forwarder = await Forwarder.start(daemon.port);
    try {
        const clients = [...Array(CLIENTS)].map(() => makeClient(forwarder.url, { minReconnectDelay: 100, maxReconnectDelay: 500 }));
        const infos = await subscribeAll(clients, channel);
        const sessions = clients.map((c) => c.client.info!.session);
        const publisher = startPublisher(daemon, channel);
        await waitFor(() => clients.every((c) => c.received.length >= 20), "live publications everywhere");

        forwarder.refuseNew(true);
        forwarder.cut();
        const cutAt = publisher.published.length;
        await waitFor(() => clients.every((c) => c.client.state == "reconnecting"), "every client to notice");
        await sleep(3000); // three times sessions.ttl: the daemon has forgotten every session
        const whileDown = publisher.published.length - cutAt;
        forwarder.refuseNew(false);
        await waitFor(() => infos.every((list) => list.length >= 2), "every client to subscribe again", 20_000);
        await sleep(300); // live publications after the recovered ones
        await publisher.stop();
        const all = publisher.published;
        await waitFor(() => clients.every((c) => c.received.length >= all.length), "every publication everywhere", 20_000);
        await sleep(300); // time for duplicates to show up, if any
        console.log(`recovery: ${CLIENTS} clients, ${all.length} publications, ${whileDown} of them while the network was down`);

        assert.ok(whileDown > 0);
        for (const [i, c] of clients.entries()) {
            assert.equal(c.client.info!.resumed, false, `client ${i}: a new session`);
            assert.notEqual(c.client.info!.session, sessions[i]);
            assert.equal(infos[i][0].recovered, undefined, `client ${i}: the first subscribe asks for no recovery`);
            for (const info of infos[i].slice(1)) assert.equal(info.recovered, true, `client ${i}: ${JSON.stringify(info)}`);
            // exactly once, in order: the channel was new, so its offsets are 1, 2, 3, …
            assert.deepEqual(c.received.map((m) => m.data), all, `client ${i}`);
            assert.deepEqual(c.received.map((m) => m.offset), all.map((_, k) => k + 1), `client ${i}`);
        }
    } finally {
        disconnectAll();
        forwarder.close();
        await daemon.stop();
    }
});

test("without history, a daemon restart tells the app recovered:false", async () => {
    const channel = "news";
    const config = { channel_defaults: { history_size: 0 } };
    let daemon = await startDaemon({ config });
    const port = daemon.port;
    const clients = [...Array(5)].map(() => makeClient(daemon.url, { minReconnectDelay: 200, maxReconnectDelay: 1000 }));
    const infos = await subscribeAll(clients, channel);
    await daemon.api("publish", { channel, data: "before" });
    await waitFor(() => clients.every((c) => c.received.length == 1), "the first publication everywhere");

    await daemon.stop("SIGTERM");
    await waitFor(() => clients.every((c) => c.client.state == "reconnecting"), "every client to notice");
    daemon = await startDaemon({ port, config });
    try {
        await waitFor(() => infos.every((list) => list.length == 2), "every client to subscribe again", 20_000);
        for (const [i, c] of clients.entries()) {
            const [first, again] = infos[i];
            assert.equal(first.recovered, undefined);
            assert.equal(again.recovered, false, JSON.stringify(again));
            assert.equal(again.resumed, false);
            assert.deepEqual(c.client.getSubscription(channel)!.position, { offset: again.offset, epoch: again.epoch });
        }
        await daemon.api("publish", { channel, data: "after" });
        await waitFor(() => clients.every((c) => c.received.length == 2), "the second publication everywhere");
        assert.ok(clients.every((c) => c.received[1].data == "after"));
    } finally {
        disconnectAll();
        await daemon.stop();
    }
});

test("history(): forward, reverse, limits; 103 where clients may not read history, 107 for bad parameters", async () => {
    // `client_history` is the namespace option that lets clients read history.
    const daemon = await startDaemon({
        config: { channel_defaults: HISTORY, namespaces: { chat: { client_publish: true }, hist: { ...HISTORY, client_history: true } } },
    });
    try {
        const a = makeClient(daemon.url);
        await connected(a.client);
        for (let i = 1; i <= 5; i++) await daemon.api("publish", { channel: "hist:a", data: { n: i } });
        const offsets = (r: { publications: { offset: number }[] }) => r.publications.map((p) => p.offset);

        const all = await a.client.history("hist:a");
        assert.equal(all.channel, "hist:a");
        assert.equal(all.offset, 5);
        assert.equal(typeof all.epoch, "string");
        assert.deepEqual(offsets(all), [1, 2, 3, 4, 5]);
        assert.deepEqual(all.publications.map((p) => p.data.n), [1, 2, 3, 4, 5]);
        assert.ok(all.publications.every((p) => typeof p.mid == "string" && typeof p.ts == "number"));
        assert.deepEqual(offsets(await a.client.history("hist:a", { since: 2, limit: 2 })), [3, 4]);
        assert.deepEqual(offsets(await a.client.history("hist:a", { reverse: true, limit: 2 })), [5, 4]);
        assert.deepEqual(offsets(await a.client.history("hist:a", { reverse: true, since: 3 })), [2, 1]);

        await assert.rejects(a.client.history("feed"), (e: unknown) => e instanceof ServerError && e.code == 103);
        await assert.rejects(a.client.history("hist:a", { limit: -1 }), (e: unknown) => e instanceof ServerError && e.code == 107);
    } finally {
        disconnectAll();
        await daemon.stop();
    }
});
