#include "engine/redis/redis_presence_store.h"

#include <spdlog/spdlog.h>

#include "base/hex.h"
#include "protocol/presence_json.h"

namespace wspush {

namespace {

// KEYS of every script: entries (hash), expiry (zset), users (hash: connections per user), user
// names (zset, all scores 0: the users in name order, for paging).
#define WSPUSH_PRESENCE_PRELUDE                                                                          \
    "local entries, expiry, users, names = KEYS[1], KEYS[2], KEYS[3], KEYS[4]\n"                         \
    "local function forget(client)\n"                                                                    \
    "  local entry = redis.call('hget', entries, client)\n"                                              \
    "  redis.call('zrem', expiry, client)\n"                                                             \
    "  if not entry then return end\n"                                                                   \
    "  redis.call('hdel', entries, client)\n"                                                            \
    "  local user = cjson.decode(entry).user or ''\n"                                                    \
    "  if redis.call('hincrby', users, user, -1) <= 0 then\n"                                            \
    "    redis.call('hdel', users, user)\n"                                                              \
    "    redis.call('zrem', names, user)\n"                                                              \
    "  end\n"                                                                                            \
    "end\n"                                                                                              \
    "local function expire(now)\n"                                                                       \
    "  for _, client in ipairs(redis.call('zrangebyscore', expiry, '-inf', now, 'LIMIT', 0, 1000)) do\n" \
    "    forget(client)\n"                                                                               \
    "  end\n"                                                                                            \
    "end\n"

// ARGV: now, expire-at, key ttl (ms), then (client, user, entry) per entry.
const char* const kAdd = WSPUSH_PRESENCE_PRELUDE R"lua(
expire(ARGV[1])
for i = 4, #ARGV, 3 do
  if redis.call('hset', entries, ARGV[i], ARGV[i + 2]) == 1 then
    local user = ARGV[i + 1]
    if redis.call('hincrby', users, user, 1) == 1 and user ~= '' then redis.call('zadd', names, 0, user) end
  end
  redis.call('zadd', expiry, ARGV[2], ARGV[i])
end
for _, key in ipairs(KEYS) do redis.call('pexpire', key, ARGV[3]) end
return 1
)lua";

// ARGV: clients.
const char* const kRemove = WSPUSH_PRESENCE_PRELUDE R"lua(
for _, client in ipairs(ARGV) do forget(client) end
return 1
)lua";

// ARGV: now, limit. Returns at most limit entries.
const char* const kList = WSPUSH_PRESENCE_PRELUDE R"lua(
expire(ARGV[1])
local limit = tonumber(ARGV[2])
if redis.call('hlen', entries) <= limit then return redis.call('hvals', entries) end
local out, cursor = {}, '0'
repeat
  local page = redis.call('hscan', entries, cursor, 'COUNT', 256)
  cursor = page[1]
  for i = 2, #page[2], 2 do
    if #out >= limit then return out end
    out[#out + 1] = page[2][i]
  end
until cursor == '0'
return out
)lua";

// ARGV: now. Returns {clients, users}.
const char* const kStats = WSPUSH_PRESENCE_PRELUDE R"lua(
expire(ARGV[1])
return {redis.call('hlen', entries), redis.call('hlen', users)}
)lua";

// ARGV: now, then users. Returns each user's connection count, or false.
const char* const kHasUsers = WSPUSH_PRESENCE_PRELUDE R"lua(
expire(ARGV[1])
return redis.call('hmget', users, unpack(ARGV, 2))
)lua";

// ARGV: now, the last user of the previous page ("" to start), limit. Returns the next users by
// name, at most limit + 1 (the anonymous "" is never among the names).
const char* const kUsers = WSPUSH_PRESENCE_PRELUDE R"lua(
expire(ARGV[1])
local from = ARGV[2] == '' and '-' or '(' .. ARGV[2]
local page = redis.call('zrangebylex', names, from, '+', 'LIMIT', 0, tonumber(ARGV[3]) + 1)
return page
)lua";

BrokerError replyError(const RedisResult& result) {
    if (auto* failure = std::get_if<RedisFailure>(&result))
        return BrokerError{ApiErrorCode::Unavailable, "redis: " + failure->message};
    return BrokerError{ApiErrorCode::Internal, "redis: unexpected reply " + std::get<RedisReply>(result).describe()};
}

}  // namespace

RedisPresenceStore::RedisPresenceStore(RedisBroker& engine, Clock clock)
    : engine_(engine),
      clock_(std::move(clock)),
      addScript_(kAdd),
      removeScript_(kRemove),
      listScript_(kList),
      statsScript_(kStats),
      hasUsersScript_(kHasUsers),
      usersScript_(kUsers) {
    for (const RedisScript* script :
         {&addScript_, &removeScript_, &listScript_, &statsScript_, &hasUsersScript_, &usersScript_})
        engine_.loadOnReady(*script);
}

std::vector<std::string> RedisPresenceStore::keysOf(std::string_view channel) const {
    const RedisKeys& keys = engine_.keys();
    return {keys.presence(channel), keys.presenceExpiry(channel), keys.presenceUsers(channel),
            keys.presenceUserNames(channel)};
}

void RedisPresenceStore::add(std::string_view channel, std::vector<PresenceEntry> entries,
                             std::chrono::milliseconds ttl) {
    if (entries.empty()) return;
    std::int64_t now = clock_();
    auto chunks = std::make_shared<std::vector<std::vector<std::string>>>();
    for (std::size_t first = 0; first < entries.size(); first += kAddChunk) {
        std::size_t last = std::min(entries.size(), first + kAddChunk);
        auto& args = chunks->emplace_back(std::vector<std::string>{
            std::to_string(now), std::to_string(now + ttl.count()), std::to_string(ttl.count())});
        args.reserve(3 + 3 * (last - first));
        for (std::size_t i = first; i < last; ++i) {
            args.push_back(entries[i].client);
            args.push_back(entries[i].user);
            args.push_back(presenceEntryJson(entries[i]).dump());
        }
    }
    addChunks(std::string(channel), std::move(chunks), 0);
}

void RedisPresenceStore::addChunks(std::string channel, std::shared_ptr<std::vector<std::vector<std::string>>> chunks,
                                   std::size_t next) {
    engine_.withShardOf(channel, [this, channel, chunks, next](auto shard) mutable {
        // Not stored now: the node's next refresh stores it (PresenceStore::add).
        auto* commands = std::get_if<RedisConnection*>(&shard);
        if (commands == nullptr) return;
        std::vector<std::string> keys = keysOf(channel);  // before the completion takes `channel`
        addScript_.run(**commands, std::move(keys), std::move((*chunks)[next]),
                       [this, channel = std::move(channel), chunks, next](RedisResult result) mutable {
                           if (auto* reply = std::get_if<RedisReply>(&result); reply && reply->isError())
                               spdlog::warn("redis: presence add: {}", reply->describe());
                           if (next + 1 < chunks->size()) addChunks(std::move(channel), std::move(chunks), next + 1);
                       });
    });
}

void RedisPresenceStore::remove(std::string_view channel, std::vector<std::string> clients) {
    if (clients.empty()) return;
    engine_.withShardOf(channel, [this, keys = keysOf(channel), clients = std::move(clients)](auto shard) mutable {
        // Not removed now: the entries expire within their ttl, as a dead node's do.
        auto* commands = std::get_if<RedisConnection*>(&shard);
        if (commands == nullptr) return;
        removeScript_.run(**commands, std::move(keys), std::move(clients), [](RedisResult) {});
    });
}

void RedisPresenceStore::list(std::string_view channel, std::size_t limit, PresenceListCompletion done) {
    engine_.withShardOf(channel, [this, keys = keysOf(channel), limit, done = std::move(done)](auto shard) mutable {
        if (auto* error = std::get_if<BrokerError>(&shard)) return done(std::move(*error));
        listScript_.run(*std::get<RedisConnection*>(shard), std::move(keys),
                        {std::to_string(clock_()), std::to_string(limit)},
                        [done = std::move(done)](RedisResult result) {
                            auto* reply = std::get_if<RedisReply>(&result);
                            if (reply == nullptr || !reply->isArray()) return done(replyError(result));
                            std::vector<PresenceEntry> entries;
                            entries.reserve(reply->elements.size());
                            for (const RedisReply& element : reply->elements) {
                                auto text = element.asString();
                                auto entry = text ? parsePresenceEntry(*text) : std::nullopt;
                                if (!entry) return done(replyError(result));
                                entries.push_back(std::move(*entry));
                            }
                            done(std::move(entries));
                        });
    });
}

void RedisPresenceStore::stats(std::string_view channel, PresenceStatsCompletion done) {
    engine_.withShardOf(channel, [this, keys = keysOf(channel), done = std::move(done)](auto shard) mutable {
        if (auto* error = std::get_if<BrokerError>(&shard)) return done(std::move(*error));
        statsScript_.run(
            *std::get<RedisConnection*>(shard), std::move(keys), {std::to_string(clock_())},
            [done = std::move(done)](RedisResult result) {
                auto* reply = std::get_if<RedisReply>(&result);
                auto clients = reply && reply->isArray() && reply->elements.size() == 2 ? reply->elements[0].asInteger()
                                                                                        : std::nullopt;
                auto users = clients ? reply->elements[1].asInteger() : std::nullopt;
                if (!users || *clients < 0 || *users < 0) return done(replyError(result));
                done(PresenceStats{static_cast<std::uint64_t>(*clients), static_cast<std::uint64_t>(*users)});
            });
    });
}

void RedisPresenceStore::hasUsers(std::string_view channel, std::vector<std::string> users,
                                  PresenceHasUsersCompletion done) {
    if (users.empty()) return done(std::vector<bool>{});
    users.insert(users.begin(), std::to_string(clock_()));
    engine_.withShardOf(
        channel, [this, keys = keysOf(channel), args = std::move(users), done = std::move(done)](auto shard) mutable {
            if (auto* error = std::get_if<BrokerError>(&shard)) return done(std::move(*error));
            std::size_t asked = args.size() - 1;
            hasUsersScript_.run(*std::get<RedisConnection*>(shard), std::move(keys), std::move(args),
                                [asked, done = std::move(done)](RedisResult result) {
                                    auto* reply = std::get_if<RedisReply>(&result);
                                    if (reply == nullptr || !reply->isArray() || reply->elements.size() != asked)
                                        return done(replyError(result));
                                    std::vector<bool> present;
                                    present.reserve(asked);
                                    // A missing field comes back as false (Lua's nil in a table).
                                    for (const RedisReply& count : reply->elements) present.push_back(!count.isNil());
                                    done(std::move(present));
                                });
        });
}

void RedisPresenceStore::users(std::string_view channel, std::string cursor, std::size_t limit,
                               PresenceUsersCompletion done) {
    // The cursor is the hex of the page's last name, as the memory store's: opaque, safe in a URL.
    auto after = fromHex(cursor);
    if (!after) return done(BrokerError{ApiErrorCode::WrongType, "\"cursor\" is not one this server gave"});
    limit = std::max<std::size_t>(limit, 1);
    engine_.withShardOf(channel, [this, keys = keysOf(channel), after = std::move(*after), limit,
                                  done = std::move(done)](auto shard) mutable {
        if (auto* error = std::get_if<BrokerError>(&shard)) return done(std::move(*error));
        usersScript_.run(*std::get<RedisConnection*>(shard), std::move(keys),
                         {std::to_string(clock_()), std::move(after), std::to_string(limit)},
                         [limit, done = std::move(done)](RedisResult result) {
                             auto* reply = std::get_if<RedisReply>(&result);
                             if (reply == nullptr || !reply->isArray()) return done(replyError(result));
                             PresenceUserPage page;
                             for (const RedisReply& element : reply->elements) {
                                 auto user = element.asString();
                                 if (!user) return done(replyError(result));
                                 page.users.emplace_back(*user);
                             }
                             // One more than a page was asked for: whether another page follows.
                             if (page.users.size() > limit) {
                                 page.users.resize(limit);
                                 page.cursor = toHex(page.users.back());
                             }
                             done(std::move(page));
                         });
    });
}

}  // namespace wspush
