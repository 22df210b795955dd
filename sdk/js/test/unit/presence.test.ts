import assert from "node:assert/strict";
import { mock, test } from "node:test";
import { ServerError, TimeoutError, Wspush } from "../../src/index.js";
import { FakeServer, useFakeTime, connectedClient } from "../helpers/fake-transport.js";

useFakeTime();

const connected = connectedClient;

const clients = [
    { client: "0123456789abcdef", user: "alice", device: "", node: "n1", connected_at: 1700000000000, info: { name: "Alice" } },
    { client: "fedcba9876543210", user: "", device: "", node: "n2", connected_at: 1700000000500 },
];

test("presence(): sends the channel and resolves with the server's entries as they are", async () => {
    const { server, client } = connected();
    const done = client.presence("room");
    const [req] = server.last.sentOfType("presence");
    assert.deepEqual(req, { type: "presence", id: req.id, channel: "room" });
    server.last.push({ id: req.id, type: "presence", channel: "room", clients });
    const result = await done;
    assert.deepEqual(result, { channel: "room", clients });
    assert.deepEqual(result.clients[0].info, { name: "Alice" });
    assert.equal("info" in result.clients[1], false);
});

test("presenceStats(): sends the channel and resolves with the counts", async () => {
    const { server, client } = connected();
    const done = client.presenceStats("room");
    const [req] = server.last.sentOfType("presence_stats");
    assert.deepEqual(req, { type: "presence_stats", id: req.id, channel: "room" });
    server.last.push({ id: req.id, type: "presence_stats", channel: "room", clients: 3, users: 2 });
    assert.deepEqual(await done, { channel: "room", clients: 3, users: 2 });
});

test("presence() and presenceStats(): an error reply rejects with ServerError and its code", async () => {
    const { server, client } = connected();
    const denied = client.presence("room");
    const unavailable = client.presenceStats("room");
    const unknown = client.presenceStats("nope:x");
    const [p] = server.last.sentOfType("presence");
    const [s, n] = server.last.sentOfType("presence_stats");
    server.last.push(
        { id: p.id, type: "error", code: 103, message: "permission denied" },
        { id: s.id, type: "error", code: 115, message: "temporarily unavailable" },
        { id: n.id, type: "error", code: 102, message: "unknown namespace" },
    );
    await assert.rejects(denied, (e: unknown) => e instanceof ServerError && e.code == 103);
    await assert.rejects(unavailable, (e: unknown) => e instanceof ServerError && e.code == 115);
    await assert.rejects(unknown, (e: unknown) => e instanceof ServerError && e.code == 102);
});

test("presence(): waits for a connection, is resent when the answer was lost, and times out", async () => {
    const server = new FakeServer();
    const client = new Wspush("ws://test/ws", { transport: server.transport, minReconnectDelay: 1000, connectTimeout: 60_000 });
    const done = client.presence("room");
    const stats = client.presenceStats("room", { timeout: 2000 });
    client.connect();
    server.last.accept();
    assert.equal(server.last.sentOfType("presence").length, 1);
    assert.equal(server.last.sentOfType("presence_stats").length, 1);
    server.last.serverClose(1006);
    mock.timers.tick(500);
    server.last.accept({ resumed: true });
    const [again] = server.last.sentOfType("presence");
    assert.equal(again.channel, "room");
    server.last.push({ id: again.id, type: "presence", channel: "room", clients: [] });
    assert.deepEqual(await done, { channel: "room", clients: [] });
    mock.timers.tick(1500);
    await assert.rejects(stats, TimeoutError);
});
