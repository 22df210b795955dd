import assert from "node:assert/strict";
import { mock, test } from "node:test";
import { ServerError, TimeoutError, Wspush, type JoinLeaveInfo } from "../../src/index.js";
import { FakeServer, connectedClient, useFakeTime } from "../helpers/fake-transport.js";

useFakeTime();

/** Subscribes to `channel` and answers the subscribe. */
function subscribed(server: FakeServer, client: Wspush, channel: string) {
    const sub = client.subscribe(channel);
    const req = server.last.sentOfType("subscribe").find((c) => c.channel == channel);
    server.last.push({ id: req.id, type: "subscribed", channel, offset: 0, epoch: "e" });
    return sub;
}

test("join and leave pushes reach the subscription of their channel only", () => {
    const { server, client } = connectedClient();
    const a = subscribed(server, client, "room:a");
    const b = subscribed(server, client, "room:b");
    const got: [string, string, JoinLeaveInfo][] = [];
    for (const sub of [a, b]) {
        sub.on("join", (info) => got.push([sub.channel, "join", info]));
        sub.on("leave", (info) => got.push([sub.channel, "leave", info]));
    }
    const messages: unknown[] = [];
    client.on("message", (m) => messages.push(m));
    const errors: Error[] = [];
    client.on("error", (e) => errors.push(e));
    server.last.push(
        { type: "join", channel: "room:a", client: "0123456789abcdef", user: "bob", device: "d2", info: { name: "Bob" } },
        { type: "join", channel: "room:c", client: "0123456789abcdef", user: "bob", device: "d2" }, // not subscribed here
        { type: "leave", channel: "room:b", client: "fedcba9876543210", user: "", device: "" },
        { type: "leave", channel: "room:a", client: "0123456789abcdef", user: "bob" }, // a server that omits device
        { type: "something_new", channel: "room:a", client: "x" }, // unknown pushes are ignored
    );
    assert.deepEqual(got, [
        ["room:a", "join", { channel: "room:a", client: "0123456789abcdef", user: "bob", device: "d2", info: { name: "Bob" } }],
        ["room:b", "leave", { channel: "room:b", client: "fedcba9876543210", user: "", device: "" }],
        ["room:a", "leave", { channel: "room:a", client: "0123456789abcdef", user: "bob", device: "" }],
    ]);
    assert.equal("info" in got[1][2], false);
    assert.deepEqual(messages, []);
    assert.deepEqual(errors, []);
    assert.equal(client.state, "connected");
});

test("join and leave after unsubscribe() are dropped", async () => {
    const { server, client } = connectedClient();
    const sub = subscribed(server, client, "room:a");
    const got: unknown[] = [];
    sub.on("join", (i) => got.push(i));
    const done = sub.unsubscribe();
    const [req] = server.last.sentOfType("unsubscribe");
    server.last.push({ type: "join", channel: "room:a", client: "c2", user: "u", device: "" }, { id: req.id, type: "unsubscribed", channel: "room:a" });
    await done;
    assert.deepEqual(got, []);
});

test("userStatus(): sends the users and resolves with the server's map", async () => {
    const { server, client } = connectedClient();
    const done = client.userStatus(["alice", "bob"]);
    const [req] = server.last.sentOfType("status");
    assert.deepEqual(req, { type: "status", id: req.id, users: ["alice", "bob"] });
    server.last.push({ id: req.id, type: "status", users: { alice: true, bob: false } });
    assert.deepEqual(await done, { alice: true, bob: false });
});

test("userStatus(): an error reply rejects with ServerError (103: not allowed by the server)", async () => {
    const { server, client } = connectedClient();
    const done = client.userStatus(["alice"]);
    const [req] = server.last.sentOfType("status");
    server.last.push({ id: req.id, type: "error", code: 103, message: "permission denied" });
    await assert.rejects(done, (e: unknown) => e instanceof ServerError && e.code == 103);
    assert.equal(client.state, "connected");
});

test("userStatus(): 1 to 1000 user ids, strings; anything else rejects with TypeError and sends nothing", async () => {
    const { server, client } = connectedClient();
    const many = Array.from({ length: 1001 }, (_, i) => "u" + i);
    for (const users of [[], many, ["a", 1], [null], "alice", undefined]) {
        await assert.rejects(client.userStatus(users as any), TypeError, JSON.stringify(users)?.slice(0, 20));
    }
    assert.deepEqual(server.last.sentOfType("status"), []);
    client.userStatus(many.slice(0, 1000)).catch(() => {});
    assert.equal(server.last.sentOfType("status")[0].users.length, 1000);
});

test("userStatus(): waits for a connection, is resent when the answer was lost, and times out", async () => {
    const server = new FakeServer();
    const client = new Wspush("ws://test/ws", { transport: server.transport, minReconnectDelay: 1000, connectTimeout: 60_000 });
    const users = ["alice"];
    const done = client.userStatus(users);
    const late = client.userStatus(["bob"], { timeout: 2000 });
    users.push("changed later"); // the request keeps the list as it was when called
    client.connect();
    server.last.accept();
    assert.equal(server.last.sentOfType("status").length, 2);
    server.last.serverClose(1006);
    mock.timers.tick(500);
    server.last.accept({ resumed: true });
    const [again] = server.last.sentOfType("status");
    assert.deepEqual(again.users, ["alice"]);
    server.last.push({ id: again.id, type: "status", users: { alice: false } });
    assert.deepEqual(await done, { alice: false });
    mock.timers.tick(1500);
    await assert.rejects(late, TimeoutError);
});
