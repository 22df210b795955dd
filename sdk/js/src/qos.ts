import { RecentKeys } from "./dedup.js";

/** A `message` frame as the server sends it (protocol.md, "Server → client"). */
export interface MessageFrame {
    type: "message";
    channel: string;
    offset: number;
    epoch: string;
    mid: string;
    ts: number;
    data: unknown;
    qos?: 1 | 2;
    did?: number;
    dup?: boolean;
}

/** What to do with one incoming `message`: hand it to the app or not, and what to answer. */
export interface Verdict {
    deliver: boolean;
    answer?: { type: "ack" | "rec"; did: number };
}

/**
 * The receiving side of protocol.md "QoS": decides which incoming publications reach the
 * application, and produces the `ack` / `rec` / `comp` answers.
 *
 * - Every copy of a QoS 1 message is answered `ack`, every copy of a QoS 2 message `rec`
 *   (the server resends until it hears one).
 * - A QoS 2 message reaches the app when its `did` is first seen; the `did` is remembered until
 *   `rel` arrives, so resends in between (`"dup":true`, or again after a session resume) are
 *   recognised exactly. That is what makes QoS 2 exactly once.
 * - Independently, a publication whose channel, epoch and offset are among the last `window`
 *   publications received (one window for all channels) is a duplicate: resends and repeated
 *   deliveries carry the original offset. Not the `mid`: a client's `mid` is unique only per user
 *   or session, so two publishers may pick the same one. A `"dup":true` flag alone does not make a
 *   copy a duplicate: the first copy may have been lost with the connection, and then the resend
 *   is the only one the app will ever get.
 */
export class InboundQos {
    private recent: RecentKeys;
    private awaitingRel = new Set<number>();

    constructor(window: number) {
        this.recent = new RecentKeys(window);
    }

    receive(m: MessageFrame): Verdict {
        const key = m.channel + "\n" + m.epoch + "\n" + m.offset;
        let deliver = !this.recent.has(key);
        this.recent.add(key);
        const did = m.did as number;
        if (m.qos === 2) {
            if (this.awaitingRel.has(did)) deliver = false;
            this.awaitingRel.add(did);
            return { deliver, answer: { type: "rec", did } };
        }
        return { deliver, answer: m.qos === 1 ? { type: "ack", did } : undefined };
    }

    /** The server's `rel`: the QoS 2 delivery is over; answer `comp`. */
    released(did: number): { type: "comp"; did: number } {
        this.awaitingRel.delete(did);
        return { type: "comp", did };
    }

    /** A new (not resumed) session numbers its deliveries from 1 again. */
    newSession(): void {
        this.awaitingRel.clear();
    }
}
