#include "engine/redis/redis_lua.h"

namespace wspush::redis_lua {

// Expired history goes from the front: entries are in time order, so the oldest tells whether
// anything expired, and the common case costs one one-entry XRANGE. Bounded per call (10 × 100):
// what is left goes on the next publish or read.
// Expired history goes from the front: entries are in time order, so the oldest tells whether
// anything expired, and the common case costs one one-entry XRANGE. Bounded per call (10 × 100):
// what is left goes on the next publish or read. A stream bounded by bytes (an inbox) counts the
// bytes it keeps in its meta hash's `b`, which every trim keeps exact.
#define WSPUSH_TRIM_EXPIRED                                                         \
    "local function ts_of(entry)\n"                                                 \
    "  return tonumber(string.match(entry[2][2], '^%d\\n(%-?%d+)\\n'))\n"           \
    "end\n"                                                                         \
    "local function trim_expired(stream, meta, cutoff)\n"                           \
    "  local bytes = 0\n"                                                           \
    "  for _ = 1, 10 do\n"                                                          \
    "    local first = redis.call('xrange', stream, '-', '+', 'COUNT', 1)\n"        \
    "    if #first == 0 or (ts_of(first[1]) or cutoff) >= cutoff then break end\n"  \
    "    local batch = redis.call('xrange', stream, '-', '+', 'COUNT', 100)\n"      \
    "    local last = nil\n"                                                        \
    "    for _, entry in ipairs(batch) do\n"                                        \
    "      if (ts_of(entry) or cutoff) < cutoff then\n"                             \
    "        last = entry[1]\n"                                                     \
    "        bytes = bytes + #entry[2][2]\n"                                        \
    "      else break end\n"                                                        \
    "    end\n"                                                                     \
    "    local offset = tonumber(string.match(last, '^(%d+)-'))\n"                  \
    "    redis.call('xtrim', stream, 'MINID', string.format('%d-0', offset + 1))\n" \
    "    if last ~= batch[#batch][1] then break end\n"                              \
    "  end\n"                                                                       \
    "  if bytes > 0 and redis.call('hexists', meta, 'b') == 1 then\n"               \
    "    redis.call('hincrby', meta, 'b', -bytes)\n"                                \
    "  end\n"                                                                       \
    "end\n"

const char* const kPublish = WSPUSH_TRIM_EXPIRED R"lua(
local stream, meta, remembered = KEYS[1], KEYS[2], KEYS[3]
local body, size, ttl, meta_ttl = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local window, now = ARGV[7], tonumber(ARGV[9])
if window ~= '0' then
  local first = redis.call('get', remembered)
  if first then
    local expires = string.match(first, '^(%d+)\n')
    -- The key's own PX bounds it in Redis time; the stored deadline, in the node's clock.
    if expires and tonumber(expires) > now then
      return {'dup', string.sub(first, #expires + 2)}
    end
  end
end
local epoch = redis.call('hget', meta, 'e')
if not epoch then
  epoch = ARGV[5]
  redis.call('hset', meta, 'e', epoch)
end
local offset = redis.call('hincrby', meta, 's', 1)
redis.call('expire', meta, meta_ttl)
if size > 0 then
  -- Offset 1 under a kept stream means the meta hash expired before the stream: start afresh.
  if offset == 1 then redis.call('del', stream) end
  local max_bytes = tonumber(ARGV[11])
  if max_bytes > 0 then
    -- A stream that expired whole took its bytes with it.
    if redis.call('exists', stream) == 0 then redis.call('hset', meta, 'b', 0) end
    redis.call('xadd', stream, string.format('%d-0', offset), 'd', body)
    redis.call('hincrby', meta, 'b', #body)
  else
    redis.call('xadd', stream, 'MAXLEN', size, string.format('%d-0', offset), 'd', body)
  end
  redis.call('hset', meta, 't', ttl)
  redis.call('pexpire', stream, ttl)
  trim_expired(stream, meta, now - tonumber(ttl))
  if max_bytes > 0 then
    -- Oldest first, by count and by bytes; the newest always stays.
    while true do
      local kept = redis.call('xlen', stream)
      if kept <= 1 or (kept <= size and tonumber(redis.call('hget', meta, 'b')) <= max_bytes) then break end
      local oldest = redis.call('xrange', stream, '-', '+', 'COUNT', 1)[1]
      redis.call('xdel', stream, oldest[1])
      redis.call('hincrby', meta, 'b', -#oldest[2][2])
    end
  end
end
local header = string.format('%d', offset) .. '\n' .. epoch .. '\n' .. ARGV[8] .. '\n'
local nodes = redis.call('publish', ARGV[6], header .. body)
if window ~= '0' then
  redis.call('set', remembered,
             string.format('%d', now + tonumber(window)) .. '\n' .. header:sub(1, #header - #ARGV[8] - 1) .. ARGV[10],
             'PX', window)
end
return {offset, epoch, nodes}
)lua";

const char* const kReadPosition = WSPUSH_TRIM_EXPIRED R"lua(
local stream, meta = KEYS[1], KEYS[2]
local position = redis.call('hmget', meta, 'e', 's', 't')
local epoch, top, ttl = position[1], tonumber(position[2]) or 0, position[3]
-- A channel read before its first publication gets its epoch now: the subscriber that read it
-- must see the same epoch on the first publication, or it would be told it lost state.
if not epoch then
  epoch = ARGV[2]
  redis.call('hset', meta, 'e', epoch)
end
redis.call('expire', meta, ARGV[1])
if ttl then trim_expired(stream, meta, tonumber(ARGV[3]) - tonumber(ttl)) end
return {top, epoch}
)lua";

// KEYS: stream, meta. ARGV: up to this offset, of this epoch. Returns how many went.
const char* const kTrimHistory = R"lua(
local stream, meta = KEYS[1], KEYS[2]
if redis.call('hget', meta, 'e') ~= ARGV[2] then return 0 end
local gone = redis.call('xrange', stream, '-', ARGV[1] .. '-0')
if #gone == 0 then return 0 end
local bytes = 0
for _, entry in ipairs(gone) do bytes = bytes + #entry[2][2] end
redis.call('xtrim', stream, 'MINID', string.format('%d-0', tonumber(ARGV[1]) + 1))
if redis.call('hexists', meta, 'b') == 1 then redis.call('hincrby', meta, 'b', -bytes) end
return #gone
)lua";

const char* const kHeartbeat = R"lua(
redis.call('hset', KEYS[1], ARGV[1], ARGV[2])
redis.call('zadd', KEYS[2], ARGV[3], ARGV[1])
return 1
)lua";

const char* const kNodes = R"lua(
local expired = redis.call('zrangebyscore', KEYS[2], '-inf', ARGV[1])
for _, node in ipairs(expired) do redis.call('hdel', KEYS[1], node) end
redis.call('zremrangebyscore', KEYS[2], '-inf', ARGV[1])
return redis.call('hgetall', KEYS[1])
)lua";

#undef WSPUSH_TRIM_EXPIRED

}  // namespace wspush::redis_lua
