import assert from "node:assert/strict";
import { afterEach, mock, test } from "node:test";
import { miniProgramDeviceStore, miniProgramTransport, Wspush, type ConnectedInfo, type DeviceStore } from "../../src/index.js";
import { FakeServer, connectedClient, settle, useFakeTime } from "../helpers/fake-transport.js";

useFakeTime();

const HEX32 = /^[0-9a-f]{32}$/;

/** A store that records its calls. */
function recordingStore(initial?: string) {
    const calls: string[] = [];
    let value = initial;
    const store: DeviceStore = {
        get: () => (calls.push("get"), value),
        set: (d) => void (calls.push("set " + d), (value = d)),
    };
    return { store, calls, value: () => value };
}

/** Loses the connection and lets the client reconnect; returns the new socket's connect. */
function reconnect(server: FakeServer) {
    server.last.serverClose(1006);
    mock.timers.tick(500);
    server.last.open();
    return server.last.sentOfType("connect")[0];
}

// A global localStorage as browsers have it, put in place by a test and removed after it.
const saved = Object.getOwnPropertyDescriptor(globalThis, "localStorage");
afterEach(() => {
    delete (globalThis as any).localStorage;
    if (saved) Object.defineProperty(globalThis, "localStorage", saved);
});

function fakeLocalStorage(initial: Record<string, string> = {}) {
    const items = new Map(Object.entries(initial));
    const storage = { getItem: (k: string) => items.get(k) ?? null, setItem: (k: string, v: string) => void items.set(k, String(v)) };
    Object.defineProperty(globalThis, "localStorage", { value: storage, configurable: true, writable: true });
    return items;
}

test("device: generated once, kept in the store, sent in every connect (reconnects too)", () => {
    const { store, calls, value } = recordingStore();
    const { server, client } = connectedClient({ deviceStore: store });
    const first = server.last.sentOfType("connect")[0];
    assert.match(first.device, HEX32);
    assert.equal(client.device, first.device);
    assert.deepEqual(calls, ["get", "set " + first.device]);
    assert.equal(value(), first.device);
    assert.equal(reconnect(server).device, first.device);
    client.disconnect();
    client.connect();
    server.last.open();
    assert.equal(server.last.sentOfType("connect")[0].device, first.device);
    assert.deepEqual(calls, ["get", "set " + first.device]); // read once per client
    // The next page load (a new client over the same storage) keeps it.
    const again = connectedClient({ deviceStore: store });
    assert.equal(again.server.last.sentOfType("connect")[0].device, first.device);
    assert.deepEqual(calls, ["get", "set " + first.device, "get"]);
});

test("device: an asynchronous store is read before the first connection; an invalid stored id is replaced", async () => {
    let stored: string | undefined = "not valid/";
    const store: DeviceStore = {
        get: () => Promise.resolve(stored),
        set: async (d) => void (stored = d),
    };
    const server = new FakeServer();
    const client = new Wspush("ws://test/ws", { transport: server.transport, deviceStore: store });
    client.connect();
    assert.equal(client.state, "connecting");
    assert.equal(server.sockets.length, 0); // still reading the store
    await settle();
    server.last.open();
    const { device } = server.last.sentOfType("connect")[0];
    assert.match(device, HEX32);
    assert.equal(stored, device);
    server.last.accept({ device });
    assert.equal(client.info!.device, device);
    assert.equal(reconnect(server).device, device);
});

test("device: a store that fails still gives a device (not persisted)", async () => {
    const failing: DeviceStore = {
        get: () => Promise.reject(new Error("no storage")),
        set: () => Promise.reject(new Error("no storage")),
    };
    const server = new FakeServer();
    const client = new Wspush("ws://test/ws", { transport: server.transport, deviceStore: failing });
    client.connect();
    await settle();
    server.last.open();
    const { device } = server.last.sentOfType("connect")[0];
    assert.match(device, HEX32);
    assert.equal(reconnect(server).device, device);
    const fail = () => {
        throw new Error("no storage");
    };
    const throwing = connectedClient({ deviceStore: { get: fail, set: fail } });
    assert.match(throwing.server.last.sentOfType("connect")[0].device, HEX32);
});

test("device given as a string is sent as is and the store is not used; device: false sends none", () => {
    const { store, calls } = recordingStore();
    const given = connectedClient({ device: "phone-1:alice@app=+!#.x_y", deviceStore: store });
    assert.equal(given.server.last.sentOfType("connect")[0].device, "phone-1:alice@app=+!#.x_y");
    assert.equal(reconnect(given.server).device, "phone-1:alice@app=+!#.x_y");
    const none = connectedClient({ device: false, deviceStore: store });
    const connect = none.server.last.sentOfType("connect")[0];
    assert.equal("device" in connect, false);
    assert.equal(none.client.device, undefined);
    assert.equal("device" in reconnect(none.server), false);
    assert.deepEqual(calls, []);
    // The reply's device is "" without one (and from a server that does not echo it).
    none.server.last.accept();
    assert.equal(none.client.info!.device, "");
});

test("an invalid device throws a TypeError at construction", () => {
    const server = new FakeServer();
    for (const device of ["", "a b", "a/b", "é", "x".repeat(65), 7, null, true]) {
        assert.throws(() => new Wspush("ws://test/ws", { transport: server.transport, device: device as any }), TypeError, `device ${JSON.stringify(device)}`);
    }
    assert.doesNotThrow(() => new Wspush("ws://test/ws", { transport: server.transport, device: "x".repeat(64) }));
    assert.doesNotThrow(() => new Wspush("ws://test/ws", { transport: server.transport, device: undefined }));
});

test("info is sent in every connect; more than 1024 bytes encoded, or not an object, throws", () => {
    const info = { name: "Alice", avatar: "a.png", n: 1 };
    const { server } = connectedClient({ info, device: false });
    assert.deepEqual(server.last.sentOfType("connect")[0].info, info);
    assert.deepEqual(reconnect(server).info, info);
    const without = connectedClient();
    assert.equal("info" in without.server.last.sentOfType("connect")[0], false);

    const fits = { s: "x".repeat(1024 - '{"s":""}'.length) };
    assert.doesNotThrow(() => new Wspush("ws://test/ws", { transport: server.transport, info: fits }));
    const over = { s: "é".repeat(510) }; // 1028 bytes in UTF-8, 518 characters
    assert.throws(() => new Wspush("ws://test/ws", { transport: server.transport, info: over }), TypeError);
    for (const bad of [null, [1], "x", 3]) {
        assert.throws(() => new Wspush("ws://test/ws", { transport: server.transport, info: bad as any }), TypeError);
    }
});

test("browsers: the device is kept in localStorage under wspush.device", () => {
    const items = fakeLocalStorage();
    const a = connectedClient();
    const device = a.server.last.sentOfType("connect")[0].device;
    assert.match(device, HEX32);
    assert.equal(items.get("wspush.device"), device);
    const b = connectedClient(); // the next page load
    assert.equal(b.server.last.sentOfType("connect")[0].device, device);
    items.set("wspush.device", "from-before");
    assert.equal(connectedClient().server.last.sentOfType("connect")[0].device, "from-before");
});

test("browsers: a localStorage that throws (Safari private mode, blocked storage) falls back to memory", () => {
    Object.defineProperty(globalThis, "localStorage", {
        value: {
            getItem: () => {
                throw new Error("SecurityError");
            },
            setItem: () => {
                throw new Error("QuotaExceededError");
            },
        },
        configurable: true,
    });
    const { server, client } = connectedClient();
    const device = server.last.sentOfType("connect")[0].device;
    assert.match(device, HEX32);
    assert.equal(reconnect(server).device, device);
    assert.equal(client.device, device);

    // Reading `localStorage` itself throws.
    Object.defineProperty(globalThis, "localStorage", {
        get() {
            throw new Error("SecurityError");
        },
        configurable: true,
    });
    const blocked = connectedClient();
    const other = blocked.server.last.sentOfType("connect")[0].device;
    assert.match(other, HEX32);
    assert.equal(reconnect(blocked.server).device, other);
});

test("without localStorage (Node, React Native) the device lives in memory, one per client", () => {
    assert.equal((globalThis as any).localStorage, undefined);
    const a = connectedClient();
    const b = connectedClient();
    const da = a.server.last.sentOfType("connect")[0].device;
    assert.match(da, HEX32);
    assert.notEqual(b.server.last.sentOfType("connect")[0].device, da);
    assert.equal(reconnect(a.server).device, da);
});

test("mini-programs: the device is kept in the platform storage; miniProgramTransport brings that store", () => {
    const storage = new Map<string, unknown>();
    const wx = {
        getStorageSync: (key: string) => (storage.has(key) ? storage.get(key) : ""), // WeChat: "" when absent
        setStorageSync: (key: string, data: string) => void storage.set(key, data),
        connectSocket: () => {
            throw new Error("not used here");
        },
    };
    const transport = miniProgramTransport(wx);
    assert.ok(transport.deviceStore);
    assert.equal(miniProgramTransport({ connectSocket: wx.connectSocket }).deviceStore, undefined);

    // A client over a transport that carries a device store uses it.
    const server = new FakeServer();
    const client = new Wspush("ws://test/ws", { transport: Object.assign(server.transport, { deviceStore: transport.deviceStore }) });
    client.connect();
    server.last.open();
    const device = server.last.sentOfType("connect")[0].device;
    assert.match(device, HEX32);
    assert.equal(storage.get("wspush.device"), device);
    assert.equal(miniProgramDeviceStore(wx).get(), device);

    const broken = miniProgramDeviceStore({
        getStorageSync: () => {
            throw new Error("x");
        },
        setStorageSync: () => {
            throw new Error("y");
        },
    });
    assert.equal(broken.get(), undefined);
    broken.set("d1");
    assert.equal(broken.get(), "d1"); // kept in memory
});

test("connected: info.device and info.inbox are handed over; the backlog follows as $user messages", () => {
    const server = new FakeServer();
    const client = new Wspush("ws://test/ws", { transport: server.transport, user: "carol", device: "d1" });
    client.connect();
    const events: unknown[] = [];
    client.on("connected", (info: ConnectedInfo) => events.push(["connected", info.device, info.inbox]));
    client.on("message", (m) => events.push(["message", m.channel, m.data]));
    server.last.open();
    const connect = server.last.sentOfType("connect")[0];
    const message = (offset: number, data: string) => ({ type: "message", channel: "$user:carol", offset, epoch: "E", mid: "m" + offset, ts: 1, data, qos: 1, did: offset });
    server.last.push(
        { id: connect.id, type: "connected", client: "c1", user: "carol", device: "d1", session: "s1", resume: "r1", resumed: false, ping_interval: 25, pong_timeout: 10, node: "n", version: "0", inbox: { pending: 2, dropped: 1 } },
        message(1, "one"),
        message(2, "two"),
    );
    assert.deepEqual(events, [
        ["connected", "d1", { pending: 2, dropped: 1 }],
        ["message", "$user:carol", "one"],
        ["message", "$user:carol", "two"],
    ]);
    assert.deepEqual(client.info!.inbox, { pending: 2, dropped: 1 });
    assert.deepEqual(server.last.sentOfType("ack"), [
        { type: "ack", did: 1 },
        { type: "ack", did: 2 },
    ]);
});
