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

export interface SubscribedInfo {
    channel: string;
    /** The channel's top offset when the subscription took effect (absent when resumed). */
    offset?: number;
    epoch?: string;
    /** True when the subscription came back with a resumed session rather than a new `subscribe`. */
    resumed: boolean;
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
    error: [error: Error];
};

/** One channel the client is subscribed to. Create it with `client.subscribe(channel)`. */
export class Subscription extends Emitter<SubscriptionEvents> {
    state: SubscriptionState = "subscribing";
    /** @internal The server's session holds this subscription. */
    known = false;
    /** @internal The id of the outstanding `subscribe` command, 0 if none. */
    pending = 0;
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

    /** @internal */
    subscribed(info: SubscribedInfo): void {
        this.state = "subscribed";
        this.info = info;
        for (const [resolve] of this.waiting.splice(0)) resolve(info);
        this.emit("subscribed", info);
    }

    /** @internal Ended: refused by the server (`err`), or by `unsubscribe()`. */
    ended(err?: Error): void {
        this.state = "unsubscribed";
        this.error = err;
        for (const [, reject] of this.waiting.splice(0)) reject(err || new WspushError("unsubscribed"));
        if (err) this.emit("error", err);
    }

    /** @internal */
    deliver(publication: Publication): void {
        this.emit("message", publication);
    }
}
