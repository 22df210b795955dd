// Several nodes on the Redis engine: a client whose node dies reconnects to another node (the
// forwarder plays nginx choosing another upstream), gets "resumed":false, subscribes again with
// `since` and recovers from Redis what it missed: nothing missed, nothing shown twice.
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import type { SubscribedInfo } from "../../src/index.js";
import { connected, disconnectAll, makeClient } from "../helpers/clients.js";
import { startDaemon, type Daemon } from "../helpers/daemon.js";
import { Forwarder } from "../helpers/forwarder.js";
import { startRedis } from "../helpers/redis.js";
import { sleep, waitFor } from "../helpers/wait.js";

afterEach(disconnectAll);

const CLIENTS = 10;

test(`${CLIENTS} clients of a node killed with SIGKILL recover every publication on another node, once, in order`, async () => {
    const redis = await startRedis();
    const node = (name: string) =>
        startDaemon({
            config: {
                node_name: name,
                engine: "redis",
                redis: { addresses: [redis.address], prefix: "e2e" },
                channel_defaults: { history_size: 1000, history_ttl: 300, recovery_max: 1000 },
            },
        });
    const daemons: Daemon[] = [];
    let forwarder: Forwarder | undefined;
    try {
        const [a, b] = [await node("a"), await node("b")];
        daemons.push(a, b);
        await Promise.all([a.ready(), b.ready()]);
        forwarder = await Forwarder.start(a.port);
        const channel = "feed";
        const clients = [...Array(CLIENTS)].map(() => makeClient(forwarder!.url, { minReconnectDelay: 100, maxReconnectDelay: 500 }));
        const infos: SubscribedInfo[][] = clients.map(() => []);
        await Promise.all(clients.map((c) => connected(c.client)));
        await Promise.all(
            clients.map((c, i) => {
                const sub = c.client.subscribe(channel);
                sub.on("subscribed", (info) => infos[i].push(info));
                return sub.ready();
            }),
        );

        // The backend publishes through node b, which lives throughout.
        const published: number[] = [];
        let running = true;
        const publisher = (async () => {
            for (let i = 0; running; i++) {
                const res = await b.api("publish", { channel, data: i });
                assert.equal(res.status, 200, JSON.stringify(res.body));
                published.push(i);
                await sleep(10);
            }
        })();
        await waitFor(() => clients.every((c) => c.received.length >= 20), "live publications through node a");

        forwarder.retarget(b.port);
        await a.stop("SIGKILL");
        await waitFor(() => infos.every((list) => list.length >= 2), "every client to subscribe again on node b", 20_000);
        await sleep(300);
        running = false;
        await publisher;
        await waitFor(() => clients.every((c) => c.received.length >= published.length), "every publication everywhere", 20_000);
        await sleep(300); // time for duplicates to show up, if any

        for (const [i, c] of clients.entries()) {
            assert.equal(c.client.info!.resumed, false, `client ${i}: node b has no session of node a`);
            for (const info of infos[i].slice(1)) assert.equal(info.recovered, true, `client ${i}: ${JSON.stringify(info)}`);
            assert.deepEqual(c.received.map((m) => m.data), published, `client ${i}: every publication once, in order`);
            assert.deepEqual(c.received.map((m) => m.offset), published.map((_, k) => k + 1), `client ${i}`);
        }
    } finally {
        disconnectAll();
        forwarder?.close();
        for (const daemon of daemons) await daemon.stop("SIGKILL").catch(() => {});
        await redis.stop();
    }
});
