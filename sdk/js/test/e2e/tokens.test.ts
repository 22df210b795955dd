// Connection tokens against the real daemon: the SDK's getToken flow. A token that is about to
// expire is refreshed without interrupting the connection; one that expires anyway (the app could
// not refresh in time) ends in a close 4006, and the client comes back with a new token to the same
// session, losing nothing.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, afterEach, before, test } from "node:test";
import { ServerError } from "../../src/index.js";
import { connected, disconnectAll, makeClient } from "../helpers/clients.js";
import { startDaemon, type Daemon } from "../helpers/daemon.js";
import { sleep, waitFor } from "../helpers/wait.js";

const SECRET = "e2e-hmac-secret-0123456789abcdef0123";
const b64url = (value: string | Buffer) => Buffer.from(value).toString("base64url");

/** An HS256 token for `sub` that expires `lifetime` seconds from now (what an app's backend issues). */
function tokenFor(sub: string, lifetime: number, extra: Record<string, unknown> = {}): string {
    const header = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
    const claims = b64url(JSON.stringify({ sub, exp: Math.floor(Date.now() / 1e3) + lifetime, ...extra }));
    const signature = createHmac("sha256", SECRET).update(`${header}.${claims}`).digest();
    return `${header}.${claims}.${b64url(signature)}`;
}

let daemon: Daemon;
before(
    async () =>
        (daemon = await startDaemon({
            config: {
                client: { allow_anonymous: false, trust_client_user: false, token: { hmac_secrets: [{ kid: "", secret: SECRET }], leeway: 0 } },
                namespaces: { feed: { default_qos: 1 }, orders: { subscribe: "token", history_size: 100, history_ttl: 300 } },
            },
        })),
);
after(() => daemon?.stop());
afterEach(disconnectAll);

test("a token about to expire is refreshed through getToken: the connection never drops", async () => {
    let issued = 0;
    const c = makeClient(daemon.url, { getToken: () => (issued++, tokenFor("alice", 3)), refreshBefore: 1500 });
    const drops: number[] = [];
    c.client.on("disconnected", ({ code }) => drops.push(code));
    await connected(c.client);
    assert.equal(c.client.info!.user, "alice");
    assert.ok(c.client.info!.expires_at! > Date.now() / 1e3, JSON.stringify(c.client.info));
    await c.client.subscribe("feed:news").ready();
    // 5 s: past the first token's expiry (3 s) and the second's.
    for (let i = 0; i < 10; i++) {
        await daemon.api("publish", { channel: "feed:news", data: i });
        await sleep(500);
    }
    await waitFor(() => c.received.length == 10, "every publication");
    assert.deepEqual(c.received.map((m) => m.data), [...Array(10).keys()]);
    assert.deepEqual(drops, [], "the connection stayed up");
    assert.ok(issued >= 3, `getToken called ${issued} times: connect and at least two refreshes`);
});

test("a token that expires closes with 4006; the client reconnects with a new token to the same session", async () => {
    // The app's token service is slow to answer the refresh: the token expires first.
    let issued = 0;
    const getToken = async () => {
        const call = issued++;
        if (call == 1) await sleep(4000);
        return tokenFor("bob", call == 0 ? 2 : 60);
    };
    const c = makeClient(daemon.url, { getToken, refreshBefore: 1000 });
    const drops: number[] = [];
    c.client.on("disconnected", ({ code }) => drops.push(code));
    await connected(c.client);
    const session = c.client.info!.session;
    await c.client.subscribe("feed:bob").ready();
    await daemon.api("publish", { channel: "feed:bob", data: "before" });
    await waitFor(() => drops.includes(4006), "the close at the token's expiry", 6000);
    await daemon.api("publish", { channel: "feed:bob", data: "while away" });
    await waitFor(() => c.client.state == "connected" && c.received.length == 2, "the reconnect and both publications", 8000);
    assert.equal(c.client.info!.session, session);
    assert.equal(c.client.info!.resumed, true);
    assert.deepEqual(c.received.map((m) => m.data), ["before", "while away"]);
});

test("an invalid token is final: no reconnect loop", async () => {
    const c = makeClient(daemon.url, { token: tokenFor("carol", 60).slice(0, -2) + "xx" });
    const errors: Error[] = [];
    c.client.on("error", (e) => errors.push(e));
    c.client.connect();
    await waitFor(() => c.client.state == "disconnected", "the client to give up");
    assert.ok(errors.some((e) => e instanceof ServerError && e.code == 101), errors.map(String).join());
});

test("the token's channels are subscribed by the server; a new session recovers what they missed", async () => {
    const c = makeClient(daemon.url, { getToken: () => tokenFor("carol", 60, { channels: ["orders:carol"] }) });
    await connected(c.client);
    assert.deepEqual(c.client.info!.subscriptions?.map((s) => s.channel), ["orders:carol"]);
    await daemon.api("publish", { channel: "orders:carol", data: "placed" });
    await waitFor(() => c.received.length == 1, "the first publication");
    // A disconnect() ends the session: the next connection gets a new one.
    c.client.disconnect();
    await daemon.api("publish", { channel: "orders:carol", data: "shipped" });
    c.client.connect();
    await waitFor(() => c.client.state == "connected" && c.received.length == 2, "the missed publication");
    assert.equal(c.client.info!.resumed, false);
    assert.equal(c.client.info!.subscriptions?.[0].recovered, true);
    assert.deepEqual(c.received.map((m) => m.data), ["placed", "shipped"]);
});
