import assert from "node:assert/strict";
import { test } from "node:test";
import { InboundQos, type MessageFrame } from "../../src/qos.js";

const msg = (fields: Partial<MessageFrame>): MessageFrame => ({
    type: "message",
    channel: "chat:1",
    offset: 1,
    epoch: "e",
    mid: "m1",
    ts: 0,
    data: null,
    ...fields,
});

test("QoS 0: delivered once per channel, epoch and offset, never answered", () => {
    const qos = new InboundQos(10);
    assert.deepEqual(qos.receive(msg({})), { deliver: true, answer: undefined });
    assert.deepEqual(qos.receive(msg({})), { deliver: false, answer: undefined });
    assert.equal(qos.receive(msg({ channel: "chat:2" })).deliver, true); // offsets are per channel
    assert.equal(qos.receive(msg({ epoch: "e2" })).deliver, true); // a new epoch starts over
});

test("the same mid at another offset is another publication (mids are unique only per user)", () => {
    const qos = new InboundQos(10);
    assert.equal(qos.receive(msg({ offset: 1, mid: "same", data: "alice" })).deliver, true);
    assert.equal(qos.receive(msg({ offset: 2, mid: "same", data: "bob" })).deliver, true);
    assert.equal(qos.receive(msg({ offset: 2, mid: "same", data: "bob" })).deliver, false);
    assert.equal(qos.receive(msg({ offset: 1, mid: "other", qos: 1, did: 4, dup: true })).deliver, false);
});

test("QoS 1: every copy is acked, only the first is delivered", () => {
    const qos = new InboundQos(10);
    assert.deepEqual(qos.receive(msg({ qos: 1, did: 7 })), { deliver: true, answer: { type: "ack", did: 7 } });
    assert.deepEqual(qos.receive(msg({ qos: 1, did: 7, dup: true })), { deliver: false, answer: { type: "ack", did: 7 } });
});

test("QoS 1: a dup whose first copy never arrived is delivered (it is the only copy)", () => {
    const qos = new InboundQos(10);
    assert.equal(qos.receive(msg({ qos: 1, did: 3, dup: true })).deliver, true);
});

test("QoS 2: delivered when the did is first seen, rec for every copy, comp after rel", () => {
    const qos = new InboundQos(10);
    assert.deepEqual(qos.receive(msg({ qos: 2, did: 5 })), { deliver: true, answer: { type: "rec", did: 5 } });
    assert.deepEqual(qos.receive(msg({ qos: 2, did: 5, dup: true })), { deliver: false, answer: { type: "rec", did: 5 } });
    assert.deepEqual(qos.released(5), { type: "comp", did: 5 });
    assert.deepEqual(qos.released(5), { type: "comp", did: 5 }); // a repeated rel is answered again
});

test("QoS 2: the did alone guards exactly-once even after the offset left the window", () => {
    const qos = new InboundQos(1);
    qos.receive(msg({ qos: 2, did: 1, offset: 1 }));
    qos.receive(msg({ offset: 2 })); // pushes offset 1 out of a window of 1
    assert.equal(qos.receive(msg({ qos: 2, did: 1, offset: 1, dup: true })).deliver, false);
});

test("a new session numbers dids from 1 again: old dids are forgotten", () => {
    const qos = new InboundQos(10);
    qos.receive(msg({ qos: 2, did: 1, offset: 1 }));
    qos.newSession();
    assert.equal(qos.receive(msg({ qos: 2, did: 1, offset: 2 })).deliver, true);
});

test("the window is bounded (one for all channels): a publication older than the window is delivered again", () => {
    const qos = new InboundQos(2);
    qos.receive(msg({ offset: 1 }));
    qos.receive(msg({ offset: 2 }));
    qos.receive(msg({ channel: "chat:2", offset: 1 }));
    assert.equal(qos.receive(msg({ offset: 2 })).deliver, false);
    assert.equal(qos.receive(msg({ offset: 1 })).deliver, true);
});
