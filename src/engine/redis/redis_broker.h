// The Redis engine: several nodes share channels through Redis (docs/engines.md). Per channel,
// one Lua script publishes atomically (idempotency, offset, history, PUBLISH); a node receives
// the channels it has subscribers for on one pub/sub connection per shard, checks their positions
// after every pub/sub reconnect and periodically, and repairs a gap from history when it can.
//
// Thread model: the engine lives on the event loop it is started on (loop 0): every hiredis
// context and all per-channel state are that loop's. Broker members are called from any thread
// and post to it; every completion and every handler call runs on it (docs/architecture.md).
// On the loop the engine shares, a publish costs no thread hand-off at all.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/string_hash.h"
#include "engine/redis/redis_connection.h"
#include "engine/redis/redis_keys.h"
#include "engine/redis/redis_script.h"
#include "engine/redis/redis_subscriber.h"
#include "wspush/broker.h"

namespace wspush {

// An address source that always answers `address` (a shard without Sentinel).
inline RedisAddressSource fixedRedisAddress(RedisAddress address) {
    return [address](auto found) { found(address); };
}

// A shard whose master Sentinel names (redis_sentinel.h).
struct RedisSentinelShard {
    std::vector<RedisAddress> sentinels;
    std::string masterName;
};

struct RedisShardOptions {
    std::string name;                            // for logs and /healthz: "host:port", or the Sentinel master name
    RedisAddress address;                        // without `sentinel`
    std::optional<RedisSentinelShard> sentinel;  // set: ask Sentinel for the master, check ROLE
};

struct RedisBrokerOptions {
    std::vector<RedisShardOptions> shards;  // at least one; only ever append (redis_keys.h)
    std::string password;
    int db = 0;
    std::string prefix = "wsp";
    std::chrono::milliseconds connectTimeout{1000};
    std::chrono::milliseconds commandTimeout{2000};
    // How long a channel's position (epoch, top offset) outlives its last publication or read.
    std::chrono::seconds metaTtl{std::chrono::hours(24 * 30)};
    // How often every subscribed channel's position is compared with what this node received.
    std::chrono::milliseconds positionCheckInterval{std::chrono::seconds(40)};
    // How often each pub/sub connection proves it still receives (a probe PUBLISH to itself).
    std::chrono::milliseconds probeInterval{std::chrono::seconds(5)};
};

class RedisBroker final : public Broker {
public:
    using Clock = std::function<std::int64_t()>;  // Unix milliseconds; injected for tests

    // `instanceId` prefixes mids and epochs made here ("<id>-<n>"): it must differ between runs and nodes.
    RedisBroker(RedisBrokerOptions options, std::string instanceId, Clock clock);
    ~RedisBroker() override;

    const char* name() const override { return "redis"; }
    bool clustered() const override { return true; }
    void setEventHandler(BrokerEventHandler* handler, std::string nodeName) override;
    void start(boost::asio::io_context& loop) override;
    void stop() override;

    void publish(PublishRequest request, PublishCompletion done) override;
    void publishEvent(std::string_view channel, std::string frame) override;
    void trimHistory(std::string_view channel, StreamPosition upTo) override;
    void subscribe(std::string_view channel, SubscribeCompletion done) override;
    void unsubscribe(std::string_view channel) override;
    void history(std::string_view channel, HistoryQuery query, HistoryCompletion done) override;
    EngineStats stats() const override;
    std::vector<EngineShardHealth> health() const override;
    void publishControl(std::string_view target, std::string payload) override;
    void heartbeat(NodeHeartbeat heartbeat, std::chrono::milliseconds ttl) override;
    void nodes(NodesCompletion done) override;

    // For the engine's other stores (RedisPresenceStore): runs `task` on the engine's loop with the
    // command connection of `channel`'s shard, ready for a command, or with why there is none.
    using ShardTask = std::function<void(std::variant<RedisConnection*, BrokerError>)>;
    void withShardOf(std::string_view channel, ShardTask task);
    // The same once per shard, for work on every shard's keys (RedisPresenceStore::sweep).
    void withEachShard(ShardTask task);
    // Loads `script` (which outlives the engine) on every command connection that becomes ready,
    // with the engine's own: a script first run right after an EVALSHA of it failed with NOSCRIPT
    // would run after commands sent later. Before start().
    void loadOnReady(const RedisScript& script) { extraScripts_.push_back(&script); }
    const RedisKeys& keys() const { return keys_; }

private:
    // How long a channel's meta hash (its position) lives: at least as long as its history.
    std::chrono::seconds metaTtlFor(const HistoryPolicy& history) const;
    struct Shard {
        RedisShardOptions options;
        std::shared_ptr<RedisConnection> commands;
        std::shared_ptr<RedisSubscriber> subscriber;
        std::shared_ptr<RedisCommandStats> commandStats;  // also counts commands refused while down
    };
    // A publish that completes once this node received it back (the contract: a subscribed
    // node's handler sees a publication before its publish completes).
    struct EchoWait {
        std::uint64_t offset;
        std::string epoch;
        std::chrono::steady_clock::time_point deadline;
        std::function<void()> complete;
    };
    // What this node receives of one channel: on the loop only.
    struct Channel {
        std::uint64_t generation = 0;
        bool confirmed = false;
        std::optional<StreamPosition> delivered;  // the last publication handed to the handler
        bool repairing = false;
        std::vector<Publication> held;  // received while a repair reads history
        std::deque<EchoWait> echoWaits;
    };
    using Channels = std::unordered_map<std::string, Channel, StringHash, std::equal_to<>>;

    Shard& shardFor(std::string_view channel) { return shards_[shardOf(channel, shards_.size())]; }
    std::size_t shardIndexOf(std::string_view channel) const { return shardOf(channel, shards_.size()); }
    // Why `shard` cannot take a command now; the command counts as failed (no reply).
    BrokerError unavailable(const Shard& shard) const;
    template <class Task>
    void run(Task&& task);

    void startOnLoop();
    void stopOnLoop();
    void release();
    BrokerError stopping() const { return BrokerError{ApiErrorCode::Unavailable, "the engine is stopping"}; }
    void onMessage(const std::string& pubsubChannel, const std::string& payload);
    void accept(const std::string& channel, Channel& state, Publication publication);
    void deliver(Channel& state, Publication publication);
    void repair(const std::string& channel, Channel& state, std::uint64_t upTo);
    void checkPositions(std::size_t shard);
    void restartEpoch(const std::string& channel, Channel& state);
    void completeEchoWaits(Channel& state, bool all);
    void scheduleHousekeeping();
    void updateHealth();
    void doPublish(PublishRequest request, PublishCompletion done);
    void doHistory(const std::string& channel, HistoryQuery query, HistoryCompletion done);
    void readPage(const std::string& channel, std::vector<std::string> page, bool cached, HistoryCompletion done);
    std::string nextMid();
    std::string nextEpoch();

    RedisBrokerOptions options_;
    std::string instanceId_;
    Clock clock_;
    RedisKeys keys_;
    BrokerEventHandler* handler_ = nullptr;
    std::string nodeName_;
    RedisScript publishScript_;
    RedisScript trimScript_;
    RedisScript positionScript_;
    RedisScript heartbeatScript_;
    RedisScript nodesScript_;
    std::vector<const RedisScript*> extraScripts_;

    boost::asio::io_context* loop_ = nullptr;
    std::atomic<bool> stopped_{false};
    bool started_ = false;

    // On the loop only. shards_ is empty before start and after stop.
    std::vector<Shard> shards_;
    Channels channels_;
    std::unordered_set<std::string> echoWaiting_;  // channels with a non-empty echoWaits
    std::optional<boost::asio::steady_timer> housekeeping_;
    std::chrono::steady_clock::time_point nextPositionCheck_;
    std::uint64_t nextGeneration_ = 1;
    std::uint64_t nextMid_ = 1;
    std::uint64_t nextEpoch_ = 1;

    mutable std::mutex healthMutex_;
    std::vector<EngineShardHealth> health_;
    // One per shard, made with the engine and read by stats() on any thread; each shard's command
    // connection writes its own.
    std::vector<std::shared_ptr<RedisCommandStats>> commandStats_;
    std::atomic<std::uint64_t> gapsFound_{0};
    std::atomic<std::uint64_t> gapsRepaired_{0};
    std::atomic<std::uint64_t> channelCount_{0};
};

}  // namespace wspush
