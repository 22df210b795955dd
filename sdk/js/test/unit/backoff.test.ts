import assert from "node:assert/strict";
import { test } from "node:test";
import { backoffDelay } from "../../src/backoff.js";

const bounds = { min: 500, max: 20_000 };
const ceiling = (n: number) => Math.min(bounds.max, bounds.min * 2 ** n);

test("full jitter: the delay spans [0, min(max, min·2^n))", () => {
    for (let n = 0; n < 12; n++) {
        assert.equal(backoffDelay(n, bounds, () => 0), 0);
        assert.equal(backoffDelay(n, bounds, () => 0.5), ceiling(n) / 2);
        assert.ok(backoffDelay(n, bounds, () => 0.999999) < ceiling(n));
        assert.ok(backoffDelay(n, bounds, () => 0.999999) > ceiling(n) * 0.99);
    }
});

test("with Math.random every delay stays within its bound and the cap", () => {
    for (let n = 0; n < 40; n++) {
        for (let i = 0; i < 50; i++) {
            const d = backoffDelay(n, bounds);
            assert.ok(d >= 0 && d < ceiling(n) && d <= bounds.max, `attempt ${n}: ${d}`);
        }
    }
});

test("the bound doubles per attempt until the cap", () => {
    const half = (n: number) => backoffDelay(n, bounds, () => 0.5);
    assert.deepEqual([0, 1, 2, 3, 4, 5, 6].map(half), [250, 500, 1000, 2000, 4000, 8000, 10_000]);
    assert.equal(half(1000), 10_000); // huge attempt counts do not overflow to NaN/Infinity
});
