// The Lua scripts of the Redis engine. Each runs atomically on its shard: that is what makes the
// idempotency check, the next offset, the history append and the PUBLISH one step, so pub/sub
// order is offset order and a duplicate never takes an offset (centrifuge's
// broker_history_add_stream.lua is the model; its bug #549, a suppressed publish that bumped the
// offset, is what the order of the steps here prevents).
#pragma once

namespace wspush::redis_lua {

// KEYS: stream, meta, idempotency result.
// ARGV: body, history size, history ttl (ms), meta ttl (s), epoch if none, pub/sub channel,
//       idempotency window (ms, 0: none), report origin ("" none), now (Unix ms),
//       first-published record (<ts>\n<mid>), most bytes kept (0: no bound).
// Returns {offset, epoch, nodes reached} or {"dup", "<offset>\n<epoch>\n<ts>\n<mid>"}.
extern const char* const kPublish;

// KEYS: stream, meta. ARGV: meta ttl (s), epoch if none, now (Unix ms).
// Returns {top offset, epoch}, having trimmed expired entries: an XRANGE queued after it in the
// same MULTI reads the page of that very position (the page itself never passes through Lua,
// whose conversion of a 1,000-entry reply cost five times the XRANGE).
extern const char* const kReadPosition;

// KEYS: stream, meta. ARGV: offset, epoch. Drops the history up to the offset if the epoch is the
// stream's; returns how many entries went.
extern const char* const kTrimHistory;

// KEYS: heartbeat hash, heartbeat expiry zset. ARGV: node, info, expire-at (Unix ms), now.
extern const char* const kHeartbeat;
// KEYS: heartbeat hash, heartbeat expiry zset. ARGV: now. Returns {node, info, …} of live nodes.
extern const char* const kNodes;

}  // namespace wspush::redis_lua
