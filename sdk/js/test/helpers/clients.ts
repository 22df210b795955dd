// Node clients for the end-to-end tests: the SDK over the `ws` package, recording what reaches the app.
import WebSocket from "ws";
import { Wspush, type Publication, type WspushOptions } from "../../src/index.js";
import { waitFor } from "./wait.js";

export interface TestClient {
    client: Wspush;
    /** Every publication handed to the application. */
    received: Publication[];
    /** Every text frame that arrived, raw. */
    frames: string[];
}

const open = new Set<Wspush>();

/** A client over `Base` (the `ws` class, or a test subclass of it) that records incoming frames. */
export function makeClient(url: string, options: WspushOptions = {}, Base: typeof WebSocket = WebSocket): TestClient {
    const frames: string[] = [];
    class RecordingWebSocket extends Base {
        constructor(address: string) {
            super(address);
            this.on("message", (data, isBinary) => isBinary || frames.push(String(data)));
        }
    }
    const client = new Wspush(url, { WebSocket: RecordingWebSocket, minReconnectDelay: 100, maxReconnectDelay: 2000, ...options });
    const received: Publication[] = [];
    client.on("message", (m) => received.push(m));
    open.add(client);
    return { client, received, frames };
}

/** Disconnects every client made so far (call from `afterEach`). */
export function disconnectAll(): void {
    for (const c of open) c.disconnect();
    open.clear();
}

export async function connected(client: Wspush, timeout = 10_000): Promise<void> {
    client.connect();
    await waitFor(() => client.state == "connected", "the client to connect", timeout);
}
