import { backoffDelay } from "./backoff.js";
import { Calls, type Command, type Reply, type Settle } from "./calls.js";
import { defaultDeviceStore, isValidDevice, loadDevice, type DeviceStore } from "./device.js";
import { Emitter } from "./emitter.js";
import { DisconnectedError, ServerError, TimeoutError, TooLargeError } from "./errors.js";
import { Heartbeat } from "./heartbeat.js";
import { InboundQos, type MessageFrame } from "./qos.js";
import { root } from "./root.js";
import { Subscription, type JoinLeaveInfo, type Publication, type SubscribedInfo } from "./subscription.js";
import type { Transport, TransportFactory } from "./transport.js";
import { webSocketTransport, type WebSocketConstructor } from "./transport/browser.js";

export const VERSION = "0.1.0";

export interface WspushOptions {
    /** Sent in `connect`. */
    token?: string;
    /**
     * Called before every connection attempt, and before the connection's token expires (the
     * `expires_at` of `connected`): its result is sent as the `token` of `connect`, or of a
     * `refresh` that extends the connection without interrupting it.
     */
    getToken?: () => string | Promise<string>;
    /** How long before the token's expiry it is refreshed, in ms (at most half its remaining life). Default 30000. */
    refreshBefore?: number;
    /** The user id to claim (the server must have `client.trust_client_user`). */
    user?: string;
    /** "name/version" for the server's logs. */
    client?: string;
    /**
     * The device id sent in every `connect`: 1 to 64 characters of `A–Z a–z 0–9 _ - . : @ = + ! #`
     * (a `TypeError` otherwise). Absent: a random id, generated once and kept in `deviceStore`, so
     * that the same browser profile or app install keeps it. `false`: no device is sent.
     */
    device?: string | false;
    /**
     * Where the generated device id is kept. Default: localStorage in browsers (memory when it
     * throws), the platform storage with `miniProgramTransport`, memory elsewhere (Node, React
     * Native: pass an AsyncStorage adapter to keep it across app restarts).
     */
    deviceStore?: DeviceStore;
    /**
     * A JSON object sent in `connect` (at most 1024 bytes encoded: a `TypeError` otherwise); others
     * see it in presence entries and join/leave events.
     */
    info?: Record<string, unknown>;
    /** true: log to console.debug; or a function to log with. */
    debug?: boolean | ((...args: unknown[]) => void);
    /** The WebSocket class to use (Node: the `ws` package). Default: the global WebSocket. */
    WebSocket?: WebSocketConstructor;
    /** A transport for platforms without a WebSocket class, e.g. `miniProgramTransport(wx)`. */
    transport?: TransportFactory;
    /** Default timeout of each call (publish, unsubscribe), in ms, counted from the call. Default 10000. */
    timeout?: number;
    /** Longest wait for the WebSocket to open and `connect` to be answered, in ms. Default 10000. */
    connectTimeout?: number;
    /** Reconnect delays: the n-th attempt waits random(0, min(maxReconnectDelay, minReconnectDelay·2ⁿ)) ms. Defaults 500 and 20000. */
    minReconnectDelay?: number;
    maxReconnectDelay?: number;
    /** How many recent publications (channel, epoch, offset; all channels together) are remembered to drop duplicates. Default 1000. */
    dedupWindow?: number;
    /** The server's `websocket.max_message_size`, in bytes: a larger publish fails with `TooLargeError`. Default 65536. */
    maxMessageSize?: number;
    /** Browsers: check the connection at once when the network comes back or the page becomes visible. Default true. */
    watchNetwork?: boolean;
}

export type ConnectionState = "disconnected" | "connecting" | "connected" | "reconnecting";

/** The user's offline messages, as the `connected` reply counts them. */
export interface InboxInfo {
    /** Messages kept for this device while it was away: they follow `connected` on `$user:<user>`, before any live message. */
    pending: number;
    /** Messages for this device that expired or overflowed before it got them: resync from your backend. */
    dropped: number;
}

/** The server's `connected` reply (protocol.md, "connect"). */
export interface ConnectedInfo {
    client: string;
    user: string;
    /** The device id the connection sent ("" when none). */
    device: string;
    /** Present when the connection has both a user and a device. */
    inbox?: InboxInfo;
    session: string;
    resumed: boolean;
    ping_interval: number;
    pong_timeout: number;
    node: string;
    version: string;
    /** When the connection's token expires (Unix seconds); absent without a token or an `exp`. */
    expires_at?: number;
}

export interface PublishOptions {
    /** 0, 1 or 2. Absent: the namespace's `default_qos`. */
    qos?: 0 | 1 | 2;
    /** The publication's id; generated when absent. Resends carry the same one. */
    mid?: string;
    /** In ms; default: the client's `timeout`. */
    timeout?: number;
}

export interface PublishResult {
    channel: string;
    offset: number;
    mid: string;
}

export interface HistoryOptions {
    /** Forward: offsets above it (default 0: from the oldest kept). Reverse: offsets below it (absent or 0: from the top). */
    since?: number;
    /** At most this many publications; the server's default is 100, its maximum 1000. */
    limit?: number;
    /** true: newest first. */
    reverse?: boolean;
    /** In ms; default: the client's `timeout`. */
    timeout?: number;
}

/** A publication as channel history keeps it. */
export interface HistoryPublication<T = any> {
    offset: number;
    mid: string;
    ts: number;
    data: T;
}

export interface HistoryResult<T = any> {
    channel: string;
    /** The channel's epoch and top offset when the server read the history. */
    epoch: string;
    offset: number;
    /** Ascending offsets, or descending with `reverse`. */
    publications: HistoryPublication<T>[];
}

export interface PresenceOptions {
    /** In ms; default: the client's `timeout`. */
    timeout?: number;
}

/** A connection subscribed to a channel, as the server's presence lists it. */
export interface PresenceClient {
    /** The connection's id (the `client` of its `connected` reply). */
    client: string;
    /** Its user id; "" for an anonymous connection. */
    user: string;
    /** The device id it sent in `connect`; "" when none. */
    device: string;
    /** The node (daemon) it is connected to. */
    node: string;
    /** When it connected, Unix ms. */
    connected_at: number;
    /** The `info` object it sent in `connect`; present only when it gave one. */
    info?: Record<string, unknown>;
}

export interface PresenceResult {
    channel: string;
    /** At most the namespace's `presence_max_members` entries. */
    clients: PresenceClient[];
}

export interface PresenceStats {
    channel: string;
    /** Connections subscribed to the channel, on every node. */
    clients: number;
    /** Distinct users among them (all anonymous connections count as one user, ""). */
    users: number;
}

export interface UserStatusOptions {
    /** In ms; default: the client's `timeout`. */
    timeout?: number;
}

export type ClientEvents = {
    state: [state: ConnectionState, previous: ConnectionState];
    /**
     * Each accepted `connect`. With `info.inbox`, its `pending` offline messages follow at once, as
     * `message` events on `$user:<user>`, before any live message.
     */
    connected: [info: ConnectedInfo];
    /**
     * A connection (or connection attempt) ended; `code` is its close code (1006: lost without a
     * close frame). Emitted after the `state` change it causes.
     */
    disconnected: [info: { code: number; reason: string }];
    /** Every publication delivered, including the personal channel `$user:<user>` (and its offline backlog). */
    message: [publication: Publication];
    /** Errors not tied to a call: a refused `connect`, an uncorrelated server error, a failing getToken. */
    error: [error: Error];
};

// Close codes after which the same connection would fail again (protocol.md, "Close codes").
const isFinalClose = (code: number) => (code >= 4500 && code <= 4999) || code == 1003 || code == 1007 || code == 1009;

// The largest `info` the server accepts in `connect`, in bytes once encoded.
const MAX_INFO = 1024;

// Commands are batched into frames of at most this many bytes (well under the server's limit).
const MAX_BATCH = 16384;

/** The UTF-8 size of `s`: what the server counts against its frame limit. */
const utf8Length = (s: string): number => {
    let n = s.length;
    for (let i = 0; i < s.length; i++) {
        const c = s.charCodeAt(i);
        // 2 bytes up to U+07FF, 3 above; a surrogate pair (2 units) is 4.
        if (c > 0x7f) n += c > 0x7ff && (c < 0xd800 || c > 0xdfff) ? 2 : 1;
    }
    return n;
};

/**
 * A wspush client: one WebSocket, reconnected with backoff, with a resumable session.
 *
 *     disconnected ─connect()→ connecting ─connected→ connected ─lost→ reconnecting ─connected→ connected
 *
 * (README.md has the full diagram.)
 */
export class Wspush extends Emitter<ClientEvents> {
    state: ConnectionState = "disconnected";
    /** The last `connected` reply, without its resume token. */
    info?: ConnectedInfo;
    /**
     * The device id sent in `connect`: the `device` option, or the stored or generated one once
     * resolved (before the first connection). Undefined until then, and with `device: false`.
     */
    device?: string;

    private readonly opts: Required<Pick<WspushOptions, "timeout" | "connectTimeout" | "minReconnectDelay" | "maxReconnectDelay" | "maxMessageSize">> &
        WspushOptions;
    private readonly openTransport: TransportFactory;
    private readonly log: (...args: unknown[]) => void;
    private readonly calls = new Calls();
    private readonly qos: InboundQos;
    private readonly heartbeat: Heartbeat;
    private readonly subs = new Map<string, Subscription>();

    private transport?: Transport;
    /** Identifies the current connection attempt; events of older ones are ignored. */
    private generation = 0;
    private refreshTimer?: ReturnType<typeof setTimeout>;
    /** Failed attempts since the last `connected`: the backoff exponent. */
    private attempt = 0;
    private retryTimer?: ReturnType<typeof setTimeout>;
    private connectTimer?: ReturnType<typeof setTimeout>;
    private connectId = 0;
    private session?: { session: string; resume: string };
    /** The server's `disconnect` said not to come back. */
    private refused = false;
    /** Commands written while one incoming frame is handled go out together, in one frame. */
    private batch?: Command[];
    private readonly midPrefix = Math.random().toString(36).slice(2, 10) + Date.now().toString(36);
    private midCount = 0;
    /** The device id being read from an asynchronous store. */
    private deviceLoad?: Promise<string>;

    constructor(
        readonly url: string,
        options: WspushOptions = {},
    ) {
        super();
        const o = options;
        if (o.device !== undefined && o.device !== false) {
            if (!isValidDevice(o.device)) throw new TypeError(`invalid device ${JSON.stringify(o.device)}: 1 to 64 characters of A-Z a-z 0-9 _ - . : @ = + ! #`);
            this.device = o.device;
        }
        if (o.info !== undefined) {
            if (!o.info || typeof o.info != "object" || Array.isArray(o.info)) throw new TypeError("info must be a JSON object");
            const size = utf8Length(JSON.stringify(o.info));
            if (size > MAX_INFO) throw new TypeError(`info is ${size} bytes encoded, over the limit of ${MAX_INFO}`);
        }
        // `??` per option: `{ timeout: undefined }` means the default too.
        this.opts = {
            ...o,
            timeout: o.timeout ?? 1e4,
            connectTimeout: o.connectTimeout ?? 1e4,
            minReconnectDelay: o.minReconnectDelay ?? 500,
            maxReconnectDelay: o.maxReconnectDelay ?? 2e4,
            maxMessageSize: o.maxMessageSize ?? 65536,
        };
        this.openTransport = o.transport || webSocketTransport(o.WebSocket);
        const debug = o.debug;
        this.log = typeof debug == "function" ? debug : debug ? console.debug.bind(console, "[wspush]") : () => {};
        this.qos = new InboundQos(o.dedupWindow ?? 1000);
        this.heartbeat = new Heartbeat(
            () => this.write([{ type: "ping" }]),
            () => this.lost(this.generation, 1006, "no answer to ping"),
        );
    }

    /** Starts connecting; the client then stays connected until `disconnect()` or a final close. */
    connect(): void {
        if (this.state != "disconnected") return;
        this.watchNetwork(true);
        this.setState("connecting");
        this.open();
    }

    /** Closes with 1000, which also ends the session on the server. Pending calls fail. */
    disconnect(): void {
        if (this.state == "disconnected") return;
        this.transport?.close(1000, "bye");
        this.stop(new DisconnectedError("disconnected by the application"));
    }

    /** Subscribes to `channel` (or returns the existing subscription). Works in any state. */
    subscribe(channel: string): Subscription {
        let sub = this.subs.get(channel);
        if (!sub) {
            sub = new Subscription(channel, (s) => this.unsubscribe(s));
            this.subs.set(channel, sub);
            this.subscribeOnServer(sub); // sent now, or queued in call order until connected
        }
        return sub;
    }

    getSubscription(channel: string): Subscription | undefined {
        return this.subs.get(channel);
    }

    /**
     * Publishes `data` to `channel`. Resolves when the server has published it (QoS 2: after
     * pubrec → pubrel → pubcomp). Every publish carries a `mid`, so one with QoS ≥ 1 (or the
     * namespace default) is resent on each new connection until answered, and the server does not
     * publish it again while it remembers the `mid` (README.md, "QoS and duplicates"); a QoS 0
     * publish is never resent once written.
     */
    async publish<T = unknown>(channel: string, data: T, options: PublishOptions = {}): Promise<PublishResult> {
        const { qos, mid = this.midPrefix + "-" + (++this.midCount).toString(36), timeout = this.opts.timeout } = options;
        const command = { type: "publish", channel, data, qos, mid };
        // The server closes the whole connection (1009, final) on a frame over its limit; fail
        // only this call. 30 bytes: room for the `id` added when it is sent.
        const size = utf8Length(JSON.stringify(command)) + 30;
        if (size > this.opts.maxMessageSize) throw new TooLargeError(`publish of ${size} bytes, over the limit of ${this.opts.maxMessageSize}`);
        const reply = await this.call(command, timeout, qos !== 0);
        if (reply.type == "pubrec") await this.call({ type: "pubrel", mid }, timeout, true);
        return { channel, offset: reply.offset as number, mid: reply.mid as string };
    }

    /**
     * Reads `channel`'s history (the namespace must keep history and allow clients to read it:
     * `ServerError` 103 otherwise; 107 for bad parameters). Like the other calls it waits for a
     * connection and is resent on the next one if the answer was lost: it only reads.
     */
    async history<T = any>(channel: string, options: HistoryOptions = {}): Promise<HistoryResult<T>> {
        const { since, limit, reverse, timeout = this.opts.timeout } = options;
        const { epoch, offset, publications } = await this.call({ type: "history", channel, since, limit, reverse }, timeout, true);
        return { channel, epoch, offset, publications } as HistoryResult<T>;
    }

    /**
     * Lists the connections subscribed to `channel`, on every node (the namespace must have
     * `presence` and `client_presence`: `ServerError` 103 otherwise; 115: the engine is unavailable
     * for now, retry later). The caller need not be subscribed. Like `history()` it waits for a
     * connection and is resent on the next one if the answer was lost: it only reads.
     */
    async presence(channel: string, options: PresenceOptions = {}): Promise<PresenceResult> {
        const { timeout = this.opts.timeout } = options;
        const { clients } = await this.call({ type: "presence", channel }, timeout, true);
        return { channel, clients } as PresenceResult;
    }

    /** How many connections are subscribed to `channel`, and how many distinct users; as `presence()`. */
    async presenceStats(channel: string, options: PresenceOptions = {}): Promise<PresenceStats> {
        const { timeout = this.opts.timeout } = options;
        const { clients, users } = await this.call({ type: "presence_stats", channel }, timeout, true);
        return { channel, clients, users } as PresenceStats;
    }

    /**
     * Whether each user is online: has at least one connection, on any node. `users`: 1 to 1000
     * user ids (a `TypeError` otherwise). Rejects with `ServerError` 103 when the server does not
     * allow it (`client.user_status`). Like `presence()` it waits for a connection and is resent
     * on the next one if the answer was lost.
     */
    async userStatus(users: string[], options: UserStatusOptions = {}): Promise<Record<string, boolean>> {
        if (!Array.isArray(users) || users.length < 1 || users.length > 1000 || !users.every((u) => typeof u == "string")) {
            throw new TypeError("userStatus() takes an array of 1 to 1000 user ids (strings)");
        }
        const { timeout = this.opts.timeout } = options;
        const reply = await this.call({ type: "status", users: users.slice() }, timeout, true);
        return reply.users as Record<string, boolean>;
    }

    // ---- connection lifecycle ----

    private setState(state: ConnectionState): void {
        const previous = this.state;
        if (state == previous) return;
        this.state = state;
        this.log("state", previous, "→", state);
        this.emit("state", state, previous);
    }

    private async open(): Promise<void> {
        const generation = ++this.generation;
        this.retryTimer = undefined;
        this.refused = false;
        let token = this.opts.token;
        try {
            if (this.opts.getToken) token = await this.opts.getToken();
        } catch (err) {
            if (generation != this.generation) return;
            this.emit("error", err as Error);
            return this.lost(generation, 1006, "getToken failed");
        }
        const device = this.resolveDevice();
        if (device && typeof device != "string") await device;
        if (generation != this.generation) return;
        this.connectTimer = setTimeout(() => this.lost(generation, 1006, "connect timeout"), this.opts.connectTimeout);
        try {
            this.transport = this.openTransport(this.url, {
                open: () => generation == this.generation && this.sendConnect(token),
                message: (data) => generation == this.generation && this.receive(data),
                close: (code, reason) => this.lost(generation, code, reason),
            });
        } catch (err) {
            // A bad URL or a missing WebSocket class will not get better by retrying.
            this.emit("error", err as Error);
            this.stop(err as Error);
        }
    }

    private sendConnect(token?: string): void {
        const { user, client = "wspush-js/" + VERSION, info } = this.opts;
        this.connectId = this.calls.nextId();
        this.write([{ type: "connect", id: this.connectId, token, user, client, device: this.device, info, ...this.session }]);
    }

    /**
     * The device id, from the option or the store (generated and stored the first time): a string
     * when known or read synchronously, a promise while an asynchronous store reads it, undefined
     * with `device: false`. Resolved once per client.
     */
    private resolveDevice(): string | Promise<string> | undefined {
        if (this.device !== undefined || this.opts.device === false) return this.device;
        if (this.deviceLoad) return this.deviceLoad;
        const store = this.opts.deviceStore || this.openTransport.deviceStore || defaultDeviceStore();
        const device = loadDevice(store, this.log);
        if (typeof device == "string") return (this.device = device);
        return (this.deviceLoad = device.then((d) => (this.device = d)));
    }

    private connected(reply: Reply): void {
        if (reply.type == "error") {
            // 101/103: the server closes with 4501 next, which ends the reconnecting.
            this.emit("error", new ServerError(reply.code as number, reply.message as string));
            return;
        }
        // The resume token is a secret: kept for the next connect, not exposed in `info`.
        const { id, type, resume, ...info } = reply as unknown as ConnectedInfo & { id: number; type: string; resume: string };
        const generation = this.generation;
        clearTimeout(this.connectTimer);
        this.attempt = 0;
        this.session = { session: info.session, resume };
        if (typeof info.device != "string") info.device = ""; // a server from before devices
        if (!info.resumed) {
            // The dedup window stays: a recovered publication the app already has is dropped.
            this.qos.newSession();
            for (const sub of this.subs.values()) sub.known = false;
        }
        this.info = info;
        this.heartbeat.start(info.ping_interval * 1e3, info.pong_timeout * 1e3);
        this.scheduleRefresh(info.expires_at);
        // Listeners may disconnect (or reconnect) the client: after each event, go on only if this
        // is still the current connection.
        this.setState("connected");
        // A resumed session still holds the subscriptions it had; any other is subscribed again,
        // recovering from each subscription's position.
        for (const sub of this.subs.values()) {
            if (generation != this.generation) return;
            if (sub.known) sub.subscribed({ channel: sub.channel, resumed: true });
            else if (!sub.pending) this.subscribeOnServer(sub);
        }
        if (generation != this.generation) return;
        this.flush();
        this.emit("connected", info);
    }

    /**
     * Connection `generation` is gone: clean up, then reconnect unless the server said not to.
     * Events come last, once the state and the retry timer are in place, so that a listener's
     * `disconnect()`, `publish()` or `subscribe()` sees the client as it now is.
     */
    private lost(generation: number, code: number, reason: string): void {
        if (generation != this.generation) return;
        const transport = this.transport;
        this.detach();
        transport?.close();
        this.calls.connectionLost();
        this.log("closed", code, reason);
        if (this.refused || isFinalClose(code)) {
            this.stop(new DisconnectedError(`closed by the server: ${code} ${reason}`));
        } else {
            const { minReconnectDelay: min, maxReconnectDelay: max } = this.opts;
            this.retryTimer = setTimeout(() => this.open(), backoffDelay(this.attempt++, { min, max }));
            this.setState("reconnecting");
        }
        this.emit("disconnected", { code, reason });
    }

    /**
     * Refreshes the connection's token before it expires (the server would close with 4006): the
     * app's getToken gives a new one, sent as `refresh`. A failure is reported as an `error`; if
     * the token then expires, the close 4006 leads to a reconnect with a token from getToken.
     */
    private scheduleRefresh(expiresAt?: number | null): void {
        clearTimeout(this.refreshTimer);
        if (expiresAt == null || !this.opts.getToken) return;
        const left = expiresAt * 1e3 - Date.now();
        const delay = Math.max(0, left - Math.min(this.opts.refreshBefore ?? 30_000, left / 2));
        const generation = this.generation;
        this.refreshTimer = setTimeout(() => void this.refreshToken(generation), delay);
    }

    private async refreshToken(generation: number): Promise<void> {
        try {
            const token = await this.opts.getToken!();
            if (generation != this.generation) return;
            const reply = await this.call({ type: "refresh", token }, this.opts.timeout, false);
            if (generation == this.generation) this.scheduleRefresh(reply.expires_at as number | null);
        } catch (err) {
            // 101: the server closes with 4501 next. Anything else: the expiry's 4006 reconnects.
            if (generation == this.generation) this.emit("error", err as Error);
        }
    }

    /** Forgets the current connection (attempt) and its timers. */
    private detach(): void {
        this.generation++;
        this.transport = undefined;
        clearTimeout(this.refreshTimer);
        this.heartbeat.stop();
        clearTimeout(this.connectTimer);
        clearTimeout(this.retryTimer);
        this.retryTimer = undefined;
        for (const sub of this.subs.values()) if (sub.state == "subscribed") sub.state = "subscribing";
    }

    /** Ends the client's activity: it is `disconnected` until the next `connect()`. */
    private stop(err: Error): void {
        this.detach();
        // Only reached by a close that ends the session (1000 from us, or a final close).
        this.session = undefined;
        for (const sub of this.subs.values()) sub.known = false;
        this.calls.failAll(err);
        this.attempt = 0;
        this.watchNetwork(false);
        this.setState("disconnected");
    }

    // ---- browsers: react at once when the network or the page's visibility changes ----

    private watchNetwork(on: boolean): void {
        if (this.opts.watchNetwork === false || !root.document || !root.addEventListener) return;
        const method = on ? "addEventListener" : "removeEventListener";
        root[method]("online", this.wake);
        root[method]("offline", this.wake);
        root.document[method]("visibilitychange", this.wake);
    }

    // `offline` only checks the connection (it is probably dead); a page becoming hidden does
    // nothing: only `online` or the page becoming visible is a reason to skip the backoff.
    private wake = (ev: Event): void => {
        if (ev.type == "visibilitychange" && root.document.visibilityState == "hidden") return;
        if (this.state == "connected") this.heartbeat.check();
        else if (this.retryTimer && ev.type != "offline" && root.navigator?.onLine !== false) {
            clearTimeout(this.retryTimer);
            this.open();
        }
    };

    // ---- frames ----

    private receive(frame: string): void {
        const generation = this.generation;
        this.heartbeat.received();
        const batch: Command[] = (this.batch = []);
        try {
            for (const line of frame.split("\n")) {
                if (!line || generation != this.generation) continue;
                this.log("←", line);
                let message: Reply;
                try {
                    message = JSON.parse(line);
                } catch {
                    continue; // the server only sends JSON; a corrupt line is dropped, not fatal
                }
                if (message && typeof message == "object") this.handle(message);
            }
        } finally {
            this.batch = undefined;
            // Not onto another connection: a listener may have ended this one meanwhile.
            if (generation == this.generation) this.write(batch);
        }
    }

    private handle(m: Reply): void {
        switch (m.type) {
            case "message":
                return this.deliver(m as unknown as MessageFrame);
            case "rel":
                return this.write([this.qos.released(m.did as number)]);
            case "disconnect":
                this.refused = m.reconnect === false;
                return;
            case "unsubscribed":
                // A push (no id): the server dropped the subscription; replies go to their call.
                if (m.id == null) return this.droppedByServer(m);
                break;
            case "join":
            case "leave":
                if (m.id == null) return this.joinedOrLeft(m);
        }
        if (m.id != null && m.id == this.connectId) return this.connected(m);
        if (m.id != null && this.calls.settle(m.id, m)) return;
        if (m.type == "error") this.emit("error", new ServerError(m.code as number, m.message as string));
    }

    /** A `join` or `leave` push: for the subscription of its channel, if there still is one. */
    private joinedOrLeft(m: Reply): void {
        const { channel, client, user, device, info } = m as Record<string, any>;
        const sub = this.subs.get(channel);
        if (!sub) return;
        const change: JoinLeaveInfo = { channel, client, user, device: device ?? "" };
        if (info && typeof info == "object") change.info = info;
        sub.presenceChanged(m.type as "join" | "leave", change);
    }

    private deliver(m: MessageFrame): void {
        const { deliver, answer } = this.qos.receive(m);
        if (deliver) {
            const { channel, data, offset, epoch, mid, ts } = m;
            const publication: Publication = { channel, data, offset, epoch, mid, ts, qos: m.qos || 0 };
            this.subs.get(channel)?.deliver(publication);
            this.emit("message", publication);
        } else this.log("duplicate dropped", m.channel, m.mid);
        // Answered after the app has it: an ack means "the application has the message".
        if (answer) this.write([answer]);
    }

    /** Sends commands, several per frame; while a frame is being handled, they join its batch. */
    private write(commands: Command[]): void {
        if (this.batch) return void this.batch.push(...commands);
        const limit = Math.min(MAX_BATCH, this.opts.maxMessageSize);
        let frame = "";
        let bytes = 0;
        for (const command of commands) {
            const line = JSON.stringify(command);
            const n = utf8Length(line) + 1; // with its "\n"
            if (bytes && bytes + n > limit) this.sendFrame(frame), (frame = ""), (bytes = 0);
            frame += (bytes ? "\n" : "") + line;
            bytes += n;
        }
        if (bytes) this.sendFrame(frame);
    }

    private sendFrame(frame: string): void {
        this.log("→", frame);
        try {
            this.transport?.send(frame);
        } catch (err) {
            this.log("send failed", err); // the close event follows
        }
    }

    // ---- calls ----

    /** Sends `command` now, or once connected; `done` gets the reply or the error. */
    private request(command: Command, timeout: number, resend: boolean, done: Settle): number {
        const id = this.calls.add(command, timeout, resend, done);
        this.flush();
        return id;
    }

    /**
     * Writes the calls not yet sent, if there is a connection to send them on: a call taken
     * (marked sent) without one would never be sent. "connected" implies an open transport, as
     * every path that drops it changes the state before anything else can run.
     */
    private flush(): void {
        if (this.state == "connected") this.write(this.calls.takeUnsent());
    }

    private call(command: Command, timeout: number, resend: boolean): Promise<Reply> {
        return new Promise((resolve, reject) => this.request(command, timeout, resend, (err, reply) => (err ? reject(err) : resolve(reply!))));
    }

    /**
     * Subscribes `sub` on the server: the first time plainly, later (new session, or the server's
     * request to resubscribe) with `since`, its last position, so that the server sends what was
     * missed or says it cannot (`recovered`).
     */
    private subscribeOnServer(sub: Subscription): void {
        const { channel, position } = sub;
        const since = position && { offset: position.offset, epoch: position.epoch };
        const current = () => this.subs.get(channel) == sub;
        // No timeout: a subscription waits for as many connections as it takes. The outcome is
        // handled synchronously so that `known` and the position are right for whatever the next
        // frame brings (the recovered publications).
        sub.pending = this.request({ type: "subscribe", channel, since }, 0, true, (err, reply) => {
            sub.pending = 0;
            // 105: our earlier subscribe reached the server before the connection was lost.
            if (!err || (err instanceof ServerError && err.code == 105)) {
                sub.known = true;
                sub.retries = 0;
                if (!current()) return;
                const info: SubscribedInfo = { channel, offset: reply?.offset as number, epoch: reply?.epoch as string, resumed: !reply };
                // A server that does not know `since` recovered nothing.
                if (since && reply) info.recovered = reply.recovered === true;
                sub.subscribed(info);
            } else if (err instanceof ServerError && (err.code == 115 || err.code == 116)) {
                // 115: the server's engine (Redis) is unavailable for now; 116: this connection
                // sent more commands than the server's rate allows (many subscriptions made at
                // once, as after a reconnect). Either heals by itself: the subscription waits and
                // tries again, with backoff, rather than end.
                if (!current()) return;
                const delay = backoffDelay(sub.retries++, { min: this.opts.minReconnectDelay, max: this.opts.maxReconnectDelay });
                clearTimeout(sub.retryTimer);
                sub.retryTimer = setTimeout(() => {
                    if (current() && !sub.known && !sub.pending && this.state == "connected") this.subscribeOnServer(sub);
                }, delay);
            } else if (err instanceof ServerError) {
                if (current()) this.subs.delete(channel);
                sub.ended(err);
            } // DisconnectedError: subscribed again on the next connect()
        });
    }

    /**
     * The server's `unsubscribed` push. With `resubscribe`, it found a gap or a new epoch in the
     * channel: subscribe again from the last position. Without, the subscription is over.
     */
    private droppedByServer(m: Reply): void {
        const channel = m.channel as string;
        const sub = this.subs.get(channel);
        if (!sub) return; // unsubscribed by the app meanwhile
        sub.known = false;
        if (m.resubscribe === true) {
            if (sub.state == "subscribed") sub.state = "subscribing";
            if (!sub.pending) this.subscribeOnServer(sub);
        } else {
            this.subs.delete(channel);
            sub.ended(undefined, (m.reason as string) || "unsubscribed by the server");
        }
    }

    private unsubscribe(sub: Subscription): Promise<void> {
        const { channel } = sub;
        if (this.subs.get(channel) != sub) return Promise.resolve();
        this.subs.delete(channel);
        sub.ended();
        // The server never had it, or never will: its subscribe was not written yet.
        if (!sub.known && (!sub.pending || this.calls.withdraw(sub.pending))) return Promise.resolve();
        const { timeout } = this.opts;
        return new Promise((resolve, reject) => {
            // The timeout only rejects the promise: the command itself stays, resent on each new
            // connection until answered, so the server's subscription does not outlive a slow
            // or absent connection.
            const timer = setTimeout(() => reject(new TimeoutError(`no answer to unsubscribe within ${timeout} ms`)), timeout);
            this.request({ type: "unsubscribe", channel }, 0, true, (err) => {
                clearTimeout(timer);
                // 111: the server's session no longer had it (a new session): nothing to undo.
                if (err && !(err instanceof ServerError && err.code == 111)) reject(err);
                else resolve();
            });
        });
    }
}
