// Connections that die without a close frame: the heartbeat finds them, the client reconnects
// and resumes its session.
import assert from "node:assert/strict";
import { after, afterEach, before, test } from "node:test";
import { connected, disconnectAll, makeClient } from "../helpers/clients.js";
import { startDaemon, type Daemon } from "../helpers/daemon.js";
import { Forwarder } from "../helpers/forwarder.js";
import { waitFor } from "../helpers/wait.js";

// Short heartbeats so that a dead connection is found within about 2 s.
const PING_INTERVAL = 1;
const PONG_TIMEOUT = 1;

let daemon: Daemon;
let forwarder: Forwarder;
before(async () => {
    daemon = await startDaemon({ config: { websocket: { ping_interval: PING_INTERVAL, pong_timeout: PONG_TIMEOUT } } });
    forwarder = await Forwarder.start(daemon.port);
});
after(async () => {
    forwarder.close();
    await daemon.stop();
});
afterEach(disconnectAll);

test("a frozen connection (no FIN, no close frame) is detected by the heartbeat and replaced", async () => {
    const a = makeClient(forwarder.url);
    const closes: { code: number; reason: string }[] = [];
    a.client.on("disconnected", (c) => closes.push(c));
    await connected(a.client);
    await a.client.subscribe("chat:net").ready();
    const session = a.client.info!.session;

    forwarder.freeze();
    const frozenAt = performance.now();
    await waitFor(() => a.client.state == "reconnecting", "the heartbeat to give up", 10_000);
    const detectedMs = performance.now() - frozenAt;
    console.log(`heartbeat: a frozen connection was detected after ${detectedMs.toFixed(0)} ms`);
    assert.deepEqual(closes, [{ code: 1006, reason: "no answer to ping" }]);
    assert.ok(detectedMs < (PING_INTERVAL + PONG_TIMEOUT) * 1000 + 1500, `detected after ${detectedMs} ms`);

    await waitFor(() => a.client.state == "connected", "the reconnect", 10_000);
    assert.equal(a.client.info!.session, session);
    assert.equal(a.client.info!.resumed, true);
    await daemon.api("publish", { channel: "chat:net", data: "still here" });
    await waitFor(() => a.received.length == 1, "a message on the resumed session");
});

test("a reset connection reconnects at once and QoS 1 messages sent meanwhile arrive", async () => {
    const a = makeClient(forwarder.url);
    await connected(a.client);
    await a.client.subscribe("chat:reset").ready();
    forwarder.cut();
    // Published while the client is away: waits in the session (QoS 1).
    await daemon.api("publish", { channel: "chat:reset", data: "while away", qos: 1 });
    await waitFor(() => a.received.length == 1, "the waiting message after the resume", 10_000);
    assert.equal(a.client.info!.resumed, true);
    assert.equal(a.received[0].data, "while away");
});
