#include "engine/redis/redis_inbox_store.h"

#include "engine/redis/publication_codec.h"
#include "wspush/channel_name.h"

namespace wspush {

namespace {

// KEYS: the devices hash. ARGV[1], ARGV[2]: now, device ttl (ms).
#define WSPUSH_INBOX_PRELUDE                                                                                     \
    "local devices, now, ttl = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])\n"                                  \
    "local function parse(text)\n"                                                                               \
    "  local epoch, offset, seen = string.match(text, '^(.-)\\n(%d+)\\n(%-?%d+)$')\n"                            \
    "  return epoch, tonumber(offset), tonumber(seen)\n"                                                         \
    "end\n"                                                                                                      \
    "local function remembered()\n"                                                                              \
    "  local all, kept = redis.call('hgetall', devices), {}\n"                                                   \
    "  for i = 1, #all, 2 do\n"                                                                                  \
    "    local epoch, offset, seen = parse(all[i + 1])\n"                                                        \
    "    if not seen or seen + ttl <= now then redis.call('hdel', devices, all[i])\n"                            \
    "    else kept[#kept + 1] = {all[i], epoch, offset, seen} end\n"                                             \
    "  end\n"                                                                                                    \
    "  return kept\n"                                                                                            \
    "end\n"                                                                                                      \
    "local function store(device, epoch, offset)\n"                                                              \
    "  redis.call('hset', devices, device, epoch .. '\\n' .. string.format('%d', offset) .. '\\n' .. ARGV[1])\n" \
    "  redis.call('pexpire', devices, ttl)\n"                                                                    \
    "end\n"

// ARGV[3]: device. Returns {epoch, offset} once marked seen, or nil when not remembered.
const char* const kTouch = WSPUSH_INBOX_PRELUDE R"lua(
local text = redis.call('hget', devices, ARGV[3])
if not text then return false end
local epoch, offset, seen = parse(text)
if not seen or seen + ttl <= now then
  redis.call('hdel', devices, ARGV[3])
  return false
end
store(ARGV[3], epoch, offset)
return {epoch, string.format('%d', offset)}
)lua";

// ARGV[3..6]: device, epoch, offset, most devices. Returns the lowest cursor of that epoch.
const char* const kAdvance = WSPUSH_INBOX_PRELUDE R"lua(
local device, epoch, offset = ARGV[3], ARGV[4], tonumber(ARGV[5])
local kept = remembered()
if #kept >= tonumber(ARGV[6]) and redis.call('hexists', devices, device) == 0 then
  -- Room for a new device: forget the one seen longest ago.
  local oldest = 1
  for i, other in ipairs(kept) do
    if other[4] < kept[oldest][4] then oldest = i end
  end
  redis.call('hdel', devices, kept[oldest][1])
  table.remove(kept, oldest)
end
local lowest = nil
for _, other in ipairs(kept) do
  if other[1] == device then
    if other[2] == epoch and other[3] > offset then offset = other[3] end
  elseif lowest == nil or (other[2] == epoch and other[3] or 0) < lowest then
    lowest = other[2] == epoch and other[3] or 0
  end
end
store(device, epoch, offset)
if lowest == nil or offset < lowest then lowest = offset end
return string.format('%d', lowest)
)lua";

// Returns {device, epoch, offset, last seen, …}.
const char* const kDevices = WSPUSH_INBOX_PRELUDE R"lua(
local out = {}
for _, device in ipairs(remembered()) do
  out[#out + 1] = device[1]
  out[#out + 1] = device[2]
  out[#out + 1] = string.format('%d', device[3])
  out[#out + 1] = string.format('%d', device[4])
end
return out
)lua";

#undef WSPUSH_INBOX_PRELUDE

BrokerError replyError(const RedisResult& result) {
    if (auto* failure = std::get_if<RedisFailure>(&result))
        return BrokerError{ApiErrorCode::Unavailable, "redis: " + failure->message};
    return BrokerError{ApiErrorCode::Internal, "redis: unexpected reply " + std::get<RedisReply>(result).describe()};
}

std::optional<std::uint64_t> integerOf(const RedisReply& reply) {
    auto text = reply.asString();
    return text ? parseDecimal(*text) : std::nullopt;
}

}  // namespace

RedisInboxStore::RedisInboxStore(RedisBroker& engine, Clock clock)
    : engine_(engine),
      clock_(std::move(clock)),
      touchScript_(kTouch),
      advanceScript_(kAdvance),
      devicesScript_(kDevices) {
    for (const RedisScript* script : {&touchScript_, &advanceScript_, &devicesScript_}) engine_.loadOnReady(*script);
}

void RedisInboxStore::touch(std::string_view user, std::string_view device, std::chrono::milliseconds deviceTtl,
                            InboxDeviceCompletion done) {
    std::string channel = personalChannel(user);
    std::int64_t now = clock_();
    engine_.withShardOf(channel, [this, key = engine_.keys().inboxDevices(channel), device = std::string(device), now,
                                  deviceTtl, done = std::move(done)](auto shard) mutable {
        if (auto* error = std::get_if<BrokerError>(&shard)) return done(std::move(*error));
        touchScript_.run(*std::get<RedisConnection*>(shard), {std::move(key)},
                         {std::to_string(now), std::to_string(deviceTtl.count()), device},
                         [device, now, done = std::move(done)](RedisResult result) {
                             auto* reply = std::get_if<RedisReply>(&result);
                             if (reply && reply->isNil()) return done(std::optional<InboxDevice>{});
                             if (reply == nullptr || !reply->isArray() || reply->elements.size() != 2)
                                 return done(replyError(result));
                             auto epoch = reply->elements[0].asString();
                             auto offset = integerOf(reply->elements[1]);
                             if (!epoch || !offset) return done(replyError(result));
                             done(std::optional<InboxDevice>{
                                 InboxDevice{device, StreamPosition{*offset, std::string(*epoch)}, now}});
                         });
    });
}

void RedisInboxStore::advance(std::string_view user, std::string_view device, StreamPosition cursor,
                              std::chrono::milliseconds deviceTtl, InboxLowestCompletion done) {
    std::string channel = personalChannel(user);
    std::vector<std::string> args{std::to_string(clock_()),      std::to_string(deviceTtl.count()),
                                  std::string(device),           std::move(cursor.epoch),
                                  std::to_string(cursor.offset), std::to_string(kMaxInboxDevices)};
    engine_.withShardOf(channel, [this, key = engine_.keys().inboxDevices(channel), args = std::move(args),
                                  done = std::move(done)](auto shard) mutable {
        if (std::holds_alternative<BrokerError>(shard)) return done(std::nullopt);
        advanceScript_.run(*std::get<RedisConnection*>(shard), {std::move(key)}, std::move(args),
                           [done = std::move(done)](RedisResult result) {
                               auto* reply = std::get_if<RedisReply>(&result);
                               done(reply ? integerOf(*reply) : std::nullopt);
                           });
    });
}

void RedisInboxStore::devices(std::string_view user, std::chrono::milliseconds deviceTtl, InboxDevicesCompletion done) {
    std::string channel = personalChannel(user);
    std::int64_t now = clock_();
    engine_.withShardOf(channel, [this, key = engine_.keys().inboxDevices(channel), now, deviceTtl,
                                  done = std::move(done)](auto shard) mutable {
        if (auto* error = std::get_if<BrokerError>(&shard)) return done(std::move(*error));
        devicesScript_.run(
            *std::get<RedisConnection*>(shard), {std::move(key)},
            {std::to_string(now), std::to_string(deviceTtl.count())}, [done = std::move(done)](RedisResult result) {
                auto* reply = std::get_if<RedisReply>(&result);
                if (reply == nullptr || !reply->isArray() || reply->elements.size() % 4 != 0)
                    return done(replyError(result));
                std::vector<InboxDevice> devices;
                for (std::size_t i = 0; i < reply->elements.size(); i += 4) {
                    auto name = reply->elements[i].asString();
                    auto epoch = reply->elements[i + 1].asString();
                    auto offset = integerOf(reply->elements[i + 2]);
                    auto seen = integerOf(reply->elements[i + 3]);
                    if (!name || !epoch || !offset || !seen) return done(replyError(result));
                    devices.push_back(InboxDevice{std::string(*name), StreamPosition{*offset, std::string(*epoch)},
                                                  static_cast<std::int64_t>(*seen)});
                }
                done(std::move(devices));
            });
    });
}

}  // namespace wspush
