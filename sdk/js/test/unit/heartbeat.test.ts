import assert from "node:assert/strict";
import { beforeEach, mock, test } from "node:test";
import { Heartbeat } from "../../src/heartbeat.js";

beforeEach(() => mock.timers.enable({ apis: ["setTimeout"] }));
test.afterEach(() => mock.timers.reset());

function setup() {
    const log: string[] = [];
    const hb = new Heartbeat(() => log.push("ping"), () => log.push("dead"));
    hb.start(1000, 500);
    return { hb, log };
}

test("pings after `interval` of silence, dead after `timeout` more", () => {
    const { log } = setup();
    mock.timers.tick(999);
    assert.deepEqual(log, []);
    mock.timers.tick(1);
    assert.deepEqual(log, ["ping"]);
    mock.timers.tick(499);
    assert.deepEqual(log, ["ping"]);
    mock.timers.tick(1);
    assert.deepEqual(log, ["ping", "dead"]);
    mock.timers.tick(10_000);
    assert.deepEqual(log, ["ping", "dead"]); // dead once, then silent
});

test("anything received restarts the count, also after a ping", () => {
    const { hb, log } = setup();
    mock.timers.tick(800);
    hb.received();
    mock.timers.tick(800);
    assert.deepEqual(log, []);
    mock.timers.tick(200);
    assert.deepEqual(log, ["ping"]);
    mock.timers.tick(400);
    hb.received(); // the pong
    mock.timers.tick(999);
    assert.deepEqual(log, ["ping"]);
});

test("check() pings at once and expects an answer within `timeout`", () => {
    const { hb, log } = setup();
    mock.timers.tick(100);
    hb.check();
    hb.check(); // a second check does not extend or duplicate
    assert.deepEqual(log, ["ping"]);
    mock.timers.tick(500);
    assert.deepEqual(log, ["ping", "dead"]);
});

test("stop() cancels everything", () => {
    const { hb, log } = setup();
    hb.stop();
    mock.timers.tick(10_000);
    assert.deepEqual(log, []);
});

test("after stop(), frames of the next connection do not start the idle timer before start()", () => {
    const { hb, log } = setup();
    hb.stop();
    hb.received(); // e.g. the next connection's frames before its `connected`
    mock.timers.tick(10_000);
    assert.deepEqual(log, []);
    hb.start(1000, 500);
    mock.timers.tick(1000);
    assert.deepEqual(log, ["ping"]);
});
