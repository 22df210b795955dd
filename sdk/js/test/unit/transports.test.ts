import assert from "node:assert/strict";
import { test } from "node:test";
import { miniProgramTransport, webSocketTransport, Wspush } from "../../src/index.js";
import { plainWebSocketClass } from "../helpers/fake-transport.js";

function recorder() {
    const events: unknown[][] = [];
    return {
        events,
        handlers: {
            open: () => events.push(["open"]),
            message: (d: string) => events.push(["message", d]),
            close: (c: number, r: string) => events.push(["close", c, r]),
        },
    };
}

test("mini-program transport maps wx/uni SocketTask callbacks and calls", () => {
    const calls: unknown[] = [];
    const cbs: Record<string, (arg?: any) => void> = {};
    const api = {
        connectSocket(options: { url: string; complete?: () => void }) {
            calls.push(["connectSocket", options.url, typeof options.complete]);
            return {
                onOpen: (cb: any) => (cbs.open = cb),
                onMessage: (cb: any) => (cbs.message = cb),
                onClose: (cb: any) => (cbs.close = cb),
                onError: (cb: any) => (cbs.error = cb),
                send: (o: { data: string }) => calls.push(["send", o.data]),
                close: (o: { code?: number; reason?: string }) => calls.push(["close", o.code, o.reason]),
            };
        },
    };
    const { events, handlers } = recorder();
    const t = miniProgramTransport(api)("wss://x/ws", handlers);
    cbs.open();
    cbs.message({ data: "a\nb" });
    cbs.message({ data: new ArrayBuffer(1) }); // binary: not protocol v1, ignored
    cbs.close({ code: 1001, reason: "shutdown" });
    cbs.error({});
    t.send("x");
    t.close(1000, "bye");
    t.close(); // abandoned: not 1000, which would end the session
    assert.deepEqual(events, [["open"], ["message", "a\nb"], ["close", 1001, "shutdown"], ["close", 1006, "socket error"]]);
    assert.deepEqual(calls, [["connectSocket", "wss://x/ws", "function"], ["send", "x"], ["close", 1000, "bye"], ["close", 4000, undefined]]);
});

test("WebSocket transport: standard events; an abandoned ws socket is terminated", () => {
    const made: any[] = [];
    class FakeWS {
        onopen: any = null;
        onmessage: any = null;
        onclose: any = null;
        onerror: any = null;
        log: unknown[] = [];
        constructor(readonly url: string) {
            made.push(this);
        }
        send(d: string) {
            this.log.push(["send", d]);
        }
        close(code?: number, reason?: string) {
            this.log.push(["close", code, reason]);
        }
        terminate() {
            this.log.push(["terminate"]);
        }
    }
    const { events, handlers } = recorder();
    const t = webSocketTransport(FakeWS)("ws://x/ws", handlers);
    const ws = made[0];
    ws.onopen({});
    ws.onmessage({ data: "hello" });
    ws.onclose({ code: 0, reason: "" }); // some platforms report no code for a lost connection
    t.send("s");
    t.close(1000, "bye");
    t.close();
    assert.deepEqual(events, [["open"], ["message", "hello"], ["close", 1006, ""]]);
    assert.deepEqual(ws.log, [["send", "s"], ["close", 1000, "bye"], ["terminate"]]);
});

test("WebSocket transport without terminate (browsers, React Native): abandoning closes with 4000, not 1000", () => {
    const log: unknown[] = [];
    const PlainWS = plainWebSocketClass(log);
    const t = webSocketTransport(PlainWS)("ws://x/ws", recorder().handlers);
    t.close(); // abandoned: a close without a code would be sent as 1000 by React Native
    t.close(1000, "bye");
    assert.deepEqual(log, [
        [4000, "abandoned"],
        [1000, "bye"],
    ]);
});

test("no WebSocket anywhere: connect() reports it and stays disconnected", () => {
    const errors: Error[] = [];
    const client = new Wspush("ws://x/ws", { watchNetwork: false });
    client.on("error", (e) => errors.push(e));
    const saved = (globalThis as any).WebSocket;
    delete (globalThis as any).WebSocket;
    try {
        client.connect();
    } finally {
        if (saved) (globalThis as any).WebSocket = saved;
    }
    assert.equal(client.state, "disconnected");
    assert.match(errors[0].message, /no WebSocket/);
});
