// Serves the chat demo the way the daemon will: static files from one folder, and /ws forwarded
// to the daemon (as raw TCP after the upgrade request), so the page's default URL works.
// Used only while build/wspushd has no --static-root of its own.
import { execFileSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { connect } from "node:net";
import { extname, join, normalize } from "node:path";
import { DAEMON } from "./daemon.js";

const TYPES: Record<string, string> = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css" };

/** Whether the daemon binary can serve static files itself (`--static-root DIR`). */
export function daemonServesStatic(): boolean {
    try {
        return execFileSync(DAEMON, ["--help"], { encoding: "utf8" }).includes("--static-root");
    } catch {
        return false;
    }
}

export function serveStatic(root: string, daemonPort: () => number): Promise<{ port: number; close(): void }> {
    const server: Server = createServer(async (req, res) => {
        const path = normalize(new URL(req.url!, "http://x").pathname).replace(/^(\.\.[/\\])+/, "");
        try {
            const body = await readFile(join(root, path == "/" ? "index.html" : path));
            res.writeHead(200, { "content-type": TYPES[extname(path) || ".html"] || "application/octet-stream" }).end(body);
        } catch {
            res.writeHead(404).end();
        }
    });
    server.on("upgrade", (req, socket, head) => {
        const upstream = connect(daemonPort(), "127.0.0.1", () => {
            const lines = [`${req.method} ${req.url} HTTP/1.1`];
            for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
            upstream.write(lines.join("\r\n") + "\r\n\r\n");
            upstream.write(head);
            upstream.pipe(socket).pipe(upstream);
        });
        const end = () => (socket.destroy(), upstream.destroy());
        upstream.on("error", end).on("close", end);
        socket.on("error", end).on("close", end);
    });
    return new Promise((resolve) =>
        server.listen(0, "127.0.0.1", () =>
            resolve({
                port: (server.address() as { port: number }).port,
                close: () => (server.closeAllConnections(), server.close()),
            }),
        ),
    );
}
