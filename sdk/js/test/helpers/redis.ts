// A real redis-server for the end-to-end tests of several nodes: a free loopback port, no
// persistence, its own temp dir; stopped by the test (or when the test process exits).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "./wait.js";

export interface Redis {
    port: number;
    address: string;
    stop(): Promise<void>;
}

function freePort(): Promise<number> {
    return new Promise((resolve) => {
        const server = createServer();
        server.listen(0, "127.0.0.1", () => {
            const port = (server.address() as { port: number }).port;
            server.close(() => resolve(port));
        });
    });
}

export async function startRedis(): Promise<Redis> {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), "wspush-redis-"));
    let output = "";
    let exited = false;
    const child: ChildProcess = spawn(
        "redis-server",
        ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
        { stdio: ["ignore", "pipe", "pipe"] },
    );
    child.stdout!.on("data", (d) => (output += d));
    child.stderr!.on("data", (d) => (output += d));
    const exit = new Promise<void>((res) =>
        child.on("exit", () => {
            exited = true;
            rmSync(dir, { recursive: true, force: true });
            res();
        }),
    );
    process.on("exit", () => child.kill("SIGKILL"));
    try {
        await waitFor(() => exited || output.includes("Ready to accept connections"), "redis-server to start", 10_000);
    } catch (e) {
        child.kill("SIGKILL");
        throw new Error(`redis-server did not start (is it installed?): ${output}`);
    }
    if (exited) throw new Error(`redis-server exited: ${output}`);
    return {
        port,
        address: `127.0.0.1:${port}`,
        stop: async () => {
            if (!exited) child.kill("SIGKILL");
            await exit;
        },
    };
}
