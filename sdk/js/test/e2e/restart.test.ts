// The daemon restarts on the same port: every client comes back, subscribes again (a new daemon
// has no sessions) and keeps receiving.
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { connected, disconnectAll, makeClient, type TestClient } from "../helpers/clients.js";
import { startDaemon } from "../helpers/daemon.js";
import { waitFor } from "../helpers/wait.js";

afterEach(disconnectAll);

const CLIENTS = 20;

test(`${CLIENTS} clients survive a daemon restart on the same port`, async () => {
    let daemon = await startDaemon();
    const port = daemon.port;
    const clients: TestClient[] = [];
    for (let i = 0; i < CLIENTS; i++) clients.push(makeClient(daemon.url, { minReconnectDelay: 200, maxReconnectDelay: 1000 }));
    await Promise.all(clients.map((c) => connected(c.client)));
    await Promise.all(clients.map((c) => c.client.subscribe("chat:restart").ready()));
    await daemon.api("publish", { channel: "chat:restart", data: "before" });
    await waitFor(() => clients.every((c) => c.received.length == 1), "the first message everywhere");

    let resubscribed = 0;
    for (const c of clients) c.client.getSubscription("chat:restart")!.on("subscribed", () => resubscribed++);
    await daemon.stop("SIGTERM");
    await waitFor(() => clients.every((c) => c.client.state == "reconnecting"), "every client to notice");

    const restartedAt = performance.now();
    daemon = await startDaemon({ port });
    try {
        await waitFor(() => resubscribed == CLIENTS, "every client to subscribe again", 20_000);
        const ms = performance.now() - restartedAt;
        console.log(`restart: ${CLIENTS} clients resubscribed ${ms.toFixed(0)} ms after the daemon was started again`);
        assert.ok(clients.every((c) => c.client.info!.resumed === false)); // a new daemon has no sessions

        await daemon.api("publish", { channel: "chat:restart", data: "after" });
        await waitFor(() => clients.every((c) => c.received.length == 2), "the second message everywhere");
        assert.ok(clients.every((c) => c.received[1].data == "after"));
    } finally {
        disconnectAll();
        await daemon.stop();
    }
});
