#include "engine/redis/redis_broker.h"

#include <algorithm>
#include <future>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include "engine/redis/publication_codec.h"
#include "engine/redis/redis_lua.h"
#include "engine/redis/redis_sentinel.h"

namespace wspush {

namespace net = boost::asio;
using namespace std::chrono_literals;

namespace {

// A repair reads at most this many publications; a larger gap is left to the subscribers'
// "insufficient state" path (they resubscribe and recover from history themselves).
constexpr std::uint64_t kMaxRepair = 10000;
constexpr auto kHousekeepingPeriod = 100ms;

std::string streamId(std::uint64_t offset) {
    return std::to_string(offset) + "-0";
}

// Redis answers these while it cannot serve writes yet or any more: retry later (503), like a
// connection that is down.
bool isTransientError(const RedisReply& reply) {
    return reply.isErrorWith("LOADING") || reply.isErrorWith("READONLY") || reply.isErrorWith("MASTERDOWN") ||
           reply.isErrorWith("BUSY") || reply.isErrorWith("TRYAGAIN") || reply.isErrorWith("CLUSTERDOWN");
}

BrokerError errorOf(const RedisResult& result, const std::string& shard) {
    if (auto* failure = std::get_if<RedisFailure>(&result))
        return BrokerError{ApiErrorCode::Unavailable, "redis " + shard + ": " + failure->message};
    const RedisReply& reply = std::get<RedisReply>(result);
    if (isTransientError(reply)) return BrokerError{ApiErrorCode::Unavailable, "redis " + shard + ": " + reply.string};
    return BrokerError{ApiErrorCode::Internal, "redis " + shard + ": unexpected reply " + reply.describe()};
}

// Decodes the entries of an XRANGE/XREVRANGE reply; nullopt when one is malformed.
std::optional<std::vector<PublicationPtr>> decodeEntries(std::string_view channel, std::string_view epoch,
                                                         const RedisReply& entries) {
    if (!entries.isArray()) return std::nullopt;
    std::vector<PublicationPtr> publications;
    publications.reserve(entries.elements.size());
    for (const RedisReply& entry : entries.elements) {
        if (!entry.isArray() || entry.elements.size() != 2 || !entry.elements[1].isArray()) return std::nullopt;
        auto id = entry.elements[0].asString();
        auto offset = id ? offsetOfStreamId(*id) : std::nullopt;
        const auto& fields = entry.elements[1].elements;
        if (!offset || fields.size() != 2 || fields[0].asString() != std::optional<std::string_view>("d"))
            return std::nullopt;
        auto body = fields[1].asString();
        auto publication = body ? decodeBody(channel, *offset, epoch, *body) : std::nullopt;
        if (!publication) return std::nullopt;
        publications.push_back(std::make_shared<const Publication>(std::move(*publication)));
    }
    return publications;
}

}  // namespace

RedisBroker::RedisBroker(RedisBrokerOptions options, std::string instanceId, Clock clock)
    : options_(std::move(options)),
      instanceId_(std::move(instanceId)),
      clock_(std::move(clock)),
      keys_(options_.prefix),
      publishScript_(redis_lua::kPublish),
      trimScript_(redis_lua::kTrimHistory),
      positionScript_(redis_lua::kReadPosition),
      heartbeatScript_(redis_lua::kHeartbeat),
      nodesScript_(redis_lua::kNodes) {
    for (const RedisShardOptions& shard : options_.shards) {
        health_.push_back(EngineShardHealth{shard.name, false, "connecting"});
        commandStats_.push_back(std::make_shared<RedisCommandStats>());
    }
}

RedisBroker::~RedisBroker() {
    stop();
}

void RedisBroker::setEventHandler(BrokerEventHandler* handler, std::string nodeName) {
    handler_ = handler;
    nodeName_ = std::move(nodeName);
}

// A post, even from the loop itself: a caller's completion never runs inside its own call.
template <class Task>
void RedisBroker::run(Task&& task) {
    net::post(*loop_, std::forward<Task>(task));
}

void RedisBroker::start(net::io_context& loop) {
    if (started_) return;
    started_ = true;
    loop_ = &loop;
    run([this] { startOnLoop(); });
}

void RedisBroker::stop() {
    if (!started_ || stopped_.exchange(true)) return;
    // After the loop's threads returned nobody else can touch the engine.
    if (loop_->stopped()) {
        stopOnLoop();
        return release();
    }
    // On the loop, maybe from inside one of the engine's own handlers, whose state must outlive
    // it: the release waits for the next turn.
    if (loop_->get_executor().running_in_this_thread()) {
        stopOnLoop();
        return run([this] { release(); });
    }
    std::promise<void> released;
    run([this, &released] {
        stopOnLoop();
        // Queued behind what stopping queued (cancelled timers, failed commands), which may still
        // name this engine; the connections go on the loop that owns their sockets.
        run([this, &released] {
            release();
            released.set_value();
        });
    });
    released.get_future().wait();
}

void RedisBroker::startOnLoop() {
    for (std::size_t index = 0; index < options_.shards.size(); ++index) {
        const RedisShardOptions& shardOptions = options_.shards[index];
        RedisConnectionOptions connection;
        connection.address = shardOptions.sentinel
                                 ? sentinelMasterAddress(*loop_, *shardOptions.sentinel, options_.connectTimeout,
                                                         options_.commandTimeout)
                                 : fixedRedisAddress(shardOptions.address);
        connection.password = options_.password;
        connection.db = options_.db;
        // Behind Sentinel, a demoted master may still accept connections: it must not be written to.
        connection.requireMaster = shardOptions.sentinel.has_value();
        connection.connectTimeout = options_.connectTimeout;
        connection.commandTimeout = options_.commandTimeout;
        connection.stats = commandStats_[index];

        Shard shard;
        shard.options = shardOptions;
        shard.commandStats = commandStats_[index];
        connection.name = shardOptions.name + " commands";
        shard.commands = RedisConnection::create(
            *loop_, connection,
            RedisConnection::Events{[this, index] {
                                        // Cached scripts let the first EVALSHA succeed; a failed
                                        // load only costs one EVAL later (RedisScript).
                                        for (const RedisScript* script :
                                             {&publishScript_, &positionScript_, &trimScript_, &heartbeatScript_,
                                              &nodesScript_})
                                            script->load(*shards_[index].commands, [](RedisResult) {});
                                        for (const RedisScript* script : extraScripts_)
                                            script->load(*shards_[index].commands, [](RedisResult) {});
                                        updateHealth();
                                        // The pub/sub connection's own check may have come first,
                                        // when this connection could not read yet.
                                        checkPositions(index);
                                    },
                                    [this](const std::string&) { updateHealth(); }});
        connection.name = shardOptions.name + " pub/sub";
        RedisSubscriber::Probe probe{
            keys_.controlNode(nodeName_), options_.probeInterval,
            [this, index](const std::string& channel, const std::string& payload) {
                // With the command connection down, pub/sub may be fine: no probe, no verdict.
                if (!shards_[index].commands->ready()) return false;
                shards_[index].commands->command({"PUBLISH", channel, payload}, [](RedisResult) {});
                return true;
            }};
        shard.subscriber = RedisSubscriber::create(
            *loop_, connection, std::move(probe),
            RedisSubscriber::Events{
                [this](const std::string& channel, const std::string& payload) { onMessage(channel, payload); },
                [this, index] {
                    updateHealth();
                    // Whatever was published while the connection was down was missed.
                    checkPositions(index);
                },
                [this, index](const std::string&) {
                    updateHealth();
                    // The echo a waiting publish expects may never come: complete them now.
                    for (auto& [name, state] : channels_)
                        if (shardIndexOf(name) == index) completeEchoWaits(state, true);
                }});
        shards_.push_back(std::move(shard));
    }
    // Control messages for every node travel on the first shard.
    shards_.front().subscriber->subscribe(keys_.controlAll(), [](bool) {});
    for (Shard& shard : shards_) {
        shard.commands->start();
        shard.subscriber->start();
    }
    housekeeping_.emplace(*loop_);
    nextPositionCheck_ = std::chrono::steady_clock::now() + options_.positionCheckInterval;
    scheduleHousekeeping();
}

void RedisBroker::stopOnLoop() {
    if (housekeeping_) housekeeping_->cancel();
    for (auto& [name, state] : channels_) completeEchoWaits(state, true);
    for (Shard& shard : shards_) {
        shard.subscriber->stop();
        shard.commands->stop();
    }
}

// The connections' sockets and the timer belong to the loop's io_context: they must go before it
// does, and the engine may outlive it (the node owns the engine, the server the loops).
void RedisBroker::release() {
    {
        std::lock_guard lock(healthMutex_);
        for (EngineShardHealth& shard : health_) shard = EngineShardHealth{shard.shard, false, "stopped"};
    }
    shards_.clear();
    housekeeping_.reset();
    channels_.clear();
    echoWaiting_.clear();
}

BrokerError RedisBroker::unavailable(const Shard& shard) const {
    shard.commandStats->failures.fetch_add(1, std::memory_order_relaxed);
    std::string error = shard.commands->lastError();
    return BrokerError{ApiErrorCode::Unavailable,
                       "redis " + shard.options.name + " is unavailable" + (error.empty() ? "" : ": " + error)};
}

std::string RedisBroker::nextMid() {
    return instanceId_ + "-" + std::to_string(nextMid_++);
}

std::string RedisBroker::nextEpoch() {
    return instanceId_ + "-" + std::to_string(nextEpoch_++);
}

void RedisBroker::updateHealth() {
    std::vector<EngineShardHealth> health;
    for (const Shard& shard : shards_) {
        bool ok = shard.commands->ready() && shard.subscriber->ready();
        std::string error;
        if (!shard.commands->ready())
            error = shard.commands->lastError();
        else if (!shard.subscriber->ready())
            error = "pub/sub: " + shard.subscriber->lastError();
        if (!ok && error.empty()) error = "connecting";
        health.push_back(EngineShardHealth{shard.options.name, ok, std::move(error)});
    }
    std::lock_guard lock(healthMutex_);
    health_ = std::move(health);
}

std::vector<EngineShardHealth> RedisBroker::health() const {
    std::lock_guard lock(healthMutex_);
    return health_;
}

EngineStats RedisBroker::stats() const {
    EngineStats stats;
    stats.streams = channelCount_.load(std::memory_order_relaxed);
    stats.gapsFound = gapsFound_.load(std::memory_order_relaxed);
    stats.gapsRepaired = gapsRepaired_.load(std::memory_order_relaxed);
    std::vector<EngineShardHealth> shards = health();  // in the order of options_.shards
    for (const EngineShardHealth& shard : shards) stats.shardsDown += shard.ok ? 0 : 1;
    for (std::size_t index = 0; index < options_.shards.size(); ++index) {
        const RedisCommandStats& commands = *commandStats_[index];
        bool up = index < shards.size() && shards[index].ok;
        stats.shards.push_back(EngineStats::Shard{options_.shards[index].name, up, commands.latency.snapshot(),
                                                  commands.errorReplies.load(std::memory_order_relaxed),
                                                  commands.failures.load(std::memory_order_relaxed)});
    }
    return stats;
}

// ---- publish ----------------------------------------------------------------------------------

void RedisBroker::publish(PublishRequest request, PublishCompletion done) {
    if (stopped_) return done(stopping());
    run([this, request = std::move(request), done = std::move(done)]() mutable {
        doPublish(std::move(request), std::move(done));
    });
}

void RedisBroker::doPublish(PublishRequest request, PublishCompletion done) {
    if (shards_.empty()) return done(stopping());  // posted just before stop()
    Shard& shard = shardFor(request.channel);
    if (!shard.commands->ready()) return done(unavailable(shard));

    auto publication = std::make_shared<Publication>();
    publication->channel = std::move(request.channel);
    publication->mid = request.mid.empty() ? nextMid() : std::move(request.mid);
    publication->timestampMs = clock_();
    publication->qos = request.qos;
    publication->data = std::move(request.data);
    const std::string& channel = publication->channel;

    bool idempotent = !request.idempotencyKey.empty() && request.idempotencyWindow.count() > 0;
    std::vector<std::string> keys{keys_.stream(channel), keys_.meta(channel),
                                  keys_.idempotency(channel, idempotent ? request.idempotencyKey : "")};
    std::vector<std::string> args{encodeBody(*publication),
                                  std::to_string(request.history.size),
                                  std::to_string(std::max<std::int64_t>(request.history.ttl.count(), 1)),
                                  std::to_string(metaTtlFor(request.history).count()),
                                  nextEpoch(),
                                  keys_.pubsub(channel),
                                  idempotent ? std::to_string(request.idempotencyWindow.count()) : "0",
                                  request.reportOrigin ? encodeReportOrigin(*request.reportOrigin) : "",
                                  std::to_string(publication->timestampMs),
                                  encodeFirstPublished(*publication),
                                  std::to_string(request.history.size > 0 ? request.history.maxBytes : 0)};
    publishScript_.run(
        *shard.commands, std::move(keys), std::move(args),
        [this, publication, shardName = shard.options.name, done = std::move(done)](RedisResult result) mutable {
            auto* reply = std::get_if<RedisReply>(&result);
            if (reply == nullptr || reply->isError()) return done(errorOf(result, shardName));
            const auto& fields = reply->elements;
            if (reply->isArray() && fields.size() == 2 &&
                fields[0].asString() == std::optional<std::string_view>("dup")) {
                auto text = fields[1].asString();
                auto first = text ? decodeFirstPublished(publication->channel, *text) : std::nullopt;
                if (!first) return done(errorOf(result, shardName));
                return done(Published{std::make_shared<const Publication>(std::move(*first)), true, 0});
            }
            auto offset = reply->isArray() && fields.size() == 3 ? fields[0].asInteger() : std::nullopt;
            auto epoch = offset ? fields[1].asString() : std::nullopt;
            auto nodes = epoch ? fields[2].asInteger() : std::nullopt;
            if (!nodes || *offset <= 0 || epoch->empty()) return done(errorOf(result, shardName));
            publication->offset = static_cast<std::uint64_t>(*offset);
            publication->epoch = std::string(*epoch);
            Published published{publication, false, static_cast<std::uint64_t>(*nodes)};

            auto it = channels_.find(publication->channel);
            bool echoPending = it != channels_.end() && it->second.confirmed &&
                               !(it->second.delivered && it->second.delivered->epoch == publication->epoch &&
                                 it->second.delivered->offset >= publication->offset);
            if (!echoPending) return done(std::move(published));
            echoWaiting_.insert(publication->channel);
            it->second.echoWaits.push_back(EchoWait{
                publication->offset, publication->epoch, std::chrono::steady_clock::now() + options_.commandTimeout,
                [done = std::move(done), published = std::move(published)]() mutable { done(std::move(published)); }});
        });
}

// ---- receiving --------------------------------------------------------------------------------

void RedisBroker::subscribe(std::string_view channel, SubscribeCompletion done) {
    if (stopped_) return done(stopping());
    run([this, channel = std::string(channel), done = std::move(done)]() mutable {
        if (shards_.empty()) return done(stopping());
        Channel& state = channels_[channel];
        state = Channel{};
        state.generation = nextGeneration_++;
        channelCount_.store(channels_.size(), std::memory_order_relaxed);
        Shard& shard = shardFor(channel);
        shard.subscriber->subscribe(
            keys_.pubsub(channel), [this, channel, generation = state.generation, shardName = shard.options.name,
                                    done = std::move(done)](bool confirmed) {
                // A confirmation of an earlier subscription of the channel (unsubscribed since)
                // still answers its own waiters, but does not speak for the current one.
                auto it = channels_.find(channel);
                if (confirmed && it != channels_.end() && it->second.generation == generation)
                    it->second.confirmed = true;
                if (confirmed) return done(std::nullopt);
                done(BrokerError{ApiErrorCode::Unavailable, "redis " + shardName + ": pub/sub is unavailable"});
            });
    });
}

void RedisBroker::unsubscribe(std::string_view channel) {
    if (stopped_) return;
    run([this, channel = std::string(channel)] {
        auto it = channels_.find(channel);  // none after stop()
        if (it == channels_.end()) return;
        completeEchoWaits(it->second, true);
        channels_.erase(it);
        channelCount_.store(channels_.size(), std::memory_order_relaxed);
        shardFor(channel).subscriber->unsubscribe(keys_.pubsub(channel));
    });
}

void RedisBroker::onMessage(const std::string& pubsubChannel, const std::string& payload) {
    if (pubsubChannel == keys_.controlAll() || pubsubChannel == keys_.controlNode(nodeName_))
        return handler_->onControl(payload);
    std::string_view channel = keys_.channelOf(pubsubChannel);
    auto it = channels_.find(channel);
    if (it == channels_.end()) return;  // unsubscribed while the message was on its way
    if (std::string_view frame = payload; frame.starts_with(kEventPrefix)) {
        auto event = std::make_shared<Publication>();
        event->channel = it->first;
        event->data = frame.substr(kEventPrefix.size());
        event->event = true;
        return handler_->onPublication(event);
    }
    auto publication = decodeMessage(channel, payload);
    if (!publication) {
        spdlog::warn("redis: dropped a malformed message on {} ({} bytes)", pubsubChannel, payload.size());
        return;
    }
    accept(it->first, it->second, std::move(*publication));
}

// Hands publications over in offset order, once each: the live path of the contract.
void RedisBroker::accept(const std::string& channel, Channel& state, Publication publication) {
    if (state.repairing) {
        state.held.push_back(std::move(publication));
        return;
    }
    if (state.delivered && state.delivered->epoch == publication.epoch) {
        if (publication.offset <= state.delivered->offset) return;  // a repair delivered it already
        if (publication.offset > state.delivered->offset + 1) {
            gapsFound_.fetch_add(1, std::memory_order_relaxed);
            std::uint64_t upTo = publication.offset - 1;
            state.held.push_back(std::move(publication));
            return repair(channel, state, upTo);
        }
    }
    // A new epoch (or the first publication received) is handed over as it is: the subscribers'
    // hubs compare it with their own positions and report lost state.
    deliver(state, std::move(publication));
}

void RedisBroker::deliver(Channel& state, Publication publication) {
    state.delivered = StreamPosition{publication.offset, publication.epoch};
    handler_->onPublication(std::make_shared<const Publication>(std::move(publication)));
    completeEchoWaits(state, false);
}

void RedisBroker::completeEchoWaits(Channel& state, bool all) {
    auto now = std::chrono::steady_clock::now();
    while (!state.echoWaits.empty()) {
        EchoWait& wait = state.echoWaits.front();
        bool received =
            state.delivered && state.delivered->epoch == wait.epoch && state.delivered->offset >= wait.offset;
        bool stale = state.delivered && state.delivered->epoch != wait.epoch;
        if (!all && !received && !stale && wait.deadline > now) break;
        auto complete = std::move(wait.complete);
        state.echoWaits.pop_front();
        complete();
    }
}

// Reads what this node missed of `channel` up to `upTo` from history and hands it over before
// anything received meanwhile. What history no longer holds stays a gap: the hubs see it.
void RedisBroker::repair(const std::string& channel, Channel& state, std::uint64_t upTo) {
    std::uint64_t from = state.delivered->offset + 1;
    state.repairing = true;
    std::string epoch = state.delivered->epoch;
    std::uint64_t count = std::min(upTo - from + 1, kMaxRepair);
    doHistory(channel, HistoryQuery{from - 1, static_cast<std::size_t>(count), false},
              [this, channel, generation = state.generation, epoch](std::variant<HistoryPage, BrokerError> result) {
                  auto it = channels_.find(channel);
                  if (it == channels_.end() || it->second.generation != generation) return;
                  Channel& state = it->second;
                  state.repairing = false;
                  if (auto* page = std::get_if<HistoryPage>(&result); page && page->position.epoch == epoch) {
                      bool filled = false;
                      for (const PublicationPtr& missed : page->publications) {
                          if (missed->offset != state.delivered->offset + 1) break;
                          deliver(state, Publication(*missed));
                          filled = true;
                      }
                      if (filled) gapsRepaired_.fetch_add(1, std::memory_order_relaxed);
                  }
                  std::vector<Publication> held;
                  held.swap(state.held);
                  std::sort(held.begin(), held.end(),
                            [](const Publication& a, const Publication& b) { return a.offset < b.offset; });
                  for (Publication& publication : held) {
                      // A gap that remains is handed over as it is, once: no second repair of it.
                      if (state.repairing) {
                          state.held.push_back(std::move(publication));
                      } else if (state.delivered && state.delivered->epoch == publication.epoch &&
                                 publication.offset <= state.delivered->offset) {
                          continue;
                      } else {
                          deliver(state, std::move(publication));
                      }
                  }
              });
}

void RedisBroker::checkPositions(std::size_t shardIndex) {
    Shard& shard = shards_[shardIndex];
    if (!shard.commands->ready()) return;
    for (auto& [name, state] : channels_) {
        if (!state.delivered || state.repairing || shardIndexOf(name) != shardIndex) continue;
        // Everything delivered before the read was published before Redis runs it: a top below
        // this means the stream went back. (What arrives while the reply is on its way may be
        // newer than the top it reads, and means nothing.)
        std::uint64_t deliveredBefore = state.delivered->offset;
        std::string epochBefore = state.delivered->epoch;
        shard.commands->command(
            {"HMGET", keys_.meta(name), "e", "s"},
            [this, channel = name, generation = state.generation, deliveredBefore, epochBefore](RedisResult result) {
                auto it = channels_.find(channel);
                auto* reply = std::get_if<RedisReply>(&result);
                if (it == channels_.end() || it->second.generation != generation || reply == nullptr ||
                    !reply->isArray() || reply->elements.size() != 2)
                    return;
                Channel& state = it->second;
                auto epoch = reply->elements[0].asString();
                auto top = reply->elements[1].asInteger();
                if (!epoch || !top || state.repairing || !state.delivered) return;
                // A new epoch received since the read was sent is newer than what it read.
                if (state.delivered->epoch != epochBefore) return;
                if (*epoch != state.delivered->epoch) {
                    // The stream was lost and started again (Redis restarted without its data)
                    // while this node was not listening: hand over what the new epoch holds, so
                    // the hubs see the new epoch and tell their subscribers. Without history
                    // nothing can be handed over; they learn it at the next publication.
                    if (*top <= 0) return;
                    gapsFound_.fetch_add(1, std::memory_order_relaxed);
                    state.delivered = StreamPosition{0, std::string(*epoch)};
                    return repair(channel, state, static_cast<std::uint64_t>(*top));
                }
                if (static_cast<std::uint64_t>(*top) < deliveredBefore) return restartEpoch(channel, state);
                if (static_cast<std::uint64_t>(*top) <= state.delivered->offset) return;
                gapsFound_.fetch_add(1, std::memory_order_relaxed);
                repair(channel, state, static_cast<std::uint64_t>(*top));
            });
    }
}

// The channel's stream went back (an asynchronous replica took over before it had the newest
// publications): the offsets about to be reused would look like ones already delivered. A new
// epoch, set only if nobody set one meanwhile, makes every subscriber hear about it instead.
void RedisBroker::restartEpoch(const std::string& channel, Channel& state) {
    spdlog::warn("redis: channel {} went back from offset {} (data lost in Redis): starting a new epoch", channel,
                 state.delivered->offset);
    std::string lost = state.delivered->epoch;
    state.delivered.reset();
    shardFor(channel).commands->command(
        {"EVAL", "if redis.call('hget', KEYS[1], 'e') == ARGV[1] then redis.call('hset', KEYS[1], 'e', ARGV[2]) end",
         "1", keys_.meta(channel), lost, nextEpoch()},
        [](RedisResult) {});
}

void RedisBroker::scheduleHousekeeping() {
    housekeeping_->expires_after(kHousekeepingPeriod);
    housekeeping_->async_wait([this](boost::system::error_code ec) {
        if (ec || stopped_) return;
        // Only the channels with a publish waiting for its echo: an idle node does no work per channel.
        for (auto it = echoWaiting_.begin(); it != echoWaiting_.end();) {
            auto channel = channels_.find(*it);
            if (channel != channels_.end()) completeEchoWaits(channel->second, false);
            if (channel == channels_.end() || channel->second.echoWaits.empty())
                it = echoWaiting_.erase(it);
            else
                ++it;
        }
        if (std::chrono::steady_clock::now() >= nextPositionCheck_) {
            nextPositionCheck_ = std::chrono::steady_clock::now() + options_.positionCheckInterval;
            for (std::size_t index = 0; index < shards_.size(); ++index) checkPositions(index);
        }
        scheduleHousekeeping();
    });
}

// ---- history ----------------------------------------------------------------------------------

void RedisBroker::history(std::string_view channel, HistoryQuery query, HistoryCompletion done) {
    if (stopped_) return done(stopping());
    run([this, channel = std::string(channel), query, done = std::move(done)]() mutable {
        doHistory(channel, query, std::move(done));
    });
}

void RedisBroker::doHistory(const std::string& channel, HistoryQuery query, HistoryCompletion done) {
    if (shards_.empty()) return done(stopping());
    std::string stream = keys_.stream(channel);
    std::string count = std::to_string(query.limit);
    std::vector<std::string> page;  // empty: the position alone
    if (query.limit > 0 && !query.reverse)
        page = {"XRANGE", stream, streamId(query.since + 1), "+", "COUNT", count};
    else if (query.limit > 0 && query.since == 0)
        page = {"XREVRANGE", stream, "+", "-", "COUNT", count};
    else if (query.limit > 0 && query.since > 1)
        page = {"XREVRANGE", stream, streamId(query.since - 1), "-", "COUNT", count};
    readPage(channel, std::move(page), true, std::move(done));
}

// The position script and the page's XRANGE in one MULTI: one moment of the stream, one round
// trip, and the page goes from Redis to us without passing through Lua.
void RedisBroker::readPage(const std::string& channel, std::vector<std::string> page, bool cached,
                           HistoryCompletion done) {
    if (shards_.empty()) return done(stopping());
    Shard& shard = shardFor(channel);
    if (!shard.commands->ready()) return done(unavailable(shard));
    std::vector<std::string> keys{keys_.stream(channel), keys_.meta(channel)};
    std::vector<std::string> args{std::to_string(options_.metaTtl.count()), nextEpoch(), std::to_string(clock_())};
    auto decodePosition = [](const RedisReply& reply) -> std::optional<StreamPosition> {
        const auto& fields = reply.elements;
        auto top = reply.isArray() && fields.size() == 2 ? fields[0].asInteger() : std::nullopt;
        auto epoch = top ? fields[1].asString() : std::nullopt;
        if (!epoch || *top < 0 || epoch->empty()) return std::nullopt;
        return StreamPosition{static_cast<std::uint64_t>(*top), std::string(*epoch)};
    };
    if (page.empty()) {
        return positionScript_.run(
            *shard.commands, std::move(keys), std::move(args),
            [decodePosition, shardName = shard.options.name, done = std::move(done)](RedisResult result) {
                auto* reply = std::get_if<RedisReply>(&result);
                auto position = reply != nullptr ? decodePosition(*reply) : std::nullopt;
                if (!position) return done(errorOf(result, shardName));
                done(HistoryPage{std::move(*position), {}});
            });
    }
    // What was queued answers in EXEC's reply; a command Redis refused to queue (LOADING, OOM, an
    // ACL) answers here, and makes EXEC answer EXECABORT: that refusal is the error to report.
    auto refused = std::make_shared<std::optional<RedisReply>>();
    auto queued = [refused](RedisResult result) {
        if (auto* reply = std::get_if<RedisReply>(&result); reply && reply->isError() && !*refused) *refused = *reply;
    };
    shard.commands->command({"MULTI"}, queued);
    shard.commands->command(positionScript_.command(std::move(keys), std::move(args), cached), queued);
    shard.commands->command(page, queued);
    shard.commands->command(
        {"EXEC"}, [this, channel, page, cached, decodePosition, refused, shardName = shard.options.name,
                   done = std::move(done)](RedisResult result) mutable {
            auto* reply = std::get_if<RedisReply>(&result);
            if (reply != nullptr && reply->isError() && *refused) result = **refused;
            reply = std::get_if<RedisReply>(&result);
            bool complete = reply != nullptr && reply->isArray() && reply->elements.size() == 2;
            // Redis forgot the script (a restart, a failover): EVAL caches it again.
            bool noScript = complete ? reply->elements[0].isErrorWith("NOSCRIPT")
                                     : reply != nullptr && reply->isErrorWith("NOSCRIPT");
            if (noScript && cached) return readPage(channel, std::move(page), false, std::move(done));
            auto position = complete ? decodePosition(reply->elements[0]) : std::nullopt;
            auto publications = position ? decodeEntries(channel, position->epoch, reply->elements[1]) : std::nullopt;
            if (!publications) {
                if (complete && reply->elements[0].isError()) return done(errorOf(reply->elements[0], shardName));
                return done(errorOf(result, shardName));
            }
            done(HistoryPage{std::move(*position), std::move(*publications)});
        });
}

// ---- for the other stores ----------------------------------------------------------------------

void RedisBroker::withShardOf(std::string_view channel, ShardTask task) {
    if (stopped_) return task(stopping());
    run([this, channel = std::string(channel), task = std::move(task)] {
        if (shards_.empty()) return task(stopping());
        Shard& shard = shardFor(channel);
        if (!shard.commands->ready()) return task(unavailable(shard));
        task(shard.commands.get());
    });
}

void RedisBroker::withEachShard(ShardTask task) {
    if (stopped_) return task(stopping());
    run([this, task = std::move(task)] {
        if (shards_.empty()) return task(stopping());
        for (Shard& shard : shards_) {
            if (shard.commands->ready())
                task(shard.commands.get());
            else
                task(unavailable(shard));
        }
    });
}

std::chrono::seconds RedisBroker::metaTtlFor(const HistoryPolicy& history) const {
    // The position outlives the history it numbers: an inbox kept longer than metaTtl must not
    // see its offsets restart under it.
    auto historyTtl = std::chrono::ceil<std::chrono::seconds>(history.ttl) + std::chrono::seconds(1);
    return history.size > 0 ? std::max(options_.metaTtl, historyTtl) : options_.metaTtl;
}

void RedisBroker::trimHistory(std::string_view channel, StreamPosition upTo) {
    withShardOf(channel, [this, keys = std::vector<std::string>{keys_.stream(channel), keys_.meta(channel)},
                          upTo = std::move(upTo)](auto shard) mutable {
        auto* commands = std::get_if<RedisConnection*>(&shard);
        if (commands == nullptr) return;  // a later trim covers it
        trimScript_.run(**commands, std::move(keys), {std::to_string(upTo.offset), std::move(upTo.epoch)},
                        [](RedisResult) {});
    });
}

void RedisBroker::publishEvent(std::string_view channel, std::string frame) {
    withShardOf(channel, [pubsub = keys_.pubsub(channel), frame = std::move(frame)](auto shard) mutable {
        auto* commands = std::get_if<RedisConnection*>(&shard);
        if (commands == nullptr) return;  // at most once
        (*commands)->command({"PUBLISH", std::move(pubsub), std::string(kEventPrefix) + frame}, [](RedisResult) {});
    });
}

// ---- between nodes ----------------------------------------------------------------------------

void RedisBroker::publishControl(std::string_view target, std::string payload) {
    if (stopped_) return;
    run([this, channel = target.empty() ? keys_.controlAll() : keys_.controlNode(target),
         payload = std::move(payload)]() mutable {
        // At most once: the callers have their own timeouts.
        if (shards_.empty() || !shards_.front().commands->ready()) return;
        Shard& shard = shards_.front();
        shard.commands->command({"PUBLISH", std::move(channel), std::move(payload)}, [](RedisResult) {});
    });
}

void RedisBroker::heartbeat(NodeHeartbeat heartbeat, std::chrono::milliseconds ttl) {
    if (stopped_) return;
    run([this, heartbeat = std::move(heartbeat), ttl] {
        if (shards_.empty() || !shards_.front().commands->ready()) return;
        Shard& shard = shards_.front();
        std::int64_t now = clock_();
        heartbeatScript_.run(*shard.commands, {keys_.nodes(), keys_.nodesExpiry()},
                             {heartbeat.name, heartbeat.info, std::to_string(now + ttl.count()), std::to_string(now)},
                             [](RedisResult) {});
    });
}

void RedisBroker::nodes(NodesCompletion done) {
    if (stopped_) return done(stopping());
    run([this, done = std::move(done)]() mutable {
        if (shards_.empty()) return done(stopping());
        Shard& shard = shards_.front();
        if (!shard.commands->ready()) return done(unavailable(shard));
        nodesScript_.run(*shard.commands, {keys_.nodes(), keys_.nodesExpiry()}, {std::to_string(clock_())},
                         [shardName = shard.options.name, done = std::move(done)](RedisResult result) {
                             auto* reply = std::get_if<RedisReply>(&result);
                             if (reply == nullptr || !reply->isArray() || reply->elements.size() % 2 != 0)
                                 return done(errorOf(result, shardName));
                             std::vector<NodeHeartbeat> nodes;
                             for (std::size_t i = 0; i + 1 < reply->elements.size(); i += 2) {
                                 auto name = reply->elements[i].asString();
                                 auto info = reply->elements[i + 1].asString();
                                 if (!name || !info) return done(errorOf(result, shardName));
                                 nodes.push_back(NodeHeartbeat{std::string(*name), std::string(*info)});
                             }
                             std::sort(nodes.begin(), nodes.end(),
                                       [](const auto& a, const auto& b) { return a.name < b.name; });
                             done(std::move(nodes));
                         });
    });
}

}  // namespace wspush
