// Channel presence against the real daemon (memory engine): who is subscribed to a channel, and
// how many connections and distinct users that makes.
import assert from "node:assert/strict";
import { after, afterEach, before, test } from "node:test";
import { ServerError, type PresenceStats } from "../../src/index.js";
import { connected, disconnectAll, makeClient } from "../helpers/clients.js";
import { startDaemon, type Daemon } from "../helpers/daemon.js";
import { sleep } from "../helpers/wait.js";

// Namespaces do not inherit from channel_defaults: each one names its own presence options.
// `quiet` keeps presence but does not let clients read it.
const PRESENCE = { presence: true, client_presence: true };
let daemon: Daemon;
before(
    async () =>
        (daemon = await startDaemon({
            config: {
                node_name: "n1",
                presence_ttl: 60,
                channel_defaults: PRESENCE,
                namespaces: { chat: { client_publish: true }, room: PRESENCE, quiet: { presence: true } },
            },
        })),
);
after(() => daemon?.stop());
afterEach(disconnectAll);

test("presence and presenceStats list the connections subscribed to a channel", async () => {
    const started = Date.now();
    const clients = [makeClient(daemon.url, { user: "alice" }), makeClient(daemon.url, { user: "alice" }), makeClient(daemon.url, { user: "bob" })];
    await Promise.all(clients.map((c) => connected(c.client)));
    await Promise.all(clients.map((c) => c.client.subscribe("room:lobby").ready()));
    const [a1, a2, b] = clients.map((c) => c.client);

    assert.deepEqual(await b.presenceStats("room:lobby"), { channel: "room:lobby", clients: 3, users: 2 });

    const presence = await a1.presence("room:lobby");
    assert.equal(presence.channel, "room:lobby");
    const byClient = (x: { client: string }, y: { client: string }) => (x.client < y.client ? -1 : 1);
    const expected = [a1, a2, b].map((c) => ({ client: c.info!.client, user: c.info!.user })).sort(byClient);
    assert.deepEqual(presence.clients.map(({ client, user }) => ({ client, user })).sort(byClient), expected);
    for (const entry of presence.clients) {
        assert.match(entry.client, /^[0-9a-f]{16}$/);
        assert.equal(entry.node, "n1");
        // Each client sends its (generated) device id; the server echoes it in `connected`.
        const owner = [a1, a2, b].find((c) => c.info!.client == entry.client)!;
        assert.equal(entry.device, owner.info!.device);
        assert.equal(typeof entry.connected_at, "number");
        assert.ok(entry.connected_at >= started - 1000 && entry.connected_at <= Date.now() + 1000, `connected_at ${entry.connected_at}`);
        assert.equal(entry.info, undefined);
    }

    // One alice leaves the channel; she may still ask (presence does not require a subscription).
    await a2.getSubscription("room:lobby")!.unsubscribe();
    let stats: PresenceStats | undefined;
    for (const deadline = Date.now() + 5000; Date.now() < deadline; await sleep(50)) {
        stats = await a2.presenceStats("room:lobby");
        if (stats.clients == 2) break;
    }
    assert.deepEqual(stats, { channel: "room:lobby", clients: 2, users: 2 });
    const left = await a2.presence("room:lobby");
    assert.deepEqual(left.clients.map((e) => e.client).sort(), [a1.info!.client, b.info!.client].sort());
});

test("presence refused: 103 without client_presence, 102 for an unknown namespace, 110 for a bad channel", async () => {
    const a = makeClient(daemon.url, { user: "carol" });
    await connected(a.client);
    await a.client.subscribe("quiet:x").ready();
    const code = (n: number) => (e: unknown) => e instanceof ServerError && e.code == n;
    await assert.rejects(a.client.presence("quiet:x"), code(103));
    await assert.rejects(a.client.presenceStats("quiet:x"), code(103));
    await assert.rejects(a.client.presence("chat:x"), code(103)); // no presence at all
    await assert.rejects(a.client.presenceStats("nope:x"), code(102));
    await assert.rejects(a.client.presence("bad name"), code(110));
    // The connection is still fine afterwards.
    assert.deepEqual(await a.client.presenceStats("room:empty"), { channel: "room:empty", clients: 0, users: 0 });
});
