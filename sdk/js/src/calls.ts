import { DisconnectedError, ServerError, TimeoutError } from "./errors.js";

/** A command sent to the server, as an object (serialised to one line of a frame). */
export type Command = { type: string; id?: number; [field: string]: unknown };

/** A reply from the server to a command with an `id`. */
export type Reply = { type: string; id?: number; code?: number; message?: string; [field: string]: unknown };

/** Receives a call's outcome, synchronously, as it arrives. */
export type Settle = (err: Error | undefined, reply?: Reply) => void;

interface Call {
    command: Command;
    /** Sent on the current connection (an unsent call waits for the next `connected`). */
    sent: boolean;
    /** Resend on the next connection when the current one is lost before the answer. */
    resend: boolean;
    done: Settle;
    timer?: ReturnType<typeof setTimeout>;
}

/**
 * The client's outstanding commands, keyed by `id`. A call is created whatever the connection's
 * state; it is written out once the connection is ready, and settles with its reply, with a
 * `TimeoutError` when its own timeout passes first, or with a `DisconnectedError`.
 */
export class Calls {
    private calls = new Map<number, Call>();
    private lastId = 0;

    nextId(): number {
        return ++this.lastId;
    }

    /** Registers `command` (adding its `id`). `timeout` 0 means none. */
    add(command: Command, timeout: number, resend: boolean, done: Settle): number {
        const id = (command.id = this.nextId());
        const call: Call = { command, sent: false, resend, done };
        if (timeout > 0) {
            call.timer = setTimeout(() => this.settle(id, new TimeoutError(`no answer to ${command.type} within ${timeout} ms`)), timeout);
        }
        this.calls.set(id, call);
        return id;
    }

    /** Drops call `id` without settling it if it has not been written yet; true if it was dropped. */
    withdraw(id: number): boolean {
        const call = this.calls.get(id);
        if (!call || call.sent) return false;
        clearTimeout(call.timer);
        return this.calls.delete(id);
    }

    /** The commands not yet written on this connection, in the order they were made; marks them sent. */
    takeUnsent(): Command[] {
        const out: Command[] = [];
        for (const call of this.calls.values()) {
            if (!call.sent) {
                call.sent = true;
                out.push(call.command);
            }
        }
        return out;
    }

    /** Settles call `id` with a reply (an `error` reply rejects) or an error. False if unknown. */
    settle(id: number, outcome: Reply | Error): boolean {
        const call = this.calls.get(id);
        if (!call) return false;
        this.calls.delete(id);
        clearTimeout(call.timer);
        if (outcome instanceof Error) call.done(outcome);
        else if (outcome.type == "error") call.done(new ServerError(outcome.code as number, outcome.message || "error"));
        else call.done(undefined, outcome);
        return true;
    }

    /**
     * The connection is gone. Calls that may be resent wait for the next one; a call already
     * written that may not be resent (a QoS 0 publish: it might have been published) fails.
     */
    connectionLost(): void {
        for (const [id, call] of this.calls) {
            if (call.resend) call.sent = false;
            else if (call.sent) this.settle(id, new DisconnectedError("connection lost before the answer"));
        }
    }

    /** Fails every outstanding call. */
    failAll(err: Error): void {
        for (const id of [...this.calls.keys()]) this.settle(id, err);
    }
}
