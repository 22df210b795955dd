import { webSocketTransport, type WebSocketConstructor } from "./browser.js";
import type { TransportFactory } from "../transport.js";

/**
 * Node: pass the `ws` package's WebSocket class (`import WebSocket from "ws"`), or nothing to use
 * the global WebSocket of Node ≥ 22. With `ws`, a dead connection is dropped at once (`terminate`)
 * instead of waiting 30 s for a close handshake.
 */
export function nodeTransport(WebSocketClass?: WebSocketConstructor): TransportFactory {
    return webSocketTransport(WebSocketClass);
}
