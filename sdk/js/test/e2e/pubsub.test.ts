// Subscribe/publish against the real daemon: HTTP and client publishes, QoS 1 and 2, errors.
import assert from "node:assert/strict";
import { after, afterEach, before, test } from "node:test";
import { ServerError } from "../../src/index.js";
import { connected, disconnectAll, makeClient } from "../helpers/clients.js";
import { startDaemon, type Daemon } from "../helpers/daemon.js";
import { sleep, waitFor } from "../helpers/wait.js";

let daemon: Daemon;
before(async () => (daemon = await startDaemon()));
after(() => daemon.stop());
afterEach(disconnectAll);

test("HTTP publish reaches subscribers; client publish reaches the other clients", async () => {
    const a = makeClient(daemon.url);
    const b = makeClient(daemon.url, { user: "bob" });
    await Promise.all([connected(a.client), connected(b.client)]);
    await Promise.all([a.client.subscribe("chat:room1").ready(), b.client.subscribe("chat:room1").ready()]);

    const http = await daemon.api("publish", { channel: "chat:room1", data: { text: "from the backend" } });
    assert.equal(http.status, 200);
    const mine = await a.client.publish("chat:room1", { text: "from a" });
    assert.equal(mine.channel, "chat:room1");
    await waitFor(() => b.received.length == 2, "b to get both messages");
    assert.deepEqual(b.received.map((m) => m.data.text), ["from the backend", "from a"]);
    assert.equal(b.received[1].mid, mine.mid);
    assert.equal(b.received[1].offset, mine.offset);
    assert.equal(b.received[0].mid, http.body.mid);

    // the personal channel needs no subscription
    await daemon.api("send", { user: "bob", data: "for bob" });
    await waitFor(() => b.received.length == 3, "bob's personal message");
    assert.equal(b.received[2].channel, "$user:bob");
});

test("QoS 1 and QoS 2 from the HTTP API: acknowledged automatically, delivered once", async () => {
    const a = makeClient(daemon.url);
    await connected(a.client);
    await a.client.subscribe("chat:qos").ready();
    for (const qos of [1, 2]) {
        const res = await daemon.api("publish", { channel: "chat:qos", data: { qos }, qos, wait: { acks: 1, timeout_ms: 5000 } });
        assert.equal(res.status, 200);
        assert.equal(res.body.acked, 1, `QoS ${qos} acknowledged: ${JSON.stringify(res.body)}`);
    }
    await waitFor(() => a.received.length == 2, "both messages");
    assert.deepEqual(a.received.map((m) => [m.data.qos, m.qos]), [[1, 1], [2, 2]]);
    // the QoS 2 exchange finished: rec, rel, comp — nothing is resent
    await waitFor(() => a.frames.some((f) => f.includes('"type":"rel"')), "the rel");
    await sleep(300);
    assert.equal(a.received.length, 2);
});

test("client publishes with QoS 1 and 2 complete their exchanges", async () => {
    const a = makeClient(daemon.url);
    const b = makeClient(daemon.url);
    await Promise.all([connected(a.client), connected(b.client)]);
    await b.client.subscribe("chat:cq").ready();
    const r1 = await a.client.publish("chat:cq", "one", { qos: 1 });
    const r2 = await a.client.publish("chat:cq", "two", { qos: 2 });
    assert.ok(r2.offset == r1.offset + 1);
    await waitFor(() => b.received.length == 2, "both messages");
    assert.deepEqual(b.received.map((m) => [m.data, m.qos]), [["one", 1], ["two", 2]]);
});

test("server errors reject calls with ServerError and the protocol's code", async () => {
    const a = makeClient(daemon.url);
    await connected(a.client);
    await assert.rejects(a.client.publish("news", 1), (e: unknown) => e instanceof ServerError && e.code == 103);
    await assert.rejects(a.client.subscribe("nope:x").ready(), (e: unknown) => e instanceof ServerError && e.code == 102);
    await assert.rejects(a.client.subscribe("bad name").ready(), (e: unknown) => e instanceof ServerError && e.code == 110);
});

test("calls made before the connection exists are sent once connected", async () => {
    const b = makeClient(daemon.url);
    const sub = b.client.subscribe("chat:early");
    const published = b.client.publish("chat:early", "queued");
    b.client.connect();
    await sub.ready();
    await published;
    await waitFor(() => b.received.length == 1, "its own queued message");
});
