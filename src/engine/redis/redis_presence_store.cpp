#include "engine/redis/redis_presence_store.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include <spdlog/spdlog.h>

#include "base/hex.h"
#include "protocol/presence_json.h"

namespace wspush {

namespace {

// KEYS of every script: entries (hash), expiry (zset), users (hash: connections per user), user
// names (zset, all scores 0: the users in name order, for paging), then the user status channel's
// offline due (zset user → due) and last entries (hash user → "<reason length>:<reason><entry>").
// ARGV[1..3]: now, mode ("0" nothing reported, "1" transitions, "2" those and the users' status),
// offline grace (ms). `transitions` is what the script returns beside its payload: {kind, entry,
// reason, …}; it stays empty in mode "0", at no cost beyond today's.
#define WSPUSH_PRESENCE_PRELUDE                                                                                 \
    "local entries, expiry, users, names = KEYS[1], KEYS[2], KEYS[3], KEYS[4]\n"                                \
    "local offline_due, offline_entries = KEYS[5], KEYS[6]\n"                                                   \
    "local now, grace = tonumber(ARGV[1]), tonumber(ARGV[3])\n"                                                 \
    "local reported, user_status = ARGV[2] ~= '0', ARGV[2] == '2'\n"                                            \
    "local transitions = {}\n"                                                                                  \
    "local function report(kind, entry, reason)\n"                                                              \
    "  transitions[#transitions + 1] = kind\n"                                                                  \
    "  transitions[#transitions + 1] = entry\n"                                                                 \
    "  transitions[#transitions + 1] = reason\n"                                                                \
    "end\n"                                                                                                     \
    "local function forget(client, reason)\n"                                                                   \
    "  local entry = redis.call('hget', entries, client)\n"                                                     \
    "  redis.call('zrem', expiry, client)\n"                                                                    \
    "  if not entry then return end\n"                                                                          \
    "  redis.call('hdel', entries, client)\n"                                                                   \
    "  local user = cjson.decode(entry).user or ''\n"                                                           \
    "  local last_of_user = redis.call('hincrby', users, user, -1) <= 0\n"                                      \
    "  if last_of_user then\n"                                                                                  \
    "    redis.call('hdel', users, user)\n"                                                                     \
    "    redis.call('zrem', names, user)\n"                                                                     \
    "  end\n"                                                                                                   \
    "  if not reported then return end\n"                                                                       \
    "  report('removed', entry, reason)\n"                                                                      \
    "  if redis.call('hlen', entries) == 0 then report('vacated', entry, reason) end\n"                         \
    "  if user_status and last_of_user and user ~= '' then\n"                                                   \
    "    redis.call('zadd', offline_due, now + grace, user)\n"                                                  \
    "    redis.call('hset', offline_entries, user, #reason .. ':' .. reason .. entry)\n"                        \
    "    -- Past the last due, with a minute for the nodes' clocks and sweeps.\n"                               \
    "    redis.call('pexpire', offline_due, grace + 60000)\n"                                                   \
    "    redis.call('pexpire', offline_entries, grace + 60000)\n"                                               \
    "  end\n"                                                                                                   \
    "end\n"                                                                                                     \
    "local function expire()\n"                                                                                 \
    "  for _, client in ipairs(redis.call('zrangebyscore', expiry, '-inf', ARGV[1], 'LIMIT', 0, 1000)) do\n"    \
    "    forget(client, 'expired')\n"                                                                           \
    "  end\n"                                                                                                   \
    "end\n"                                                                                                     \
    "local function report_due_offline()\n"                                                                     \
    "  if not user_status then return end\n"                                                                    \
    "  for _, user in ipairs(redis.call('zrangebyscore', offline_due, '-inf', ARGV[1], 'LIMIT', 0, 1000)) do\n" \
    "    local last = redis.call('hget', offline_entries, user)\n"                                              \
    "    redis.call('zrem', offline_due, user)\n"                                                               \
    "    redis.call('hdel', offline_entries, user)\n"                                                           \
    "    if last and redis.call('hexists', users, user) == 0 then\n"                                            \
    "      local length, rest = string.match(last, '^(%d+):(.*)$')\n"                                           \
    "      length = tonumber(length)\n"                                                                         \
    "      report('offline', string.sub(rest, length + 1), string.sub(rest, 1, length))\n"                      \
    "    end\n"                                                                                                 \
    "  end\n"                                                                                                   \
    "end\n"                                                                                                     \
    "local function touch()\n"                                                                                  \
    "  expire()\n"                                                                                              \
    "  report_due_offline()\n"                                                                                  \
    "end\n"

// ARGV[4..]: expire-at, key ttl (ms), then (client, user, entry) per entry. Returns {1, transitions}.
const char* const kAdd = WSPUSH_PRESENCE_PRELUDE R"lua(
touch()
for i = 6, #ARGV, 3 do
  local client, user, entry = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if redis.call('hset', entries, client, entry) == 1 then
    local first_of_user = redis.call('hincrby', users, user, 1) == 1
    if first_of_user and user ~= '' then redis.call('zadd', names, 0, user) end
    if reported then
      report('added', entry, '')
      if redis.call('hlen', entries) == 1 then report('occupied', entry, '') end
      if user_status and first_of_user and user ~= '' then
        -- Back within the grace (a page reload): neither offline nor online again.
        if redis.call('zrem', offline_due, user) == 1 then
          redis.call('hdel', offline_entries, user)
        else
          report('online', entry, '')
        end
      end
    end
  end
  redis.call('zadd', expiry, ARGV[4], client)
end
-- The keys outlive their last entry by a minute: expired by Redis together with the entries, a
-- dead node's channel would vanish unreported, before any sweep saw the entries expire.
for i = 1, 4 do redis.call('pexpire', KEYS[i], tonumber(ARGV[5]) + 60000) end
return {1, transitions}
)lua";

// ARGV[4..]: reason, then clients. Returns {1, transitions}.
const char* const kRemove = WSPUSH_PRESENCE_PRELUDE R"lua(
touch()
for i = 5, #ARGV do forget(ARGV[i], ARGV[4]) end
return {1, transitions}
)lua";

// ARGV[4]: limit. Returns {at most limit entries, transitions}.
const char* const kList = WSPUSH_PRESENCE_PRELUDE R"lua(
touch()
local limit = tonumber(ARGV[4])
if redis.call('hlen', entries) <= limit then return {redis.call('hvals', entries), transitions} end
local out, cursor = {}, '0'
repeat
  local page = redis.call('hscan', entries, cursor, 'COUNT', 256)
  cursor = page[1]
  for i = 2, #page[2], 2 do
    if #out >= limit then return {out, transitions} end
    out[#out + 1] = page[2][i]
  end
until cursor == '0'
return {out, transitions}
)lua";

// Returns {{clients, users}, transitions}.
const char* const kStats = WSPUSH_PRESENCE_PRELUDE R"lua(
touch()
return {{redis.call('hlen', entries), redis.call('hlen', users)}, transitions}
)lua";

// ARGV[4..]: users. Returns {each user's connection count or false, transitions}.
const char* const kHasUsers = WSPUSH_PRESENCE_PRELUDE R"lua(
touch()
return {redis.call('hmget', users, unpack(ARGV, 4)), transitions}
)lua";

// ARGV[4..5]: the last user of the previous page ("" to start), limit. Returns {the next users by
// name, at most limit + 1 (the anonymous "" is never among the names), transitions}.
const char* const kUsers = WSPUSH_PRESENCE_PRELUDE R"lua(
touch()
local from = ARGV[4] == '' and '-' or '(' .. ARGV[4]
return {redis.call('zrangebylex', names, from, '+', 'LIMIT', 0, tonumber(ARGV[5]) + 1), transitions}
)lua";

// KEYS[7]: the shard's live index. ARGV[4]: the channel. Drops what expired and sets the
// channel's place in the index: its last expire-at, or out of it once it has no entry. The index
// is raised before every add of the channel (ZADD GT, RedisPresenceStore::addChunks): an add
// whose script has not run yet has already moved the channel past now, and the channel stays.
// Returns {1, transitions}.
const char* const kSweep = WSPUSH_PRESENCE_PRELUDE R"lua(
touch()
local live, channel = KEYS[7], ARGV[4]
local last = redis.call('zrange', expiry, -1, -1, 'WITHSCORES')
if #last > 0 then
  redis.call('zadd', live, 'GT', last[2], channel)
else
  local indexed = redis.call('zscore', live, channel)
  if indexed and tonumber(indexed) <= now then redis.call('zrem', live, channel) end
end
return {1, transitions}
)lua";

#undef WSPUSH_PRESENCE_PRELUDE

std::optional<PresenceTransitionKind> transitionKindOf(std::optional<std::string_view> code) {
    static constexpr std::pair<std::string_view, PresenceTransitionKind> kKinds[] = {
        {"added", PresenceTransitionKind::MemberAdded},        {"removed", PresenceTransitionKind::MemberRemoved},
        {"occupied", PresenceTransitionKind::ChannelOccupied}, {"vacated", PresenceTransitionKind::ChannelVacated},
        {"online", PresenceTransitionKind::UserOnline},        {"offline", PresenceTransitionKind::UserOffline}};
    for (const auto& [name, kind] : kKinds)
        if (code == name) return kind;
    return std::nullopt;
}

// {kind, entry, reason, …}, as the scripts' `transitions`; nullopt when one is malformed.
std::optional<std::vector<PresenceTransition>> parseTransitions(const RedisReply& reply, std::string_view channel,
                                                                std::int64_t now) {
    if (!reply.isArray() || reply.elements.size() % 3 != 0) return std::nullopt;
    std::vector<PresenceTransition> transitions;
    transitions.reserve(reply.elements.size() / 3);
    for (std::size_t i = 0; i < reply.elements.size(); i += 3) {
        auto kind = transitionKindOf(reply.elements[i].asString());
        auto text = reply.elements[i + 1].asString();
        auto entry = text ? parsePresenceEntry(*text) : std::nullopt;
        auto reason = reply.elements[i + 2].asString();
        if (!kind || !entry || !reason) return std::nullopt;
        transitions.push_back(
            PresenceTransition{*kind, std::string(channel), std::move(*entry), std::string(*reason), now});
    }
    return transitions;
}

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
      usersScript_(kUsers),
      sweepScript_(kSweep) {
    for (const RedisScript* script :
         {&addScript_, &removeScript_, &listScript_, &statsScript_, &hasUsersScript_, &usersScript_, &sweepScript_})
        engine_.loadOnReady(*script);
}

void RedisPresenceStore::reportTransitions(PresenceTransitionOptions options) {
    reporting_ = std::move(options);
}

std::vector<std::string> RedisPresenceStore::keysOf(std::string_view channel) const {
    const RedisKeys& keys = engine_.keys();
    return {keys.presence(channel),          keys.presenceExpiry(channel),     keys.presenceUsers(channel),
            keys.presenceUserNames(channel), keys.presenceOfflineDue(channel), keys.presenceOfflineEntries(channel)};
}

bool RedisPresenceStore::isReported(std::string_view channel) const {
    return reporting_ && reporting_->reported(channel);
}

std::vector<std::string> RedisPresenceStore::argsOf(std::string_view channel, std::int64_t now) const {
    if (!isReported(channel)) return {std::to_string(now), "0", "0"};
    return {std::to_string(now), channel == reporting_->userStatusChannel ? "2" : "1",
            std::to_string(reporting_->offlineGrace.count())};
}

const RedisReply* RedisPresenceStore::reportAndUnwrap(const RedisResult& result, std::string_view channel,
                                                      std::int64_t now) const {
    auto* reply = std::get_if<RedisReply>(&result);
    if (reply == nullptr || !reply->isArray() || reply->elements.size() != 2) return nullptr;
    auto transitions = parseTransitions(reply->elements[1], channel, now);
    if (!transitions) return nullptr;
    if (!transitions->empty() && reporting_) reporting_->handler(std::move(*transitions));
    return &reply->elements[0];
}

void RedisPresenceStore::add(std::string_view channel, std::vector<PresenceEntry> entries,
                             std::chrono::milliseconds ttl) {
    if (entries.empty()) return;
    std::int64_t now = clock_();
    std::string expiresAt = std::to_string(now + ttl.count());
    std::vector<std::string> head = argsOf(channel, now);
    head.push_back(expiresAt);
    head.push_back(std::to_string(ttl.count()));
    auto adding = std::make_shared<Adding>(
        Adding{std::string(channel), now, isReported(channel), expiresAt, std::move(head), std::move(entries)});
    addChunks(std::move(adding), 0);
}

void RedisPresenceStore::addChunks(std::shared_ptr<Adding> adding, std::size_t next) {
    engine_.withShardOf(adding->channel, [this, adding, next](auto shard) mutable {
        // Not stored now: the node's next refresh stores it (PresenceStore::add).
        auto* commands = std::get_if<RedisConnection*>(&shard);
        if (commands == nullptr) return;
        // Before the script, pipelined: from the moment the script has run (even one sent again
        // as EVAL after NOSCRIPT, behind this), the index holds the channel past now (kSweep).
        if (adding->reported)
            (*commands)->command({"ZADD", engine_.keys().presenceLive(), "GT", adding->expiresAt, adding->channel},
                                 [](RedisResult) {});
        // Before the completion takes `adding`.
        std::vector<std::string> keys = keysOf(adding->channel);
        std::vector<std::string> args = adding->head;
        std::size_t first = next * kAddChunk, last = std::min(adding->entries.size(), first + kAddChunk);
        args.reserve(args.size() + 3 * (last - first));
        for (std::size_t i = first; i < last; ++i) {
            const PresenceEntry& entry = adding->entries[i];
            args.push_back(entry.client);
            args.push_back(entry.user);
            args.push_back(presenceEntryJson(entry).dump());
        }
        addScript_.run(**commands, std::move(keys), std::move(args),
                       [this, adding = std::move(adding), next](RedisResult result) mutable {
                           if (reportAndUnwrap(result, adding->channel, adding->nowMs) == nullptr &&
                               std::holds_alternative<RedisReply>(result))
                               spdlog::warn("redis: presence add: {}", std::get<RedisReply>(result).describe());
                           if (next + 1 < adding->chunks()) addChunks(std::move(adding), next + 1);
                       });
    });
}

void RedisPresenceStore::remove(std::string_view channel, std::vector<std::string> clients, std::string reason) {
    if (clients.empty()) return;
    std::int64_t now = clock_();
    std::vector<std::string> args = argsOf(channel, now);
    args.reserve(args.size() + 1 + clients.size());
    args.push_back(std::move(reason));
    std::move(clients.begin(), clients.end(), std::back_inserter(args));
    engine_.withShardOf(
        channel, [this, channel = std::string(channel), now, args = std::move(args)](auto shard) mutable {
            // Not removed now: the entries expire within their ttl, as a dead node's do.
            auto* commands = std::get_if<RedisConnection*>(&shard);
            if (commands == nullptr) return;
            removeScript_.run(**commands, keysOf(channel), std::move(args), [this, channel, now](RedisResult result) {
                if (reportAndUnwrap(result, channel, now) == nullptr && std::holds_alternative<RedisReply>(result))
                    spdlog::warn("redis: presence remove: {}", std::get<RedisReply>(result).describe());
            });
        });
}

void RedisPresenceStore::list(std::string_view channel, std::size_t limit, PresenceListCompletion done) {
    std::int64_t now = clock_();
    std::vector<std::string> args = argsOf(channel, now);
    args.push_back(std::to_string(limit));
    engine_.withShardOf(channel, [this, channel = std::string(channel), now, args = std::move(args),
                                  done = std::move(done)](auto shard) mutable {
        if (auto* error = std::get_if<BrokerError>(&shard)) return done(std::move(*error));
        listScript_.run(*std::get<RedisConnection*>(shard), keysOf(channel), std::move(args),
                        [this, channel, now, done = std::move(done)](RedisResult result) {
                            const RedisReply* reply = reportAndUnwrap(result, channel, now);
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
    std::int64_t now = clock_();
    engine_.withShardOf(channel, [this, channel = std::string(channel), now,
                                  done = std::move(done)](auto shard) mutable {
        if (auto* error = std::get_if<BrokerError>(&shard)) return done(std::move(*error));
        statsScript_.run(
            *std::get<RedisConnection*>(shard), keysOf(channel), argsOf(channel, now),
            [this, channel, now, done = std::move(done)](RedisResult result) {
                const RedisReply* reply = reportAndUnwrap(result, channel, now);
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
    std::int64_t now = clock_();
    std::size_t asked = users.size();
    std::vector<std::string> args = argsOf(channel, now);
    args.reserve(args.size() + asked);
    std::move(users.begin(), users.end(), std::back_inserter(args));
    engine_.withShardOf(channel, [this, channel = std::string(channel), now, asked, args = std::move(args),
                                  done = std::move(done)](auto shard) mutable {
        if (auto* error = std::get_if<BrokerError>(&shard)) return done(std::move(*error));
        hasUsersScript_.run(*std::get<RedisConnection*>(shard), keysOf(channel), std::move(args),
                            [this, channel, now, asked, done = std::move(done)](RedisResult result) {
                                const RedisReply* reply = reportAndUnwrap(result, channel, now);
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
    std::int64_t now = clock_();
    std::vector<std::string> args = argsOf(channel, now);
    args.push_back(std::move(*after));
    args.push_back(std::to_string(limit));
    engine_.withShardOf(channel, [this, channel = std::string(channel), now, limit, args = std::move(args),
                                  done = std::move(done)](auto shard) mutable {
        if (auto* error = std::get_if<BrokerError>(&shard)) return done(std::move(*error));
        usersScript_.run(*std::get<RedisConnection*>(shard), keysOf(channel), std::move(args),
                         [this, channel, now, limit, done = std::move(done)](RedisResult result) {
                             const RedisReply* reply = reportAndUnwrap(result, channel, now);
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

void RedisPresenceStore::sweep() {
    if (!reporting_) return;
    std::int64_t now = clock_();
    const std::string& userStatus = reporting_->userStatusChannel;
    if (!userStatus.empty() && isReported(userStatus)) {
        engine_.withShardOf(userStatus, [this, userStatus, now](auto shard) {
            if (auto* commands = std::get_if<RedisConnection*>(&shard)) sweepChannel(**commands, userStatus, now);
        });
    }
    engine_.withEachShard([this, now](auto shard) {
        auto* commands = std::get_if<RedisConnection*>(&shard);
        if (commands == nullptr) return;  // the next sweep finds what this one could not
        // The channels are swept on the shard whose index names them, where their keys are, even
        // if a shard appended since moved them (redis_keys.h, shardOf).
        (*commands)->command({"ZRANGEBYSCORE", engine_.keys().presenceLive(), "-inf", std::to_string(now), "LIMIT", "0",
                              std::to_string(kSweepChannels)},
                             [this, now, weak = (*commands)->weak_from_this()](RedisResult result) {
                                 auto* reply = std::get_if<RedisReply>(&result);
                                 auto commands = weak.lock();
                                 if (reply == nullptr || !reply->isArray() || !commands) return;
                                 for (const RedisReply& element : reply->elements)
                                     if (auto channel = element.asString())
                                         sweepChannel(*commands, std::string(*channel), now);
                             });
    });
}

void RedisPresenceStore::sweepChannel(RedisConnection& commands, std::string channel, std::int64_t now) {
    std::vector<std::string> keys = keysOf(channel);
    keys.push_back(engine_.keys().presenceLive());
    std::vector<std::string> args = argsOf(channel, now);
    args.push_back(channel);
    sweepScript_.run(commands, std::move(keys), std::move(args), [this, channel, now](RedisResult result) {
        if (reportAndUnwrap(result, channel, now) == nullptr && std::holds_alternative<RedisReply>(result))
            spdlog::warn("redis: presence sweep: {}", std::get<RedisReply>(result).describe());
    });
}

}  // namespace wspush
