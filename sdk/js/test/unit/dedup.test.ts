import assert from "node:assert/strict";
import { test } from "node:test";
import { RecentKeys } from "../../src/dedup.js";

test("remembers the last `capacity` keys and forgets the oldest first", () => {
    const keys = new RecentKeys(3);
    ["a", "b", "c"].forEach((k) => keys.add(k));
    assert.ok(keys.has("a") && keys.has("b") && keys.has("c"));
    keys.add("d");
    assert.ok(!keys.has("a"));
    assert.ok(keys.has("b") && keys.has("c") && keys.has("d"));
    keys.add("c"); // already known: no eviction
    assert.ok(keys.has("b"));
});
