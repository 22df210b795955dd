// The chat demo in a real browser (Debian's chromium, driven by playwright-core): two pages chat,
// the daemon restarts on the same port, both pages reconnect and keep chatting.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { test } from "node:test";
import { chromium, type Page } from "playwright-core";
import { SDK_ROOT, startDaemon } from "../helpers/daemon.js";
import { daemonServesStatic, serveStatic } from "../helpers/static-server.js";

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const DEMO = `${SDK_ROOT}/examples/chat`;
const WAIT = { timeout: 15_000 };

test("two pages chat through the daemon, across a daemon restart", async () => {
    // WSPUSH_DEMO_SERVER=node forces the node static server even when the daemon could serve the page.
    const ownStatic = process.env.WSPUSH_DEMO_SERVER != "node" && daemonServesStatic();
    let daemon = await startDaemon({ args: ownStatic ? ["--static-root", DEMO] : [] });
    const port = daemon.port;
    const web = ownStatic ? undefined : await serveStatic(DEMO, () => port);
    const pageUrl = `http://127.0.0.1:${web ? web.port : port}/`;
    console.log(`browser: demo served by ${web ? "a node static server" : "the daemon"} at ${pageUrl}`);

    const browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        timeout: 30_000,
    });
    try {
        const open = async (nick: string) => {
            const page = await (await browser.newContext()).newPage();
            page.on("pageerror", (err) => console.error(`${nick}: page error: ${err.message}`));
            await page.goto(pageUrl, WAIT);
            await page.fill("#nick", nick);
            await page.fill("#room", "e2e");
            await page.click("#join button");
            await page.waitForSelector('#state[data-state="connected"]', WAIT);
            await page.waitForSelector("#text:not([disabled])", WAIT);
            return page;
        };
        const say = async (page: Page, text: string) => {
            await page.fill("#text", text);
            await page.press("#text", "Enter");
        };
        const sees = (page: Page, text: string) => page.waitForSelector(`#messages li:has-text("${text}")`, WAIT);
        const subscribed = (page: Page) =>
            page.waitForFunction(() => (window as any).chat.subscription()?.state == "subscribed", undefined, WAIT);

        const alice = await open("alice");
        const bob = await open("bob");
        await say(alice, "hello from alice");
        await sees(bob, "hello from alice");
        await say(bob, "hi alice");
        await sees(alice, "hi alice");

        // config/wspush.json turns permessage-deflate on: the browser negotiates the daemon's
        // shared compression, and a message long enough to be compressed both ways arrives whole.
        const extensions = await alice.evaluate(
            (url) =>
                new Promise<string>((resolve, reject) => {
                    const ws = new WebSocket(url);
                    ws.onopen = () => (resolve(ws.extensions), ws.close());
                    ws.onerror = () => reject(new Error("no WebSocket"));
                }),
            `ws://127.0.0.1:${port}/ws`,
        );
        assert.match(extensions, /permessage-deflate; server_no_context_takeover; client_no_context_takeover/);
        const long = `a long line ${"that compresses well ".repeat(60)}end`;
        await say(alice, long);
        await sees(bob, "that compresses well that compresses well");
        assert.equal(await bob.locator("#messages li", { hasText: long }).count(), 1);

        await daemon.stop();
        await Promise.all([alice, bob].map((p) => p.waitForSelector('#state[data-state="reconnecting"]', WAIT)));
        daemon = await startDaemon({ port, args: ownStatic ? ["--static-root", DEMO] : [] });
        await Promise.all([alice, bob].map((p) => p.waitForSelector('#state[data-state="connected"]', WAIT)));
        await Promise.all([alice, bob].map(subscribed));

        await say(alice, "still there after the restart?");
        await sees(bob, "still there after the restart?");
        await say(bob, "yes, still here");
        await sees(alice, "yes, still here");

        mkdirSync(".build", { recursive: true });
        await bob.screenshot({ path: ".build/chat-bob.png" });
        const lines = await bob.$$eval("#messages li", (els) => els.map((e) => e.textContent));
        assert.ok(lines.includes("alicestill there after the restart?"), JSON.stringify(lines));
    } finally {
        await browser.close();
        web?.close();
        await daemon.stop();
    }
});
