// Browsers and React Native: their global WebSocket is the standard API, which the `ws` package
// and Node 22's global WebSocket speak too (see node.ts).
import { root } from "../root.js";
import type { TransportFactory } from "../transport.js";

/**
 * The standard WebSocket API, as browsers, React Native, Node ≥ 22 (global) and the `ws` package
 * (its `onmessage` hands text frames over as strings) all provide it.
 */
// Handler parameters are `any` so that every implementation's own event types fit.
export interface WebSocketLike {
    onopen: ((ev: any) => void) | null;
    onmessage: ((ev: any) => void) | null;
    onclose: ((ev: any) => void) | null;
    onerror: ((ev: any) => void) | null;
    send(data: string): void;
    close(code?: number, reason?: string): void;
    /** `ws` only: drop the socket without a close handshake. */
    terminate?(): void;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** A transport over a WebSocket class: the global one by default. */
export function webSocketTransport(WebSocketClass?: WebSocketConstructor): TransportFactory {
    return (url, events) => {
        const WS: WebSocketConstructor | undefined = WebSocketClass || root.WebSocket;
        if (!WS) throw new Error("no WebSocket here: pass one (e.g. the `ws` package) as the WebSocket option");
        const ws = new WS(url);
        ws.onopen = () => events.open();
        // Binary frames are not part of protocol v1; the server never sends them.
        ws.onmessage = (ev: { data: unknown }) => typeof ev.data == "string" && events.message(ev.data);
        ws.onclose = (ev: { code: number; reason: string }) => events.close(ev.code || 1006, ev.reason || "");
        ws.onerror = () => {}; // always followed by close
        return {
            send: (data) => ws.send(data),
            close(code, reason) {
                try {
                    // Abandoned (no code): `ws` can drop the socket at once. Elsewhere close with
                    // 4000: React Native sends 1000 for a close without a code, and 1000 ends the
                    // session on the server, so the next connection could not resume it.
                    if (!code && ws.terminate) ws.terminate();
                    else ws.close(code || 4000, code ? reason : "abandoned");
                } catch {
                    // closing a socket that is already closing is not an error worth reporting
                }
            },
        };
    };
}
