#include "engine/redis/redis_webhook_stream.h"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace wspush {

namespace {

constexpr const char* kGroup = "wspushd";

// The most entries one look takes over: their ids go through Lua's unpack(), whose stack holds
// a few thousand values.
constexpr std::size_t kMostTakenOver = 1000;

// KEYS: the stream. ARGV[1]: the most entries it may hold, then (name, json) per event. The length
// is what is unread or unacknowledged (acknowledged entries are deleted). Returns how many of the
// events were dropped: the last ones, once the stream is full.
const char* const kAppend = R"lua(
local stream, bound = KEYS[1], tonumber(ARGV[1])
local length, dropped = redis.call('xlen', stream), 0
for i = 2, #ARGV, 2 do
  if length >= bound then
    dropped = dropped + 1
  else
    redis.call('xadd', stream, '*', 'n', ARGV[i], 'j', ARGV[i + 1])
    length = length + 1
  end
end
return dropped
)lua";

// KEYS: the stream. ARGV: the group, this consumer, the most entries to take, the idle time (ms)
// that makes a consumer without a live node gone, then the live nodes. Claims for this consumer
// the pending entries of every other consumer that is gone,
// and deletes such a consumer once nothing of it is pending: in one script, so that two nodes
// looking at once never both claim an entry, and a consumer is never deleted with entries it took
// between a look and the deletion. Returns the entries claimed, as XCLAIM gives them.
const char* const kTakeOver = R"lua(
local stream, group, me, room, idle = KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
if redis.call('exists', stream) == 0 then return {} end
local live = {}
for i = 5, #ARGV do live[ARGV[i]] = true end
local taken = {}
for _, fields in ipairs(redis.call('xinfo', 'consumers', stream, group)) do
  local consumer = {}
  for i = 1, #fields, 2 do consumer[fields[i]] = fields[i + 1] end
  if consumer.name ~= me and not live[consumer.name] and consumer.idle >= idle then
    local pending = consumer.pending
    if pending > 0 and room > 0 then
      local ids = {}
      for _, entry in ipairs(redis.call('xpending', stream, group, '-', '+', room, consumer.name)) do
        ids[#ids + 1] = entry[1]
      end
      if #ids > 0 then
        -- Entries deleted meanwhile are not claimed (Redis 7 drops them from the pending list).
        for _, entry in ipairs(redis.call('xclaim', stream, group, me, 0, unpack(ids))) do
          if entry then taken[#taken + 1] = entry end
        end
      end
      room, pending = room - #ids, pending - #ids
    end
    if pending <= 0 then redis.call('xgroup', 'delconsumer', stream, group, consumer.name) end
  end
end
return taken
)lua";

BrokerError errorOf(const RedisResult& result) {
    if (auto* failure = std::get_if<RedisFailure>(&result))
        return BrokerError{ApiErrorCode::Unavailable, "redis: " + failure->message};
    return BrokerError{ApiErrorCode::Internal, "redis: unexpected reply " + std::get<RedisReply>(result).describe()};
}

// The entries of an XREADGROUP reply for one stream: [[key, [entry, …]]], or nil when there are
// none. nullptr when the reply has another shape.
const std::vector<RedisReply>* readEntries(const RedisReply& reply) {
    static const std::vector<RedisReply> kNone;
    if (reply.isNil()) return &kNone;
    if (!reply.isArray() || reply.elements.size() != 1) return nullptr;
    const RedisReply& stream = reply.elements[0];
    if (!stream.isArray() || stream.elements.size() != 2 || !stream.elements[1].isArray()) return nullptr;
    return &stream.elements[1].elements;
}

// The event of an entry's fields [field, value, …]: `n` its name, `j` its JSON.
std::optional<WebhookStreamEvent> eventOf(const RedisReply& fields) {
    if (!fields.isArray() || fields.elements.size() % 2 != 0) return std::nullopt;
    std::optional<std::string_view> name, json;
    for (std::size_t i = 0; i < fields.elements.size(); i += 2) {
        auto field = fields.elements[i].asString();
        if (field == "n") name = fields.elements[i + 1].asString();
        if (field == "j") json = fields.elements[i + 1].asString();
    }
    if (!name || !json) return std::nullopt;
    return WebhookStreamEvent{std::string(*name), std::string(*json)};
}

}  // namespace

RedisWebhookStream::RedisWebhookStream(RedisBroker& engine, std::string consumer, std::size_t maxLength,
                                       RedisWebhookStreamOptions options)
    : engine_(engine),
      consumer_(std::move(consumer)),
      maxLength_(maxLength),
      options_(options),
      key_(engine.keys().webhooks()),
      appendScript_(kAppend),
      takeOverScript_(kTakeOver) {
    for (const RedisScript* script : {&appendScript_, &takeOverScript_}) engine_.loadOnReady(*script);
}

void RedisWebhookStream::append(std::vector<WebhookStreamEvent> events, WebhookAppendCompletion done) {
    std::vector<std::string> args;
    args.reserve(1 + 2 * events.size());
    args.push_back(std::to_string(maxLength_));
    for (WebhookStreamEvent& event : events) {
        args.push_back(std::move(event.name));
        args.push_back(std::move(event.json));
    }
    // No consumer group needed: XADD makes the stream, and a group made later starts at its first entry.
    engine_.withShardOf(kWebhookShard, [this, args = std::move(args), done = std::move(done)](auto shard) mutable {
        if (auto* error = std::get_if<BrokerError>(&shard)) return done(std::move(*error));
        appendScript_.run(*std::get<RedisConnection*>(shard), {key_}, std::move(args),
                          [done = std::move(done)](RedisResult result) {
                              auto* reply = std::get_if<RedisReply>(&result);
                              auto dropped = reply != nullptr ? reply->asInteger() : std::nullopt;
                              if (!dropped || *dropped < 0) return done(errorOf(result));
                              done(static_cast<std::size_t>(*dropped));
                          });
    });
}

void RedisWebhookStream::read(std::size_t max, WebhookReadCompletion done) {
    // XREADGROUP takes COUNT 0 for "no limit".
    if (max == 0) return done(std::vector<WebhookStreamEntry>{});
    auto read = std::make_shared<Read>(Read{max, std::move(done), {}});
    std::optional<std::string> ownPendingAfter;
    {
        std::lock_guard lock(mutex_);
        ownPendingAfter = ownPendingAfter_;
    }
    if (ownPendingAfter) return readOwnPending(std::move(read), std::move(*ownPendingAfter));
    takeOver(std::move(read));
}

// What this consumer took before it stopped and never acknowledged: XREADGROUP with an id reads
// the consumer's own pending entries after it, with their fields.
void RedisWebhookStream::readOwnPending(ReadPtr read, std::string after) {
    std::size_t count = read->room();
    send(
        [this, count, after](RedisConnection& connection, RedisReplyHandler handler) {
            connection.command(
                {"XREADGROUP", "GROUP", kGroup, consumer_, "COUNT", std::to_string(count), "STREAMS", key_, after},
                std::move(handler));
        },
        [this, read, count](auto answer) {
            auto* reply = std::get_if<RedisReply>(&answer);
            if (reply == nullptr) return finish(read, std::get<BrokerError>(std::move(answer)));
            const std::vector<RedisReply>* entries = readEntries(*reply);
            if (entries == nullptr) return finish(read, errorOf(*reply));
            take(*read, *entries);
            // Fewer than asked for: read through. Otherwise the next read goes on after the last.
            std::optional<std::string> next;
            if (entries->size() >= count) {
                const RedisReply& last = entries->back();
                auto id = last.isArray() && !last.elements.empty() ? last.elements[0].asString() : std::nullopt;
                if (id) next = std::string(*id);
            }
            {
                std::lock_guard lock(mutex_);
                ownPendingAfter_ = std::move(next);
            }
            takeOver(read);
        });
}

// The pending entries of consumers whose node has no heartbeat, every takeOverInterval.
void RedisWebhookStream::takeOver(ReadPtr read) {
    auto now = std::chrono::steady_clock::now();
    bool due = false;
    {
        std::lock_guard lock(mutex_);
        due = read->room() > 0 && now >= nextTakeOver_;
        if (due) nextTakeOver_ = now + options_.takeOverInterval;
    }
    if (!due) return readNew(std::move(read));
    engine_.nodes([this, read](auto nodes) mutable {
        // Without the node list no consumer is known to be gone: the next look tells.
        auto* live = std::get_if<std::vector<NodeHeartbeat>>(&nodes);
        if (live == nullptr) return readNew(std::move(read));
        std::vector<std::string> args{kGroup, consumer_, std::to_string(std::min(read->room(), kMostTakenOver)),
                                      std::to_string(options_.takeOverIdle.count())};
        for (NodeHeartbeat& node : *live) args.push_back(std::move(node.name));
        send(
            [this, args = std::move(args)](RedisConnection& connection, RedisReplyHandler handler) {
                takeOverScript_.run(connection, {key_}, args, std::move(handler));
            },
            [this, read](auto answer) {
                auto* reply = std::get_if<RedisReply>(&answer);
                // What could not be claimed now stays with its consumer for the next look.
                if (reply != nullptr && reply->isArray())
                    take(*read, reply->elements);
                else
                    spdlog::warn("redis: webhook stream: taking over the entries of gone nodes failed: {}",
                                 reply != nullptr ? reply->describe() : std::get<BrokerError>(answer).message);
                readNew(read);
            });
    });
}

void RedisWebhookStream::readNew(ReadPtr read) {
    if (read->room() == 0) return finish(read);
    std::size_t count = read->room();
    send(
        [this, count](RedisConnection& connection, RedisReplyHandler handler) {
            connection.command(
                {"XREADGROUP", "GROUP", kGroup, consumer_, "COUNT", std::to_string(count), "STREAMS", key_, ">"},
                std::move(handler));
        },
        [this, read](auto answer) {
            auto* reply = std::get_if<RedisReply>(&answer);
            if (reply == nullptr) return finish(read, std::get<BrokerError>(std::move(answer)));
            const std::vector<RedisReply>* entries = readEntries(*reply);
            if (entries == nullptr) return finish(read, errorOf(*reply));
            take(*read, *entries);
            finish(read);
        });
}

void RedisWebhookStream::finish(const ReadPtr& read, std::optional<BrokerError> error) {
    // What the earlier steps took is pending under this node's name now: it must be sent, or it
    // would wait for a restart.
    if (error && read->entries.empty()) return read->done(std::move(*error));
    read->done(std::move(read->entries));
}

// Takes the entries of an XREADGROUP or XCLAIM reply ([id, [field, value, …]] each) into `read`.
// An entry deleted meanwhile (nil fields: acknowledged by a node that had claimed it) and a
// malformed one are acknowledged instead, so that they leave the pending entries.
void RedisWebhookStream::take(Read& read, const std::vector<RedisReply>& entries) {
    std::vector<std::string> dropped;
    {
        std::lock_guard lock(mutex_);
        for (const RedisReply& entry : entries) {
            if (entry.isNil()) continue;  // XCLAIM of a deleted entry before Redis 7
            auto id = entry.isArray() && entry.elements.size() == 2 ? entry.elements[0].asString() : std::nullopt;
            if (!id) {
                spdlog::warn("redis: webhook stream: skipped an entry without an id: {}", entry.describe());
                continue;
            }
            const RedisReply& fields = entry.elements[1];
            auto event = fields.isNil() ? std::nullopt : eventOf(fields);
            if (!event) {
                if (!fields.isNil())
                    spdlog::warn("redis: webhook stream: dropped the malformed entry {}: {}", *id, fields.describe());
                dropped.emplace_back(*id);
                continue;
            }
            if (!handedOut_.emplace(*id).second) continue;
            read.entries.push_back(WebhookStreamEntry{std::string(*id), std::move(*event)});
        }
    }
    if (!dropped.empty()) deleteEntries(std::move(dropped));
}

void RedisWebhookStream::acknowledge(std::vector<std::string> entryIds) {
    if (entryIds.empty()) return;
    {
        std::lock_guard lock(mutex_);
        for (const std::string& id : entryIds) handedOut_.erase(id);
    }
    deleteEntries(std::move(entryIds));
}

// XACK takes the entries out of the pending ones, XDEL out of the stream, whose length is the
// bound; one MULTI, so that an entry is never left counted once acknowledged.
void RedisWebhookStream::deleteEntries(std::vector<std::string> ids) {
    engine_.withShardOf(kWebhookShard, [this, ids = std::move(ids)](auto shard) {
        auto* connection = std::get_if<RedisConnection*>(&shard);
        if (connection == nullptr) {
            // Left pending: read again after a restart, or taken over. At least once.
            return spdlog::warn("redis: webhook stream: {} entries not acknowledged: {}", ids.size(),
                                std::get<BrokerError>(shard).message);
        }
        std::vector<std::string> acknowledge{"XACK", key_, kGroup};
        std::vector<std::string> remove{"XDEL", key_};
        acknowledge.insert(acknowledge.end(), ids.begin(), ids.end());
        remove.insert(remove.end(), ids.begin(), ids.end());
        (*connection)->command({"MULTI"}, [](RedisResult) {});
        (*connection)->command(std::move(acknowledge), [](RedisResult) {});
        (*connection)->command(std::move(remove), [](RedisResult) {});
        (*connection)->command({"EXEC"}, [count = ids.size()](RedisResult result) {
            auto* reply = std::get_if<RedisReply>(&result);
            if (reply == nullptr || !reply->isArray())
                spdlog::warn("redis: webhook stream: {} entries not acknowledged: {}", count,
                             reply != nullptr ? reply->describe() : std::get<RedisFailure>(result).message);
        });
    });
}

// ---- the shard and the group -------------------------------------------------------------------

void RedisWebhookStream::send(Request request, Answer answer, bool mayCreateGroupAgain) {
    engine_.withShardOf(kWebhookShard, [this, request = std::move(request), answer = std::move(answer),
                                        mayCreateGroupAgain](auto shard) mutable {
        if (auto* error = std::get_if<BrokerError>(&shard)) return answer(std::move(*error));
        RedisConnection& connection = *std::get<RedisConnection*>(shard);
        // Pipelined ahead of the request, which therefore finds the group.
        if (!groupExists_) createGroup(connection);
        request(connection,
                [this, request, answer = std::move(answer), mayCreateGroupAgain](RedisResult result) mutable {
                    auto* reply = std::get_if<RedisReply>(&result);
                    // The key was deleted, or Redis lost its data: a new group, from the stream's start.
                    if (reply != nullptr && reply->isErrorWith("NOGROUP") && mayCreateGroupAgain) {
                        groupExists_ = false;
                        return send(std::move(request), std::move(answer), false);
                    }
                    if (reply == nullptr || reply->isError()) return answer(errorOf(result));
                    answer(std::move(*reply));
                });
    });
}

// From the stream's first entry (id 0): events appended before any node read are read too.
// MKSTREAM: before the first append there is no stream to make a group of.
void RedisWebhookStream::createGroup(RedisConnection& connection) {
    connection.command({"XGROUP", "CREATE", key_, kGroup, "0", "MKSTREAM"}, [this](RedisResult result) {
        auto* reply = std::get_if<RedisReply>(&result);
        if (reply != nullptr && (!reply->isError() || reply->isErrorWith("BUSYGROUP"))) groupExists_ = true;
    });
}

}  // namespace wspush
