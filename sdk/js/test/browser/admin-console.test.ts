// The daemon's admin console (src/api/admin_console, docs/ops.md) in a real browser (Debian's
// chromium, driven by playwright-core), against the real daemon: the page loads without a console
// error, shows the running daemon's figures, and what it publishes reaches a WebSocket client.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { after, test } from "node:test";
import { chromium, type Browser, type Page } from "playwright-core";
import WebSocket from "ws";
import { connected, disconnectAll, makeClient } from "../helpers/clients.js";
import { startDaemon } from "../helpers/daemon.js";
import { waitFor } from "../helpers/wait.js";

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const WAIT = { timeout: 15_000 };
const ADMIN_KEY = "admin-console-test-key-0123456789";
const CONSOLE_CONFIG = {
    admin: { console: true },
    api: { keys: [{ name: "operator", key: ADMIN_KEY, scopes: ["admin", "read", "publish"] }] },
    // A socket that never sends `connect` stays a connection without a session for the whole test.
    websocket: { connect_timeout: 120 },
    namespaces: { chat: { client_publish: true }, room: { presence: true, history_size: 10, history_ttl: 60 } },
};

after(disconnectAll);

async function launch(): Promise<Browser> {
    return chromium.launch({
        executablePath: CHROMIUM,
        args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        timeout: 30_000,
    });
}

// A page that records every console error and uncaught exception.
async function openConsole(browser: Browser, url: string): Promise<{ page: Page; errors: string[] }> {
    const page = await (await browser.newContext()).newPage();
    const errors: string[] = [];
    page.on("console", (message) => message.type() == "error" && errors.push(`console: ${message.text()}`));
    page.on("pageerror", (err) => errors.push(`page error: ${err.message}`));
    await page.goto(url, WAIT);
    return { page, errors };
}

async function text(page: Page, selector: string): Promise<string> {
    return (await page.textContent(selector)) ?? "";
}

test("the console shows the daemon's figures, publishes to a client and disconnects a user", async () => {
    const daemon = await startDaemon({ config: CONSOLE_CONFIG });
    const base = `http://127.0.0.1:${daemon.port}`;
    const browser = await launch();
    try {
        // Served with its policy, and /admin sends the browser to the folder.
        const index = await fetch(`${base}/admin/`);
        assert.equal(index.status, 200);
        assert.match(index.headers.get("content-security-policy") ?? "", /script-src 'self'/);
        assert.equal(index.headers.get("x-content-type-options"), "nosniff");
        assert.equal(index.headers.get("cache-control"), "no-store");
        const bare = await fetch(`${base}/admin`, { redirect: "manual" });
        assert.equal(bare.status, 308);
        assert.equal(bare.headers.get("location"), "/admin/");

        const carol = makeClient(daemon.url, { user: "carol" });
        const dave = makeClient(daemon.url, { user: "dave" });
        const carolCloses: number[] = [];
        carol.client.on("disconnected", (event) => carolCloses.push(event.code));
        await Promise.all([connected(carol.client), connected(dave.client)]);
        await carol.client.subscribe("room:lobby").ready();
        // Connections and sessions differ, so that the page cannot show one for the other.
        const silent = new WebSocket(daemon.url);
        await new Promise((resolve, reject) => (silent.once("open", resolve), silent.once("error", reject)));

        const { page, errors } = await openConsole(browser, `${base}/admin`);
        assert.equal(page.url(), `${base}/admin/`);
        await page.fill("#key", ADMIN_KEY);
        await page.click("#connect");
        await page.waitForSelector('body[data-state="connected"]', WAIT);
        assert.equal(await page.inputValue("#key"), "", "the key leaves the field once used");
        assert.ok(!page.url().includes(ADMIN_KEY));

        // The figures are the daemon's own.
        const info = await (await fetch(`${base}/api/info`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).json();
        assert.equal(info.connections, 3);
        assert.equal(info.sessions, 2);
        await page.waitForFunction(() => document.getElementById("connections")?.textContent == "3", undefined, WAIT);
        assert.equal(await text(page, "#sessions"), "2");
        assert.equal(await text(page, "#node-name"), info.node);
        assert.equal(await text(page, "#engine"), "memory");
        assert.equal(await text(page, "#version"), info.version);
        assert.match(await text(page, "#shards"), /memory engine/);
        await page.waitForSelector('#nodes td:text-is("' + info.node + '")', WAIT);
        // Two polls make a rate.
        await page.waitForFunction(() => /^\d/.test(document.getElementById("rate-in")?.textContent ?? ""), undefined, WAIT);

        // Channels: room:lobby with carol present.
        await page.click('#channels button:text-is("room:lobby")');
        await page.waitForSelector('#presence td:text-is("carol")', WAIT);

        // Publish from the form; carol's client gets exactly that data.
        await page.fill("#publish-channel", "room:lobby");
        await page.fill("#publish-data", '{"text": "from the console", "n": [1, 2.5, null], "ok": true}');
        await page.selectOption("#publish-qos", "1");
        await page.click("#publish-form button[type=submit]");
        await page.waitForSelector('#publish-result.success:has-text("offset 1")', WAIT);
        await waitFor(() => carol.received.length == 1, "carol to receive the console's publication");
        assert.equal(carol.received[0].channel, "room:lobby");
        assert.deepEqual(carol.received[0].data, { text: "from the console", n: [1, 2.5, null], ok: true });

        // Invalid JSON is refused in the page, before any request.
        await page.fill("#publish-data", "{text: 1}");
        await page.click("#publish-form button[type=submit]");
        await page.waitForSelector('#publish-result.failure:has-text("not valid JSON")', WAIT);

        // The history shows the publication.
        await page.click("#history-form button");
        await page.waitForSelector('#history code:has-text("from the console")', WAIT);

        // A user: online with one connection, then disconnected from the page.
        await page.fill("#user-id", "carol");
        await page.click("#user-form button");
        await page.waitForSelector('#user-online:text-is("carol is online")', WAIT);
        assert.equal(await page.locator("#user-connections tbody tr").count(), 1);
        await page.click("#disconnect");
        await page.waitForSelector("#disconnect-result.success", WAIT);
        await waitFor(() => carolCloses.includes(4503), "carol's connection to be closed with 4503");
        await page.waitForFunction(() => document.getElementById("connections")?.textContent == "2", undefined, WAIT);
        silent.close();

        mkdirSync(".build", { recursive: true });
        await page.screenshot({ path: ".build/admin-console.png", fullPage: true });
        assert.deepEqual(errors, [], "no console error and no uncaught exception");
    } finally {
        await browser.close();
        await daemon.stop();
    }
});

test("a wrong key shows the API's 401; an empty one works where the API has no key", async () => {
    const daemon = await startDaemon({ config: CONSOLE_CONFIG });
    const browser = await launch();
    try {
        const { page, errors } = await openConsole(browser, `http://127.0.0.1:${daemon.port}/admin/`);
        await page.fill("#key", "not-the-key-0123456789");
        await page.click("#connect");
        await page.waitForSelector('body[data-state="refused"]', WAIT);
        const shown = await text(page, "#error");
        assert.match(shown, /401 40101: invalid API key/);
        // The browser reports the refused request itself; nothing else went wrong.
        assert.ok(errors.length > 0 && errors.every((e) => e.includes("401")), JSON.stringify(errors));
    } finally {
        await browser.close();
        await daemon.stop();
    }

    const keyless = await startDaemon({ config: { admin: { console: true } } });
    const keylessBrowser = await launch();
    try {
        // No key configured: loopback clients need none, so an empty key connects.
        const { page, errors } = await openConsole(keylessBrowser, `http://127.0.0.1:${keyless.port}/admin/`);
        await page.click("#connect");
        await page.waitForSelector('body[data-state="connected"]', WAIT);
        assert.equal(await text(page, "#connections"), "0");
        assert.deepEqual(errors, []);
    } finally {
        await keylessBrowser.close();
        await keyless.stop();
    }
});

test("without admin.console, /admin is 404", async () => {
    const daemon = await startDaemon();
    try {
        for (const path of ["/admin", "/admin/", "/admin/console.js"]) {
            const response = await fetch(`http://127.0.0.1:${daemon.port}${path}`, { redirect: "manual" });
            assert.equal(response.status, 404, path);
        }
    } finally {
        await daemon.stop();
    }
});
