// An in-memory stand-in for the server side of a connection, for unit tests.
import { afterEach, beforeEach, mock } from "node:test";
import { Wspush, type WspushOptions } from "../../src/index.js";
import type { Transport, TransportEvents, TransportFactory } from "../../src/transport.js";

/** For every test of the calling file: mocked setTimeout, and backoff delays exactly half their bound. */
export function useFakeTime(): void {
    beforeEach(() => {
        mock.timers.enable({ apis: ["setTimeout"] });
        mock.method(Math, "random", () => 0.5);
    });
    afterEach(() => {
        mock.timers.reset();
        mock.restoreAll();
    });
}

/** A client connected to a new FakeServer (its socket accepted, `connect` not answered yet). */
export function connectedClient(options: Partial<WspushOptions> = {}) {
    const server = new FakeServer();
    const client = new Wspush("ws://test/ws", { transport: server.transport, minReconnectDelay: 1000, ...options });
    client.connect();
    server.last.accept();
    return { server, client };
}

export class FakeSocket implements Transport {
    /** Every command the client wrote, parsed, across frames. */
    sent: any[] = [];
    frames: string[] = [];
    closedWith?: { code?: number; reason?: string };
    private opened = false;

    constructor(
        readonly url: string,
        private readonly events: TransportEvents,
    ) {}

    // ---- the client's side ----
    send(data: string): void {
        this.frames.push(data);
        for (const line of data.split("\n")) this.sent.push(JSON.parse(line));
    }
    close(code?: number, reason?: string): void {
        this.closedWith ||= { code, reason };
    }

    // ---- the test's (server's) side ----
    open(): void {
        if (this.opened) return;
        this.opened = true;
        this.events.open();
    }
    /** Delivers the messages in one frame, separated by '\n'. */
    push(...messages: object[]): void {
        this.events.message(messages.map((m) => JSON.stringify(m)).join("\n"));
    }
    serverClose(code = 1006, reason = ""): void {
        this.events.close(code, reason);
    }
    /** Opens (unless open) and answers the client's connect. */
    accept(fields: Record<string, unknown> = {}): void {
        this.open();
        const connect = this.sentOfType("connect")[0];
        this.push({
            id: connect.id,
            type: "connected",
            client: "c1",
            user: "",
            session: "s1",
            resume: "r1",
            resumed: false,
            ping_interval: 25,
            pong_timeout: 10,
            node: "test",
            version: "0",
            ...fields,
        });
    }
    sentOfType(type: string): any[] {
        return this.sent.filter((m) => m.type == type);
    }
}

export class FakeServer {
    sockets: FakeSocket[] = [];
    transport: TransportFactory = (url, events) => {
        const socket = new FakeSocket(url, events);
        this.sockets.push(socket);
        return socket;
    };
    get last(): FakeSocket {
        return this.sockets[this.sockets.length - 1];
    }
}

/** Lets pending promise callbacks run (setImmediate is not faked by mock.timers here). */
export const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A WebSocket class without `terminate` (browsers, React Native) that records its close calls. */
export function plainWebSocketClass(closes: unknown[]) {
    return class PlainWebSocket {
        onopen: any = null;
        onmessage: any = null;
        onclose: any = null;
        onerror: any = null;
        send() {}
        close(code?: number, reason?: string) {
            closes.push([code, reason]);
        }
    };
}
