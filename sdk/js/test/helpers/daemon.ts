// Starts the real wspushd for end-to-end tests: each daemon gets its own temp dir with a copy of
// config/wspush.json adjusted by the test, a --ready-file to learn its port, and is stopped by
// the test (or, at the latest, when the test process exits).
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { sleep, waitFor } from "./wait.js";

// Run from sdk/js (scripts/run-tests.mjs changes there).
export const SDK_ROOT = process.cwd();
export const DAEMON = resolve(SDK_ROOT, process.env.WSPUSH_DAEMON || "../../build/wspushd");
const BASE_CONFIG = resolve(SDK_ROOT, "../../config/wspush.json");

export interface DaemonOptions {
    /** Merged into config/wspush.json (objects merged key by key). */
    config?: Record<string, unknown>;
    /** 0: any free port. */
    port?: number;
    args?: string[];
}

export interface Daemon {
    port: number;
    pid: number;
    /** ws://127.0.0.1:PORT/ws */
    url: string;
    process: ChildProcess;
    /** The daemon's output so far, for failure messages. */
    output(): string;
    /** POST /api/<endpoint>; resolves with the status and the parsed JSON body. */
    api(endpoint: string, body: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any }>;
    /** Resolves once GET /readyz answers 200 (on Redis: the engine reached it), as a load balancer waits. */
    ready(timeout?: number): Promise<void>;
    /** SIGTERM (graceful drain), then SIGKILL if it has not exited within 5 s. */
    stop(signal?: NodeJS.Signals): Promise<void>;
}

const running = new Set<ChildProcess>();
process.on("exit", () => running.forEach((p) => p.kill("SIGKILL")));

function merge(base: any, extra: any): any {
    if (typeof base != "object" || typeof extra != "object" || !base || !extra || Array.isArray(extra)) return extra;
    const out = { ...base };
    for (const [k, v] of Object.entries(extra)) out[k] = merge(base[k], v);
    return out;
}

export async function startDaemon(options: DaemonOptions = {}): Promise<Daemon> {
    // The lead may be relinking the binary: give it a moment to reappear.
    await waitFor(() => existsSync(DAEMON), `the daemon binary ${DAEMON}`, 60_000);
    const dir = mkdtempSync(join(tmpdir(), "wspush-sdk-"));
    const config = merge(JSON.parse(readFileSync(BASE_CONFIG, "utf8")), {
        threads: 1,
        shutdown: { timeout: 1 },
        log: { level: "warn" },
        ...options.config,
    });
    writeFileSync(join(dir, "wspush.json"), JSON.stringify(config, null, 2));
    const readyFile = join(dir, "ready.json");
    const child = spawn(
        DAEMON,
        ["--config", join(dir, "wspush.json"), "--port", String(options.port ?? 0), "--ready-file", readyFile, ...(options.args || [])],
        { stdio: ["ignore", "pipe", "pipe"] },
    );
    running.add(child);
    let output = "";
    child.stdout!.on("data", (d) => (output += d));
    child.stderr!.on("data", (d) => (output += d));
    let exited = false;
    const exit = new Promise<void>((res) =>
        child.on("exit", () => {
            exited = true;
            running.delete(child);
            rmSync(dir, { recursive: true, force: true });
            res();
        }),
    );
    try {
        await waitFor(() => exited || existsSync(readyFile), "the daemon's ready file", 15_000);
        if (exited) throw new Error("exited at once");
        await sleep(5); // the file may be half-written
    } catch (err) {
        child.kill("SIGKILL");
        throw new Error(`wspushd did not start (${(err as Error).message}):\n${output}`);
    }
    const ready = JSON.parse(readFileSync(readyFile, "utf8"));
    const port: number = ready.port;
    return {
        port,
        pid: ready.pid,
        url: `ws://127.0.0.1:${port}/ws`,
        process: child,
        output: () => output,
        async api(endpoint, body, headers = {}) {
            const res = await fetch(`http://127.0.0.1:${ready.api_port || port}/api/${endpoint}`, {
                method: "POST",
                headers: { "content-type": "application/json", ...headers },
                body: JSON.stringify(body),
                signal: AbortSignal.timeout(10_000),
            });
            return { status: res.status, body: await res.json() };
        },
        async ready(timeout = 5_000) {
            const deadline = Date.now() + timeout;
            for (;;) {
                const res = await fetch(`http://127.0.0.1:${ready.api_port || port}/readyz`).catch(() => undefined);
                if (res?.status === 200) return;
                if (Date.now() > deadline) throw new Error(`the daemon was not ready within ${timeout} ms\n${output}`);
                await sleep(20);
            }
        },
        async stop(signal = "SIGTERM") {
            if (exited) return;
            child.kill(signal);
            const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
            await exit;
            clearTimeout(timer);
        },
    };
}
