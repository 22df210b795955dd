// Users and devices against the real daemon: join/leave pushes, user status, and a device's offline
// messages (the inbox) delivered after `connected`.
import assert from "node:assert/strict";
import { after, afterEach, before, test } from "node:test";
import { ServerError, type ConnectedInfo, type JoinLeaveInfo } from "../../src/index.js";
import { connected, disconnectAll, makeClient } from "../helpers/clients.js";
import { startDaemon, type Daemon } from "../helpers/daemon.js";
import { sleep, waitFor } from "../helpers/wait.js";

let daemon: Daemon;
before(
    async () =>
        (daemon = await startDaemon({
            config: {
                client: { allow_anonymous: true, trust_client_user: true, user_status: true },
                namespaces: { chat: { client_publish: true }, room: { presence: true, client_presence: true, join_leave: true } },
            },
        })),
);
after(() => daemon?.stop());
afterEach(disconnectAll);

test("join and leave: a subscriber sees another connection come and go, with its user, device and info", async () => {
    const a = makeClient(daemon.url, { user: "alice" });
    await connected(a.client);
    const sub = a.client.subscribe("room:lobby");
    await sub.ready();
    const events: [string, JoinLeaveInfo][] = [];
    sub.on("join", (info) => events.push(["join", info]));
    sub.on("leave", (info) => events.push(["leave", info]));

    const info = { name: "Bob", avatar: "b.png" };
    const b = makeClient(daemon.url, { user: "bob", device: "bob-phone", info });
    await connected(b.client);
    assert.equal(b.client.info!.device, "bob-phone");
    const bId = b.client.info!.client;
    await b.client.subscribe("room:lobby").ready();
    const ofB = () => events.filter(([, e]) => e.client == bId);
    await waitFor(() => ofB().length == 1, "alice to see bob join");

    // Presence shows the same device and info.
    const { clients } = await a.client.presence("room:lobby");
    const entry = clients.find((c) => c.client == bId);
    assert.ok(entry, JSON.stringify(clients));
    assert.equal(entry.device, "bob-phone");
    assert.deepEqual(entry.info, info);
    const mine = clients.find((c) => c.client == a.client.info!.client);
    assert.equal(mine?.device, a.client.device);
    assert.equal(mine?.info, undefined);

    b.client.disconnect();
    await waitFor(() => ofB().length == 2, "alice to see bob leave");
    const expected = { channel: "room:lobby", client: bId, user: "bob", device: "bob-phone", info };
    assert.deepEqual(ofB(), [
        ["join", expected],
        ["leave", expected],
    ]);
});

test("userStatus: online while connected, offline soon after the last connection closes", async () => {
    const a = makeClient(daemon.url, { user: "a" });
    const b = makeClient(daemon.url, { user: "b" });
    await Promise.all([connected(a.client), connected(b.client)]);
    assert.deepEqual(await a.client.userStatus(["b", "nobody"]), { b: true, nobody: false });

    b.client.disconnect();
    let status: Record<string, boolean> = {};
    for (const deadline = Date.now() + 5000; Date.now() < deadline; await sleep(50)) {
        status = await a.client.userStatus(["b", "nobody"]);
        if (!status.b) break;
    }
    assert.deepEqual(status, { b: false, nobody: false });
});

test("a device gets the user's messages sent while it was away, right after connected", async () => {
    // First connection of device d1: a device never seen before gets no backlog.
    const first = makeClient(daemon.url, { user: "carol", device: "d1" });
    await connected(first.client);
    assert.equal(first.client.info!.device, "d1");
    assert.equal(first.client.info!.inbox?.pending, 0);
    first.client.disconnect();
    await sleep(100);

    for (let i = 0; i < 3; i++) {
        const res = await daemon.api("send", { user: "carol", data: { n: i } });
        assert.equal(res.status, 200, JSON.stringify(res.body));
    }

    // Carol's app starts again on the same device.
    const again = makeClient(daemon.url, { user: "carol", device: "d1" });
    const order: string[] = [];
    let info: ConnectedInfo | undefined;
    again.client.on("connected", (i) => ((info = i), order.push("connected")));
    again.client.on("message", (m) => order.push("message " + m.channel));
    await connected(again.client);
    await waitFor(() => again.received.length >= 3, "the 3 offline messages");
    await sleep(100); // and nothing more
    assert.deepEqual(info!.inbox, { pending: 3, dropped: 0 });
    assert.equal(info!.device, "d1");
    assert.deepEqual(
        again.received.map((m) => [m.channel, m.data]),
        [0, 1, 2].map((n) => ["$user:carol", { n }]),
    );
    assert.deepEqual(order, ["connected", "message $user:carol", "message $user:carol", "message $user:carol"]);

    // Another device of carol's, never seen before, gets none of them.
    const other = makeClient(daemon.url, { user: "carol", device: "d2" });
    await connected(other.client);
    assert.equal(other.client.info!.inbox?.pending, 0);
    await sleep(100);
    assert.deepEqual(other.received, []);
});

test("userStatus is refused with 103 when the server's client.user_status is false", async () => {
    const off = await startDaemon({ config: { client: { allow_anonymous: true, trust_client_user: true, user_status: false } } });
    try {
        const a = makeClient(off.url, { user: "a" });
        await connected(a.client);
        await assert.rejects(a.client.userStatus(["a"]), (e: unknown) => e instanceof ServerError && e.code == 103);
        assert.equal(a.client.state, "connected");
    } finally {
        disconnectAll();
        await off.stop();
    }
});
