import { Emitter } from "./emitter.js";
import { WspushError } from "./errors.js";

/** A publication as the application receives it. */
export interface Publication<T = any> {
    channel: string;
    data: T;
    /** Position in the channel's stream: gap-free and increasing within `epoch`. */
    offset: number;
    epoch: string;
    /** The publication's id: the server's, or the publishing client's own `mid`. */
    mid: string;
    /** Publish time, Unix ms. */
    ts: number;
    qos: 0 | 1 | 2;
}

/** A place in a channel's stream: an offset within an epoch. */
export interface StreamPosition {
    offset: number;
    epoch: string;
}

export interface SubscribedInfo {
    channel: string;
    /** The channel's top offset when the subscription took effect (absent when resumed). */
    offset?: number;
    epoch?: string;
    /** True when the subscription came back with a resumed session rather than a new `subscribe`. */
    resumed: boolean;
    /**
     * Present only when the client asked the server to recover the publications it missed (a
     * subscribe with `since`, after a new session or the server's request to resubscribe).
     * true: every missed publication follows, in order, before any live one. false: they are lost
     * (history too short, channel epoch changed, …): reload the state from your backend.
     */
    recovered?: boolean;
}

/** The server ended the subscription (protocol.md, "unsubscribed" push) and will not take it back. */
export interface UnsubscribedInfo {
    channel: string;
    reason: string;
}

/**
 * A connection joined or left the channel (the `join` and `leave` pushes of a namespace with
 * `join_leave`).
 */
export interface JoinLeaveInfo {
    channel: string;
    /** The connection's id (the `client` of its `connected` reply). */
    client: string;
    /** Its user id; "" for an anonymous connection. */
    user: string;
    /** Its device id; "" when it sent none. */
    device: string;
    /** The `info` object it sent in `connect`; present only when it gave one. */
    info?: Record<string, unknown>;
}

/**
 * - `subscribing`: waiting for the server (or for a connection);
 * - `subscribed`: messages flow;
 * - `unsubscribed`: ended by `unsubscribe()` or refused by the server (an `error` event says why).
 */
export type SubscriptionState = "subscribing" | "subscribed" | "unsubscribed";

export type SubscriptionEvents = {
    message: [publication: Publication];
    subscribed: [info: SubscribedInfo];
    /** Ended by the server for good; the subscription is over. */
    unsubscribed: [info: UnsubscribedInfo];
    /** A connection subscribed to the channel (namespaces with `join_leave`). */
    join: [info: JoinLeaveInfo];
    /** A connection unsubscribed from the channel, or closed (namespaces with `join_leave`). */
    leave: [info: JoinLeaveInfo];
    error: [error: Error];
};

/** One channel the client is subscribed to. Create it with `client.subscribe(channel)`. */
export class Subscription extends Emitter<SubscriptionEvents> {
    state: SubscriptionState = "subscribing";
    /** @internal The server's session holds this subscription. */
    known = false;
    /** @internal The id of the outstanding `subscribe` command, 0 if none. */
    pending = 0;
    /** @internal Subscribes refused with 115 (the server's engine unavailable) in a row. */
    retries = 0;
    /** @internal The timer of the next try after a 115. */
    retryTimer?: ReturnType<typeof setTimeout>;
    /**
     * The last position known in the channel (read-only): from `subscribed`, then from every
     * publication delivered. A new subscribe after a lost session asks the server for what came
     * after it.
     */
    position?: StreamPosition;
    private info?: SubscribedInfo;
    private error?: Error;
    /** The settle functions of `ready()` promises still waiting. */
    private waiting: [(info: SubscribedInfo) => void, (err: Error) => void][] = [];

    /** @internal */
    constructor(
        readonly channel: string,
        private readonly remove: (sub: Subscription) => Promise<void>,
    ) {
        super();
    }

    /** Stops delivery of this channel. Resolves once the server confirmed it (or had nothing to stop). */
    unsubscribe(): Promise<void> {
        return this.remove(this);
    }

    /** Resolves when the subscription is (or already was) in effect; rejects if it is refused. */
    ready(): Promise<SubscribedInfo> {
        return new Promise((resolve, reject) => {
            if (this.state == "subscribed") return resolve(this.info!);
            if (this.state == "unsubscribed") return reject(this.error || new WspushError("unsubscribed"));
            this.waiting.push([resolve, reject]);
        });
    }

    /**
     * @internal In effect. A `subscribed` reply (not `resumed`) names the channel's top: the new
     * position, except after a recovery, where it stays put: the publications up to the top are
     * still to come, and if the connection is lost before they arrive the next recovery must
     * ask for them again.
     */
    subscribed(info: SubscribedInfo): void {
        if (!info.resumed && !info.recovered) this.position = { offset: info.offset!, epoch: info.epoch! };
        this.state = "subscribed";
        this.info = info;
        for (const [resolve] of this.waiting.splice(0)) resolve(info);
        this.emit("subscribed", info);
    }

    /** @internal Ended: by `unsubscribe()`, refused by the server (`err`), or ended by it (`reason`). */
    ended(err?: Error, reason?: string): void {
        this.state = "unsubscribed";
        this.error = err;
        for (const [, reject] of this.waiting.splice(0)) reject(err || new WspushError(reason || "unsubscribed"));
        if (err) this.emit("error", err);
        if (reason != null) this.emit("unsubscribed", { channel: this.channel, reason });
    }

    /** @internal A `join` or `leave` push for this channel. */
    presenceChanged(type: "join" | "leave", info: JoinLeaveInfo): void {
        this.emit(type, info);
    }

    /**
     * @internal Hands a publication to the app and moves the position forward. Only forward: a
     * QoS 1/2 message may arrive after later QoS 0 ones, and a resend after its successors. A
     * publication of another epoch does not move it: the server asks for a resubscribe when the
     * epoch changes, and the recovery must then start from the old epoch to report the loss.
     */
    deliver(publication: Publication): void {
        const { offset, epoch } = publication;
        const p = this.position;
        if (!p) this.position = { offset, epoch };
        else if (p.epoch == epoch && offset > p.offset) p.offset = offset;
        this.emit("message", publication);
    }
}
