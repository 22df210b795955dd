// Recovery of missed publications: `since` on a new subscribe, `recovered` told to the app, the
// server's `unsubscribed` push, and duplicates across the boundary.
import assert from "node:assert/strict";
import { mock, test } from "node:test";
import { Wspush, type Publication, type SubscribedInfo, type Subscription } from "../../src/index.js";
import { FakeServer, type FakeSocket, useFakeTime } from "../helpers/fake-transport.js";

useFakeTime();

const message = (channel: string, offset: number, epoch = "E", extra = {}) => ({
    type: "message",
    channel,
    offset,
    epoch,
    mid: `m${offset}`,
    ts: 1,
    data: offset,
    ...extra,
});

/** A connected client subscribed to `channel` at `offset` (epoch E), recording what the app sees. */
function subscribed(channel = "news", offset = 40) {
    const server = new FakeServer();
    const client = new Wspush("ws://test/ws", { transport: server.transport, minReconnectDelay: 1000 });
    client.connect();
    server.last.accept();
    const sub = client.subscribe(channel);
    const got: number[] = [];
    const infos: SubscribedInfo[] = [];
    sub.on("message", (m: Publication) => got.push(m.offset));
    sub.on("subscribed", (i) => infos.push(i));
    const first = server.last.sentOfType("subscribe")[0];
    server.last.push({ id: first.id, type: "subscribed", channel, offset, epoch: "E" });
    return { server, client, sub, got, infos, first };
}

/** Loses the connection and answers the next connect as a new session. */
function newSession(server: FakeServer): FakeSocket {
    server.last.serverClose(1006);
    mock.timers.tick(500);
    server.last.accept({ session: "S2", resumed: false });
    return server.last;
}

const lastSubscribe = (socket: FakeSocket) => socket.sentOfType("subscribe").at(-1);

test("the first subscribe carries no since; the reply gives the position", () => {
    const { sub, first, infos } = subscribed();
    assert.deepEqual(first, { type: "subscribe", id: first.id, channel: "news" });
    assert.deepEqual(infos, [{ channel: "news", offset: 40, epoch: "E", resumed: false }]);
    assert.ok(!("recovered" in infos[0]));
    assert.deepEqual(sub.position, { offset: 40, epoch: "E" });
});

test("after resumed:false the subscribe carries since = the last delivered position; recovered:true is surfaced", () => {
    const { server, sub, got, infos } = subscribed();
    server.last.push(message("news", 41), message("news", 42));
    const socket = newSession(server);
    const again = lastSubscribe(socket);
    assert.deepEqual(again.since, { offset: 42, epoch: "E" });
    socket.push(
        { id: again.id, type: "subscribed", channel: "news", offset: 45, epoch: "E", recovered: true },
        message("news", 43),
        message("news", 44),
        message("news", 45),
    );
    assert.deepEqual(infos.at(-1), { channel: "news", offset: 45, epoch: "E", resumed: false, recovered: true });
    assert.equal(sub.state, "subscribed");
    assert.deepEqual(got, [41, 42, 43, 44, 45]);
    assert.deepEqual(sub.position, { offset: 45, epoch: "E" });
});

test("recovered:false is surfaced and the position moves to the channel's current top", async () => {
    const { server, sub, infos } = subscribed();
    const socket = newSession(server);
    const again = lastSubscribe(socket);
    assert.deepEqual(again.since, { offset: 40, epoch: "E" });
    socket.push({ id: again.id, type: "subscribed", channel: "news", offset: 7, epoch: "F", recovered: false });
    assert.deepEqual(infos.at(-1), { channel: "news", offset: 7, epoch: "F", resumed: false, recovered: false });
    assert.equal((await sub.ready()).recovered, false);
    assert.deepEqual(sub.position, { offset: 7, epoch: "F" });
    // the next recovery starts from there
    const next = newSession(server);
    assert.deepEqual(lastSubscribe(next).since, { offset: 7, epoch: "F" });
});

test("a server that ignores since (no recovered field) counts as not recovered", () => {
    const { server, infos } = subscribed();
    const socket = newSession(server);
    socket.push({ id: lastSubscribe(socket).id, type: "subscribed", channel: "news", offset: 50, epoch: "E" });
    assert.equal(infos.at(-1)!.recovered, false);
});

test("a connection lost during a recovery recovers again from the last publication delivered, not the top", () => {
    const { server } = subscribed();
    let socket = newSession(server);
    socket.push({ id: lastSubscribe(socket).id, type: "subscribed", channel: "news", offset: 50, epoch: "E", recovered: true }, message("news", 41));
    socket = newSession(server);
    assert.deepEqual(lastSubscribe(socket).since, { offset: 41, epoch: "E" });
});

test("a first subscribe lost with its connection is sent again without since", () => {
    const server = new FakeServer();
    const client = new Wspush("ws://test/ws", { transport: server.transport, minReconnectDelay: 1000 });
    client.subscribe("news");
    client.connect();
    server.last.accept();
    assert.equal(lastSubscribe(server.last).since, undefined);
    const socket = newSession(server);
    assert.equal(socket.sentOfType("subscribe").length, 1);
    assert.equal(lastSubscribe(socket).since, undefined);
});

test("after a resumed session nothing is subscribed again", () => {
    const { server, infos } = subscribed();
    server.last.serverClose(1006);
    mock.timers.tick(500);
    server.last.accept({ resumed: true });
    assert.deepEqual(server.last.sentOfType("subscribe"), []);
    assert.deepEqual(infos.at(-1), { channel: "news", resumed: true });
});

test("the unsubscribed push with resubscribe:true: subscribed again at once with since", () => {
    const { server, sub, infos } = subscribed();
    const socket = server.last;
    socket.push(message("news", 41));
    socket.push({ type: "unsubscribed", channel: "news", reason: "insufficient state", resubscribe: true });
    assert.equal(sub.state, "subscribing");
    const again = lastSubscribe(socket);
    assert.notEqual(again.id, socket.sentOfType("subscribe")[0].id);
    assert.deepEqual(again.since, { offset: 41, epoch: "E" });
    socket.push({ id: again.id, type: "subscribed", channel: "news", offset: 43, epoch: "E", recovered: true });
    assert.equal(sub.state, "subscribed");
    assert.equal(infos.at(-1)!.recovered, true);
    // a second push while that subscribe is on its way would not send another
    socket.push({ type: "unsubscribed", channel: "news", reason: "insufficient state", resubscribe: true });
    socket.push({ type: "unsubscribed", channel: "news", reason: "insufficient state", resubscribe: true });
    assert.equal(socket.sentOfType("subscribe").length, 3);
});

test("the unsubscribed push without resubscribe ends the subscription and tells the app", async () => {
    const { server, client, sub } = subscribed();
    const ended: unknown[] = [];
    sub.on("unsubscribed", (i) => ended.push(i));
    server.last.push({ type: "unsubscribed", channel: "news", reason: "channel closed" });
    assert.deepEqual(ended, [{ channel: "news", reason: "channel closed" }]);
    assert.equal(sub.state, "unsubscribed");
    assert.equal(client.getSubscription("news"), undefined);
    await sub.unsubscribe(); // nothing left to undo
    assert.deepEqual(server.last.sentOfType("unsubscribe"), []);
    // nothing is subscribed again on the next session
    const socket = newSession(server);
    assert.deepEqual(socket.sentOfType("subscribe"), []);
});

test("the reply to our own unsubscribe is not taken for a push", async () => {
    const { server, sub } = subscribed();
    const ended: unknown[] = [];
    sub.on("unsubscribed", (i) => ended.push(i));
    const done = sub.unsubscribe();
    const { id } = server.last.sentOfType("unsubscribe")[0];
    server.last.push({ id, type: "unsubscribed", channel: "news" });
    await done;
    assert.deepEqual(ended, []);
});

test("the position only moves forward within its epoch", () => {
    const { server, sub } = subscribed();
    const socket = server.last;
    socket.push(message("news", 43), message("news", 41, "E", { qos: 1, did: 1 })); // a QoS 1 message overtaken by a QoS 0 one
    assert.deepEqual(sub.position, { offset: 43, epoch: "E" });
    socket.push(message("news", 1, "F")); // another epoch: the recovery must report the change
    assert.deepEqual(sub.position, { offset: 43, epoch: "E" });
});

test("duplicates across the boundary: a publication delivered before the new session is not delivered again", () => {
    const { server, got } = subscribed();
    server.last.push(message("news", 41), message("news", 42, "E", { qos: 1, did: 1 }));
    const socket = newSession(server);
    const again = lastSubscribe(socket);
    // the server repeats what the client had (e.g. a QoS 1 copy the old session resent), then the rest
    socket.push(
        { id: again.id, type: "subscribed", channel: "news", offset: 44, epoch: "E", recovered: true },
        message("news", 42, "E", { qos: 1, did: 1 }),
        message("news", 43),
        message("news", 44),
    );
    assert.deepEqual(got, [41, 42, 43, 44]);
    assert.deepEqual(socket.sentOfType("ack"), [{ type: "ack", did: 1 }]); // still answered
});

test("duplicates across the boundary: a recovered publication the app already saw live is dropped", () => {
    const { server, got } = subscribed();
    const socket = server.last;
    socket.push({ type: "unsubscribed", channel: "news", reason: "insufficient state", resubscribe: true });
    const again = lastSubscribe(socket);
    assert.deepEqual(again.since, { offset: 40, epoch: "E" });
    // a QoS 1 message the session still held arrives live after the push; the recovery repeats it
    socket.push(message("news", 41, "E", { qos: 1, did: 5 }));
    socket.push({ id: again.id, type: "subscribed", channel: "news", offset: 42, epoch: "E", recovered: true }, message("news", 41), message("news", 42));
    assert.deepEqual(got, [41, 42]);
});

test("the same offset on another channel or in another epoch is not a duplicate", () => {
    const { server, client, got } = subscribed();
    const other: Subscription = client.subscribe("other");
    const otherGot: number[] = [];
    other.on("message", (m) => otherGot.push(m.offset));
    server.last.push(message("news", 41), message("other", 41), message("news", 41, "F"));
    assert.deepEqual(got, [41, 41]);
    assert.deepEqual(otherGot, [41]);
});

for (const [code, why] of [
    [115, "the server's engine unavailable"],
    [116, "too many requests"],
] as const) {
    test(`a subscribe refused with ${code} (${why}) is tried again with backoff, with since`, () => {
        const server = new FakeServer();
        const client = new Wspush("ws://test/ws", { transport: server.transport, minReconnectDelay: 1000, maxReconnectDelay: 8000 });
        client.connect();
        server.last.accept();
        const sub = client.subscribe("news");
        const infos: SubscribedInfo[] = [];
        const errors: unknown[] = [];
        sub.on("subscribed", (i) => infos.push(i));
        sub.on("error", (e) => errors.push(e));
        const socket = server.last;
        for (let attempt = 1; attempt <= 3; attempt++) {
            const sent = socket.sentOfType("subscribe");
            assert.equal(sent.length, attempt);
            socket.push({ id: sent.at(-1).id, type: "error", code, message: why });
            assert.equal(sub.state, "subscribing", "the subscription waits");
            mock.timers.tick(Math.min(8000, 1000 * 2 ** (attempt - 1)) / 2 - 1); // random() is 0.5
            assert.equal(socket.sentOfType("subscribe").length, attempt, "not before its delay");
            mock.timers.tick(1);
            assert.equal(socket.sentOfType("subscribe").length, attempt + 1);
        }
        const last = socket.sentOfType("subscribe").at(-1);
        socket.push({ id: last.id, type: "subscribed", channel: "news", offset: 3, epoch: "E" });
        assert.equal(sub.state, "subscribed");
        assert.equal(infos.length, 1);
        assert.deepEqual(errors, []);
        assert.equal(client.getSubscription("news"), sub);
    });
}
