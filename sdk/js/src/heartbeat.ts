/**
 * Application-level liveness of one connection. Browsers never surface WebSocket ping frames, and a
 * connection cut without a close frame (a NAT dropping it, a laptop waking up) looks open forever,
 * so the client watches what it *receives*: after `interval` ms of silence it sends a ping, and if
 * nothing at all arrives within `timeout` ms more, the connection is declared dead.
 */
export class Heartbeat {
    private idleTimer?: ReturnType<typeof setTimeout>;
    private deadTimer?: ReturnType<typeof setTimeout>;
    private interval = 0;
    private timeout = 0;

    constructor(
        private readonly sendPing: () => void,
        private readonly onDead: () => void,
    ) {}

    /** Starts watching with the server's `ping_interval` and `pong_timeout`, in ms. */
    start(interval: number, timeout: number): void {
        this.interval = interval;
        this.timeout = timeout;
        this.received();
    }

    /** Something arrived: the connection is alive; the silence count starts over. */
    received(): void {
        if (!this.interval) return;
        this.clear();
        this.idleTimer = setTimeout(() => this.check(), this.interval);
    }

    /** Pings now and declares the connection dead unless something arrives within `timeout`. */
    check(): void {
        if (!this.interval || this.deadTimer) return;
        this.sendPing();
        this.deadTimer = setTimeout(() => {
            this.stop();
            this.onDead();
        }, this.timeout);
    }

    /** Stops watching until the next `start()`: frames of a connection not yet `connected` must not start the idle timer. */
    stop(): void {
        this.interval = 0;
        this.clear();
    }

    private clear(): void {
        clearTimeout(this.idleTimer);
        clearTimeout(this.deadTimer);
        this.idleTimer = this.deadTimer = undefined;
    }
}
