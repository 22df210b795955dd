import assert from "node:assert/strict";
import { afterEach, beforeEach, mock, test } from "node:test";
import { DisconnectedError, ServerError, TimeoutError, TooLargeError, WspushError, Wspush, type ConnectionState, type Publication } from "../../src/index.js";
import { FakeServer, plainWebSocketClass, settle } from "../helpers/fake-transport.js";

beforeEach(() => {
    mock.timers.enable({ apis: ["setTimeout"] });
    mock.method(Math, "random", () => 0.5); // backoff delays are exactly half their bound
});
afterEach(() => {
    mock.timers.reset();
    mock.restoreAll();
});

/**
 * Advances the fake clock in small steps: node 20's mock timers date a timer created inside a
 * callback from the end of the current tick, not from the moment the callback ran.
 */
function advance(ms: number, step = 10) {
    for (let t = 0; t < ms; t += step) mock.timers.tick(Math.min(step, ms - t));
}

function setup(options = {}) {
    const server = new FakeServer();
    const client = new Wspush("ws://test/ws", { transport: server.transport, minReconnectDelay: 1000, maxReconnectDelay: 8000, ...options });
    const states: ConnectionState[] = [];
    client.on("state", (s) => states.push(s));
    return { server, client, states };
}

test("state machine: connecting → connected → reconnecting → connected → disconnected", async () => {
    const { server, client, states } = setup();
    client.connect();
    assert.equal(client.state, "connecting");
    server.last.accept();
    assert.equal(client.state, "connected");
    server.last.serverClose(1006);
    assert.equal(client.state, "reconnecting");
    mock.timers.tick(500);
    server.last.accept({ resumed: true });
    client.disconnect();
    assert.deepEqual(states, ["connecting", "connected", "reconnecting", "connected", "disconnected"]);
    assert.deepEqual(server.last.closedWith, { code: 1000, reason: "bye" });
});

test("reconnect attempts back off exponentially with full jitter", () => {
    const { server, client } = setup();
    client.connect();
    server.last.accept();
    // Random is fixed at 0.5: delays are 500, 1000, 2000, 4000, 4000 (cap 8000 / 2).
    for (const delay of [500, 1000, 2000, 4000, 4000]) {
        const before = server.sockets.length;
        server.last.serverClose(1006);
        mock.timers.tick(delay - 1);
        assert.equal(server.sockets.length, before, `no attempt before ${delay} ms`);
        mock.timers.tick(1);
        assert.equal(server.sockets.length, before + 1, `an attempt at ${delay} ms`);
    }
    server.last.accept(); // success resets the exponent
    server.last.serverClose(1006);
    mock.timers.tick(500);
    assert.equal(server.sockets.length, 7);
});

test("a failed connect attempt (timeout) counts as a failure and is retried", () => {
    const { server, client } = setup({ connectTimeout: 3000 });
    client.connect();
    server.last.open(); // but never answers connect
    mock.timers.tick(3000);
    assert.equal(client.state, "reconnecting");
    assert.deepEqual(server.sockets[0].closedWith, { code: undefined, reason: undefined }); // abandoned
    mock.timers.tick(500);
    assert.equal(server.sockets.length, 2);
});

for (const [what, close] of [
    ["close code 4501", (s: FakeServer) => s.last.serverClose(4501, "unauthorized")],
    ["close code 4999", (s: FakeServer) => s.last.serverClose(4999, "")],
    ["close code 1009", (s: FakeServer) => s.last.serverClose(1009, "")],
    [
        "disconnect with reconnect:false",
        (s: FakeServer) => {
            s.last.push({ type: "disconnect", code: 4001, reason: "x", reconnect: false });
            s.last.serverClose(4001, "x");
        },
    ],
] as const) {
    test(`${what} stops reconnecting`, async () => {
        const { server, client } = setup();
        client.connect();
        server.last.accept();
        const pending = client.publish("chat:1", 1, { qos: 1 });
        close(server);
        assert.equal(client.state, "disconnected");
        await assert.rejects(pending, DisconnectedError);
        mock.timers.tick(60_000);
        assert.equal(server.sockets.length, 1);
    });
}

test("a reconnectable close (4002, 1001 with reconnect:true) reconnects", () => {
    const { server, client } = setup();
    client.connect();
    server.last.accept();
    server.last.push({ type: "disconnect", code: 1001, reason: "shutdown", reconnect: true });
    server.last.serverClose(1001, "shutdown");
    assert.equal(client.state, "reconnecting");
    mock.timers.tick(500);
    server.last.accept();
    server.last.serverClose(4002);
    assert.equal(client.state, "reconnecting");
});

test("calls made while connecting are queued and sent, in order, in one frame once connected", async () => {
    const { server, client } = setup();
    client.connect();
    const sub = client.subscribe("chat:a");
    const published = client.publish("chat:a", { n: 1 }, { qos: 1 });
    server.last.open();
    assert.deepEqual(server.last.sent.map((m) => m.type), ["connect"]); // nothing before connected
    server.last.accept();
    const socket = server.last;
    assert.equal(socket.frames.length, 2);
    assert.deepEqual(socket.sent.slice(1).map((m) => m.type), ["subscribe", "publish"]);
    const [subscribe, publish] = socket.sent.slice(1);
    socket.push(
        { id: subscribe.id, type: "subscribed", channel: "chat:a", offset: 3, epoch: "e" },
        { id: publish.id, type: "published", channel: "chat:a", offset: 4, mid: publish.mid },
    );
    assert.deepEqual(await published, { channel: "chat:a", offset: 4, mid: publish.mid });
    assert.deepEqual(await sub.ready(), { channel: "chat:a", offset: 3, epoch: "e", resumed: false });
    assert.equal(sub.state, "subscribed");
});

test("each queued call has its own timeout, counted from the call", async () => {
    const { server, client } = setup({ timeout: 5000, connectTimeout: 60_000 });
    client.connect();
    const short = client.publish("chat:a", 1, { timeout: 1000 });
    mock.timers.tick(500);
    const long = client.publish("chat:a", 2);
    mock.timers.tick(500);
    await assert.rejects(short, (err: unknown) => err instanceof TimeoutError && /publish/.test(err.message));
    server.last.accept();
    const publish = server.last.sentOfType("publish");
    assert.deepEqual(publish.map((m) => m.data), [2]); // the timed-out call is not sent late
    mock.timers.tick(4499);
    await settle();
    let longDone = false;
    long.catch(() => (longDone = true));
    await settle();
    assert.equal(longDone, false);
    mock.timers.tick(1); // 5000 ms after it was made
    await assert.rejects(long, TimeoutError);
});

test("server errors reject with ServerError and its code; uncorrelated ones are events", async () => {
    const { server, client } = setup();
    const errors: Error[] = [];
    client.on("error", (e) => errors.push(e));
    client.connect();
    server.last.accept();
    const p = client.publish("news", 1);
    const { id } = server.last.sentOfType("publish")[0];
    server.last.push({ id, type: "error", code: 103, message: "clients may not publish to this channel" });
    await assert.rejects(p, (err: unknown) => err instanceof ServerError && err.code == 103);
    server.last.push({ type: "error", code: 113, message: "qos violation" });
    assert.equal((errors[0] as ServerError).code, 113);
});

test("a refused subscription fails with an error event; 105 counts as subscribed", async () => {
    const { server, client } = setup();
    client.connect();
    server.last.accept();
    const bad = client.subscribe("nope:x");
    const dup = client.subscribe("chat:x");
    const [s1, s2] = server.last.sentOfType("subscribe");
    server.last.push({ id: s1.id, type: "error", code: 102, message: "unknown namespace" }, { id: s2.id, type: "error", code: 105, message: "" });
    await assert.rejects(bad.ready(), (err: unknown) => err instanceof ServerError && err.code == 102);
    assert.equal(bad.state, "unsubscribed");
    assert.equal(client.getSubscription("nope:x"), undefined);
    assert.equal(dup.state, "subscribed");
});

test("after a lost connection the session is resumed: no subscribe is sent again", async () => {
    const { server, client } = setup({ user: "u1" });
    client.connect();
    server.last.accept({ session: "S", resume: "R" });
    const sub = client.subscribe("chat:a");
    server.last.push({ id: server.last.sentOfType("subscribe")[0].id, type: "subscribed", channel: "chat:a", offset: 0, epoch: "e" });
    await sub.ready();
    server.last.serverClose(1006);
    assert.equal(sub.state, "subscribing");
    mock.timers.tick(500);
    server.last.open();
    assert.deepEqual(server.last.sentOfType("connect")[0], {
        type: "connect",
        id: server.last.sentOfType("connect")[0].id,
        user: "u1",
        client: "wspush-js/0.1.0",
        device: client.device,
        session: "S",
        resume: "R",
    });
    const events: unknown[] = [];
    sub.on("subscribed", (i) => events.push(i));
    server.last.accept({ session: "S", resume: "R2", resumed: true });
    assert.deepEqual(server.last.sentOfType("subscribe"), []);
    assert.deepEqual(events, [{ channel: "chat:a", resumed: true }]);
    // the next resume uses the newest token
    server.last.serverClose(1006);
    mock.timers.tick(500);
    server.last.open();
    assert.equal(server.last.sentOfType("connect")[0].resume, "R2");
});

test("when the session is not resumed every subscription is established again", async () => {
    const { server, client } = setup();
    client.connect();
    server.last.accept();
    const subs = ["chat:a", "chat:b"].map((c) => client.subscribe(c));
    for (const s of server.last.sentOfType("subscribe")) server.last.push({ id: s.id, type: "subscribed", channel: s.channel, offset: 0, epoch: "e" });
    server.last.serverClose(1006);
    mock.timers.tick(500);
    server.last.accept({ session: "S2", resumed: false });
    const again = server.last.sentOfType("subscribe");
    assert.deepEqual(again.map((m) => m.channel), ["chat:a", "chat:b"]);
    for (const s of again) server.last.push({ id: s.id, type: "subscribed", channel: s.channel, offset: 9, epoch: "e2" });
    assert.deepEqual(subs.map((s) => s.state), ["subscribed", "subscribed"]);
});

test("unsubscribe: sent when the server has it, 111 is not an error, nothing sent for a never-sent one", async () => {
    const { server, client } = setup();
    const local = client.subscribe("chat:local");
    await local.unsubscribe();
    client.connect();
    server.last.accept();
    assert.deepEqual(server.last.sentOfType("subscribe"), []);
    const sub = client.subscribe("chat:a");
    server.last.push({ id: server.last.sentOfType("subscribe")[0].id, type: "subscribed", channel: "chat:a", offset: 0, epoch: "e" });
    const done = sub.unsubscribe();
    const { id } = server.last.sentOfType("unsubscribe")[0];
    server.last.push({ id, type: "error", code: 111, message: "not subscribed" });
    await done;
    assert.equal(sub.state, "unsubscribed");
});

test("QoS ≥ 1 publishes are resent with the same mid until answered; a written QoS 0 one fails", async () => {
    const { server, client } = setup();
    client.connect();
    server.last.accept();
    const q1 = client.publish("chat:a", "one", { qos: 1 });
    const q0 = client.publish("chat:a", "zero", { qos: 0 });
    const first = server.last.sentOfType("publish")[0];
    server.last.serverClose(1006);
    await assert.rejects(q0, DisconnectedError);
    mock.timers.tick(500);
    server.last.accept({ resumed: true });
    const resent = server.last.sentOfType("publish");
    assert.equal(resent.length, 1);
    assert.equal(resent[0].mid, first.mid);
    assert.equal(resent[0].data, "one");
    server.last.push({ id: resent[0].id, type: "published", channel: "chat:a", offset: 1, mid: first.mid });
    assert.equal((await q1).mid, first.mid);
});

test("QoS 2 publish: pubrec → pubrel (resent after a loss) → pubcomp", async () => {
    const { server, client } = setup();
    client.connect();
    server.last.accept();
    const done = client.publish("chat:a", "x", { qos: 2, mid: "my-mid" });
    const publish = server.last.sentOfType("publish")[0];
    assert.equal(publish.mid, "my-mid");
    server.last.push({ id: publish.id, type: "pubrec", channel: "chat:a", offset: 5, mid: "my-mid" });
    await settle();
    assert.equal(server.last.sentOfType("pubrel")[0].mid, "my-mid");
    server.last.serverClose(1006);
    mock.timers.tick(500);
    server.last.accept({ resumed: true });
    const pubrel = server.last.sentOfType("pubrel")[0];
    assert.equal(pubrel.mid, "my-mid");
    server.last.push({ id: pubrel.id, type: "pubcomp", mid: "my-mid" });
    assert.deepEqual(await done, { channel: "chat:a", offset: 5, mid: "my-mid" });
});

test("incoming QoS: answered automatically, duplicates never reach the app", () => {
    const { server, client } = setup();
    client.connect();
    server.last.accept();
    const sub = client.subscribe("chat:a");
    const got: Publication[] = [];
    const all: Publication[] = [];
    sub.on("message", (m) => got.push(m));
    client.on("message", (m) => all.push(m));
    const base = { type: "message", channel: "chat:a", epoch: "e", ts: 1 };
    const socket = server.last;
    socket.push(
        { ...base, offset: 1, mid: "m1", data: "a", qos: 1, did: 1 },
        { ...base, offset: 1, mid: "m1", data: "a", qos: 1, did: 1, dup: true },
        { ...base, offset: 2, mid: "m2", data: "b", qos: 2, did: 2 },
        { ...base, offset: 2, mid: "m2", data: "b", qos: 2, did: 2, dup: true },
        { ...base, offset: 3, mid: "m3", data: "c" },
        { ...base, offset: 3, mid: "m3", data: "c" },
        { type: "message", channel: "$user:u", offset: 1, epoch: "e", ts: 1, mid: "m4", data: "d" },
    );
    socket.push({ type: "rel", did: 2 });
    assert.deepEqual(got.map((m) => m.data), ["a", "b", "c"]);
    assert.deepEqual(all.map((m) => m.data), ["a", "b", "c", "d"]);
    assert.deepEqual(got[0], { channel: "chat:a", data: "a", offset: 1, epoch: "e", mid: "m1", ts: 1, qos: 1 });
    const answers = socket.sent.filter((m) => ["ack", "rec", "comp"].includes(m.type));
    assert.deepEqual(answers, [
        { type: "ack", did: 1 },
        { type: "ack", did: 1 },
        { type: "rec", did: 2 },
        { type: "rec", did: 2 },
        { type: "comp", did: 2 },
    ]);
    // the answers to one incoming frame leave in one frame
    assert.equal(socket.frames.at(-2)!.split("\n").length, 4);
});

test("heartbeat: pings when idle, declares a silent connection dead and reconnects", () => {
    const { server, client } = setup();
    client.connect();
    server.last.accept({ ping_interval: 2, pong_timeout: 1.5 });
    advance(2000);
    assert.deepEqual(server.last.sentOfType("ping"), [{ type: "ping" }]);
    server.last.push({ type: "pong" });
    advance(3000);
    assert.equal(client.state, "connected");
    advance(500); // 2 s idle → ping; 1.5 s more of silence → dead
    assert.equal(client.state, "reconnecting");
    assert.deepEqual(server.sockets[0].closedWith, { code: undefined, reason: undefined });
    advance(500);
    assert.equal(server.sockets.length, 2);
});

/** Fakes a browser's window and document for `fn`; returns the removeEventListener calls. */
function withBrowser(fn: (win: EventTarget, doc: EventTarget & { visibilityState?: string }) => void): string[] {
    const g = globalThis as any;
    const win = new EventTarget();
    const removed: string[] = [];
    g.addEventListener = win.addEventListener.bind(win);
    g.removeEventListener = (type: string, l: any) => (removed.push(type), win.removeEventListener(type, l));
    const doc = (g.document = new EventTarget() as any);
    const removeDoc = doc.removeEventListener.bind(doc);
    doc.removeEventListener = (type: string, l: any) => (removed.push(type), removeDoc(type, l));
    try {
        fn(win, doc);
    } finally {
        delete g.addEventListener;
        delete g.removeEventListener;
        delete g.document;
    }
    return removed;
}

test("browsers: online/visibilitychange check the connection or retry at once", () => {
    const removed = withBrowser((win, doc) => {
        const { server, client } = setup();
        client.connect();
        server.last.accept();
        doc.dispatchEvent(new Event("visibilitychange"));
        assert.equal(server.last.sentOfType("ping").length, 1); // liveness check now
        mock.timers.tick(10_000);
        assert.equal(client.state, "reconnecting"); // no answer within pong_timeout
        assert.equal(server.sockets.length, 1);
        win.dispatchEvent(new Event("online"));
        assert.equal(server.sockets.length, 2); // no waiting for the backoff
        client.disconnect();
    });
    assert.deepEqual(removed.sort(), ["offline", "online", "visibilitychange"]);
});

test("browsers: a page becoming hidden, or going offline, does not skip the backoff", () => {
    withBrowser((win, doc) => {
        const { server, client } = setup();
        client.connect();
        server.last.accept();
        doc.visibilityState = "hidden";
        doc.dispatchEvent(new Event("visibilitychange"));
        assert.equal(server.last.sentOfType("ping").length, 0); // no liveness check for a hidden page
        server.last.serverClose(1006);
        doc.dispatchEvent(new Event("visibilitychange"));
        win.dispatchEvent(new Event("offline"));
        assert.equal(server.sockets.length, 1);
        doc.visibilityState = "visible";
        doc.dispatchEvent(new Event("visibilitychange"));
        assert.equal(server.sockets.length, 2);
        client.disconnect();
    });
});

test("getToken is called for every attempt", async () => {
    let n = 0;
    const { server, client } = setup({ getToken: async () => `t${++n}` });
    client.connect();
    await settle();
    server.last.open();
    assert.equal(server.last.sentOfType("connect")[0].token, "t1");
    server.last.serverClose(1006);
    mock.timers.tick(500);
    await settle();
    server.last.open();
    assert.equal(server.last.sentOfType("connect")[0].token, "t2");
});

test("a refused connect is an error event, sends nothing more, and its close ends reconnecting", async () => {
    const { server, client } = setup();
    const errors: Error[] = [];
    client.on("error", (e) => errors.push(e));
    client.connect();
    const pending = client.publish("chat:a", 1, { qos: 1 });
    server.last.open();
    const { id } = server.last.sentOfType("connect")[0];
    server.last.push({ id, type: "error", code: 101, message: "unauthorized" });
    assert.equal((errors[0] as ServerError).code, 101);
    assert.equal(client.state, "connecting"); // not connected: the queued publish stays queued
    assert.deepEqual(server.last.sentOfType("publish"), []);
    server.last.serverClose(4501, "unauthorized");
    assert.equal(client.state, "disconnected");
    await assert.rejects(pending, DisconnectedError);
    mock.timers.tick(60_000);
    assert.equal(server.sockets.length, 1);
});

test("calling disconnect() from a `disconnected` or `state` listener stops the reconnecting", () => {
    for (const event of ["disconnected", "state"] as const) {
        const { server, client } = setup();
        client.connect();
        server.last.accept();
        const off = client.on(event, () => client.disconnect());
        server.last.serverClose(1006);
        off();
        assert.equal(client.state, "disconnected", event);
        mock.timers.tick(60_000);
        assert.equal(server.sockets.length, 1, event);
    }
});

test("publish() and subscribe() from a `disconnected` listener are sent on the next connection", async () => {
    const { server, client } = setup();
    client.connect();
    server.last.accept();
    let published: Promise<unknown> | undefined;
    client.once("disconnected", () => {
        published = client.publish("chat:a", "late", { qos: 1 });
        client.subscribe("chat:b");
    });
    server.last.serverClose(1006);
    mock.timers.tick(500);
    server.last.accept({ resumed: true });
    const [publish] = server.last.sentOfType("publish");
    assert.equal(publish.data, "late");
    assert.deepEqual(server.last.sentOfType("subscribe").map((m) => m.channel), ["chat:b"]);
    server.last.push({ id: publish.id, type: "published", channel: "chat:a", offset: 1, mid: publish.mid });
    await published;
});

test("an unsubscribe that times out while queued is still sent once connected, until answered", async () => {
    const { server, client } = setup({ timeout: 1000, connectTimeout: 60_000 });
    client.connect();
    server.last.accept();
    const sub = client.subscribe("chat:a");
    server.last.push({ id: server.last.sentOfType("subscribe")[0].id, type: "subscribed", channel: "chat:a", offset: 0, epoch: "e" });
    server.last.serverClose(1006);
    const done = sub.unsubscribe();
    mock.timers.tick(1000);
    await assert.rejects(done, TimeoutError);
    mock.timers.tick(500);
    server.last.accept({ resumed: true });
    const [unsubscribe] = server.last.sentOfType("unsubscribe");
    assert.equal(unsubscribe.channel, "chat:a");
    server.last.serverClose(1006); // lost again before the answer: sent again
    mock.timers.tick(1000);
    server.last.accept({ resumed: true });
    assert.equal(server.last.sentOfType("unsubscribe")[0].channel, "chat:a");
});

test("unsubscribe() while subscribing rejects the waiting ready()", async () => {
    const { server, client } = setup();
    client.connect();
    server.last.accept();
    const sub = client.subscribe("chat:a");
    const ready = sub.ready();
    const done = sub.unsubscribe();
    await assert.rejects(ready, WspushError);
    const [subscribe] = server.last.sentOfType("subscribe");
    server.last.push({ id: subscribe.id, type: "subscribed", channel: "chat:a", offset: 0, epoch: "e" });
    server.last.push({ id: server.last.sentOfType("unsubscribe")[0].id, type: "unsubscribed", channel: "chat:a" });
    await done;
    assert.equal(sub.state, "unsubscribed");
});

test("options given as undefined take their defaults", () => {
    const { server, client } = setup({ connectTimeout: undefined, minReconnectDelay: undefined, maxReconnectDelay: undefined, timeout: undefined });
    client.connect();
    mock.timers.tick(9999);
    assert.equal(client.state, "connecting");
    mock.timers.tick(1);
    assert.equal(client.state, "reconnecting"); // after the default 10000 ms
    mock.timers.tick(249); // default minReconnectDelay 500, random 0.5
    assert.equal(server.sockets.length, 1);
    mock.timers.tick(1);
    assert.equal(server.sockets.length, 2);
});

test("a piece that is not an object is ignored; the rest of the frame and later frames work", () => {
    const { server, client } = setup();
    client.connect();
    server.last.accept();
    const got: unknown[] = [];
    client.on("message", (m) => got.push(m.data));
    server.last.push(null as any, 7 as any, { type: "message", channel: "chat:a", offset: 1, epoch: "e", mid: "m", ts: 1, data: "x", qos: 1, did: 1 });
    assert.deepEqual(got, ["x"]);
    assert.deepEqual(server.last.sentOfType("ack"), [{ type: "ack", did: 1 }]);
    client.publish("chat:a", 1);
    assert.equal(server.last.sentOfType("publish").length, 1); // written at once: no batch left behind
});

test("info carries the connected reply without the resume token", () => {
    const { server, client } = setup();
    client.connect();
    server.last.accept({ session: "S", resume: "secret" });
    assert.equal(client.info!.session, "S");
    assert.ok(!("resume" in client.info!));
});

test("a publish over the frame limit fails with TooLargeError; batches stay under it in UTF-8 bytes", async () => {
    const { server, client } = setup({ maxMessageSize: 8000 });
    client.connect();
    server.last.accept();
    await assert.rejects(client.publish("chat:a", "€".repeat(2700)), TooLargeError); // 2700 characters, 8100 bytes
    assert.equal(client.state, "connected");
    assert.deepEqual(server.last.sentOfType("publish"), []);
    client.disconnect();
    client.connect();
    for (let i = 0; i < 4; i++) client.publish("chat:a", "€".repeat(2000)).catch(() => {}); // 6000 bytes each
    server.last.accept();
    const frames = server.last.frames.slice(1);
    assert.equal(frames.length, 4);
    for (const f of frames) assert.ok(Buffer.byteLength(f) <= 8000);
});

test("without terminate (browsers, React Native) an abandoned attempt closes with 4000, keeping the session", () => {
    const closes: unknown[] = [];
    const PlainWS = plainWebSocketClass(closes);
    const client = new Wspush("ws://test/ws", { WebSocket: PlainWS, connectTimeout: 1000, watchNetwork: false });
    client.connect();
    mock.timers.tick(1000);
    assert.deepEqual(closes, [[4000, "abandoned"]]);
    client.disconnect();
});
