import type { DeviceStore } from "./device.js";

/** What a transport reports to the client. Events after `close` are ignored. */
export interface TransportEvents {
    open(): void;
    /** One text frame (it may carry several `\n`-separated messages). */
    message(data: string): void;
    /** The connection is closed (1006 when it was lost without a close frame). */
    close(code: number, reason: string): void;
}

/** One WebSocket connection, as the client needs it. */
export interface Transport {
    send(data: string): void;
    /**
     * With a code: a regular close (the client sends 1000 to end its session). Without: the
     * connection is dead or abandoned, so drop it now rather than wait for a close handshake that
     * may never come; a socket that cannot be dropped is closed with a code in 4000–4499, never
     * 1000, which would end the session.
     */
    close(code?: number, reason?: string): void;
}

/**
 * Opens a connection to `url`. Adapters for each platform are in ./transport/. A factory may carry
 * the platform's `deviceStore` (the mini-program transport does): the client uses it to keep its
 * device id when the app gives no `deviceStore` option.
 */
export type TransportFactory = ((url: string, events: TransportEvents) => Transport) & { deviceStore?: DeviceStore };
