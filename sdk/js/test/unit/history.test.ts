import assert from "node:assert/strict";
import { mock, test } from "node:test";
import { ServerError, TimeoutError, Wspush } from "../../src/index.js";
import { FakeServer, useFakeTime, connectedClient } from "../helpers/fake-transport.js";

useFakeTime();

const connected = connectedClient;

const publications = [
    { offset: 41, mid: "a", ts: 1, data: { n: 1 } },
    { offset: 42, mid: "b", ts: 2, data: { n: 2 } },
];

test("history(): sends only the options given and resolves with the server's answer", async () => {
    const { server, client } = connected();
    const all = client.history("c");
    const some = client.history("c", { since: 40, limit: 2, reverse: false });
    const [first, second] = server.last.sentOfType("history");
    assert.deepEqual(first, { type: "history", id: first.id, channel: "c" });
    assert.deepEqual(second, { type: "history", id: second.id, channel: "c", since: 40, limit: 2, reverse: false });
    server.last.push(
        { id: first.id, type: "history", channel: "c", epoch: "E", offset: 42, publications },
        { id: second.id, type: "history", channel: "c", epoch: "E", offset: 42, publications: [] },
    );
    assert.deepEqual(await all, { channel: "c", epoch: "E", offset: 42, publications });
    assert.deepEqual(await some, { channel: "c", epoch: "E", offset: 42, publications: [] });
});

test("history(): reverse reads newest first", async () => {
    const { server, client } = connected();
    const done = client.history("c", { reverse: true, limit: 2 });
    const [req] = server.last.sentOfType("history");
    assert.deepEqual(req, { type: "history", id: req.id, channel: "c", limit: 2, reverse: true });
    server.last.push({ id: req.id, type: "history", channel: "c", epoch: "E", offset: 42, publications: [...publications].reverse() });
    assert.deepEqual((await done).publications.map((p) => p.offset), [42, 41]);
});

test("history(): an error reply rejects with ServerError and its code", async () => {
    const { server, client } = connected();
    const denied = client.history("c");
    const bad = client.history("c", { limit: 5000 });
    const [a, b] = server.last.sentOfType("history");
    server.last.push(
        { id: a.id, type: "error", code: 103, message: "history is not available to clients here" },
        { id: b.id, type: "error", code: 107, message: "limit out of range" },
    );
    await assert.rejects(denied, (e: unknown) => e instanceof ServerError && e.code == 103);
    await assert.rejects(bad, (e: unknown) => e instanceof ServerError && e.code == 107);
});

test("history(): waits for a connection, is resent when the answer was lost, and times out", async () => {
    const server = new FakeServer();
    const client = new Wspush("ws://test/ws", { transport: server.transport, minReconnectDelay: 1000, connectTimeout: 60_000 });
    const done = client.history("c", { since: 3 });
    const late = client.history("c", { timeout: 2000 });
    client.connect();
    server.last.accept();
    assert.equal(server.last.sentOfType("history").length, 2);
    server.last.serverClose(1006);
    mock.timers.tick(500);
    server.last.accept({ resumed: true });
    const [again] = server.last.sentOfType("history");
    assert.equal(again.since, 3);
    server.last.push({ id: again.id, type: "history", channel: "c", epoch: "E", offset: 3, publications: [] });
    assert.equal((await done).offset, 3);
    mock.timers.tick(1500);
    await assert.rejects(late, TimeoutError);
});
