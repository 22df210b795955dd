// Floods of duplicates never reach the application.
import assert from "node:assert/strict";
import { after, afterEach, before, test } from "node:test";
import WebSocket, { WebSocketServer } from "ws";
import { connected, disconnectAll, makeClient } from "../helpers/clients.js";
import { startDaemon, type Daemon } from "../helpers/daemon.js";
import { sleep, waitFor } from "../helpers/wait.js";

let daemon: Daemon;
// Resend unanswered deliveries after 50 ms (then doubling), and never give up on the connection.
before(async () => (daemon = await startDaemon({ config: { qos: { ack_timeout: 0.05, max_redeliveries: 1000 } } })));
after(() => daemon.stop());
afterEach(disconnectAll);

const occurrences = (frames: string[], needle: string) => frames.reduce((n, f) => n + f.split(needle).length - 1, 0);

test("withheld acks make the daemon resend QoS 1/2 messages: each reaches the app once", async () => {
    let withholding = true;
    // Loses the client's ack/rec answers while `withholding`, as a broken network would.
    class Lossy extends WebSocket {
        override send(data: any, ...rest: any[]) {
            const kept = String(data)
                .split("\n")
                .filter((line) => !(withholding && /"type":"(ack|rec)"/.test(line)));
            if (kept.length) super.send(kept.join("\n"), ...rest);
        }
    }
    const a = makeClient(daemon.url, {}, Lossy);
    await connected(a.client);
    await a.client.subscribe("chat:dup").ready();

    const N = 10;
    for (let i = 0; i < N; i++) {
        await daemon.api("publish", { channel: "chat:dup", data: i, qos: 1 });
        await daemon.api("publish", { channel: "chat:dup", data: N + i, qos: 2 });
    }
    // 50 + 100 + 200 + 400 ms: several resends of each message
    await waitFor(() => occurrences(a.frames, '"dup":true') >= 3 * 2 * N, "the daemon's resends", 10_000);
    withholding = false;
    // once answered, the exchanges finish: rec → rel → comp
    await waitFor(() => occurrences(a.frames, '"type":"rel"') >= N, "a rel for every QoS 2 message", 10_000);
    const dups = occurrences(a.frames, '"dup":true');
    await sleep(500);
    console.log(`duplicates: ${dups} resent copies of ${2 * N} messages arrived; the app saw ${a.received.length}`);
    assert.deepEqual(
        a.received.map((m) => m.data).sort((x, y) => x - y),
        [...Array(2 * N).keys()],
    );
    assert.ok(occurrences(a.frames, '"dup":true') - dups < N, "resending stopped once answered");
});

test("a fake server flooding copies (with and without dup) gets each message to the app once", async () => {
    const server = new WebSocketServer({ port: 0, host: "127.0.0.1" });
    await new Promise((r) => server.once("listening", r));
    const answers: any[] = [];
    server.on("connection", (ws) => {
        ws.on("message", (raw) => {
            for (const line of String(raw).split("\n")) {
                const m = JSON.parse(line);
                if (m.type == "connect") {
                    ws.send(JSON.stringify({ id: m.id, type: "connected", client: "f", user: "", session: "s", resume: "r", resumed: false, ping_interval: 25, pong_timeout: 10, node: "fake", version: "0" }));
                } else if (m.type == "subscribe") {
                    ws.send(JSON.stringify({ id: m.id, type: "subscribed", channel: m.channel, offset: 0, epoch: "e" }));
                    const base = { type: "message", channel: m.channel, epoch: "e", ts: 1 };
                    const flood: object[] = [];
                    for (let i = 0; i < 50; i++) {
                        flood.push({ ...base, offset: 1, mid: "q0", data: "zero" }); // QoS 0, no dup flag: same mid
                        flood.push({ ...base, offset: 2, mid: "q1", data: "one", qos: 1, did: 1, ...(i && { dup: true }) });
                        flood.push({ ...base, offset: 3, mid: "q2", data: "two", qos: 2, did: 2, ...(i && { dup: true }) });
                    }
                    // in one frame and as separate frames
                    ws.send(flood.map((x) => JSON.stringify(x)).join("\n"));
                    for (const x of flood.slice(0, 30)) ws.send(JSON.stringify(x));
                    ws.send(JSON.stringify({ type: "rel", did: 2 }));
                    ws.send(JSON.stringify({ ...base, offset: 4, mid: "q3", data: "three" }));
                } else answers.push(m);
            }
        });
    });
    try {
        const port = (server.address() as { port: number }).port;
        const a = makeClient(`ws://127.0.0.1:${port}/ws`);
        await connected(a.client);
        a.client.subscribe("chat:flood");
        await waitFor(() => a.received.some((m) => m.data == "three"), "the last message");
        assert.deepEqual(a.received.map((m) => m.data), ["zero", "one", "two", "three"]);
        await waitFor(() => answers.some((m) => m.type == "comp"), "the comp");
        const count = (type: string) => answers.filter((m) => m.type == type).length;
        assert.deepEqual([count("ack"), count("rec"), count("comp")], [60, 60, 1]); // every copy answered
    } finally {
        disconnectAll();
        server.close();
    }
});

test("repeated publishes (same Idempotency-Key, same client mid) are published once", async () => {
    const a = makeClient(daemon.url);
    await connected(a.client);
    await a.client.subscribe("chat:idem").ready();
    const body = { channel: "chat:idem", data: "once", qos: 1 };
    const offsets = new Set<number>();
    for (let i = 0; i < 10; i++) offsets.add((await daemon.api("publish", body, { "Idempotency-Key": "k-1" })).body.offset);
    const mine = await Promise.all([1, 2, 3].map(() => a.client.publish("chat:idem", "mine", { qos: 1, mid: "fixed-mid" })));
    assert.equal(offsets.size, 1);
    assert.deepEqual(new Set(mine.map((r) => r.offset)).size, 1);
    await sleep(300);
    assert.deepEqual(a.received.map((m) => m.data), ["once", "mine"]);
});
