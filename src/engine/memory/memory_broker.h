// The in-memory engine: one node; offsets, epochs, history and idempotency keys kept in this
// process (docs/configuration.md, "History and memory"). Everything is lost with the process: a restarted node starts
// new epochs, so its clients are told that nothing can be recovered rather than shown a silent gap.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "base/string_hash.h"
#include "wspush/broker.h"

namespace wspush {

class MemoryBroker final : public Broker {
public:
    using Clock = std::function<std::int64_t()>;  // Unix milliseconds; injected for tests

    // Past these, the least recently used idle stream (and its history) is forgotten first, and
    // the oldest idempotency key: memory is bounded by live channels, not by every name ever used.
    static constexpr std::size_t kShards = 64;
    static constexpr std::size_t kMaxIdleStreamsPerShard = 1024;
    static constexpr std::size_t kMaxIdempotencyKeysPerShard = 4096;

    // `instanceId` prefixes every mid and seeds epochs, so it must differ between runs
    // (a restarted node starts new epochs: its offsets begin again at 1).
    MemoryBroker(std::string instanceId, Clock clock);

    const char* name() const override { return "memory"; }
    bool clustered() const override { return false; }
    void setEventHandler(BrokerEventHandler* handler, std::string nodeName) override {
        handler_ = handler;
        nodeName_ = std::move(nodeName);
    }
    void publish(PublishRequest request, PublishCompletion done) override;
    void publishEvent(std::string_view channel, std::string frame) override;
    void trimHistory(std::string_view channel, StreamPosition upTo) override;
    void subscribe(std::string_view channel, SubscribeCompletion done) override;
    void unsubscribe(std::string_view channel) override;
    void history(std::string_view channel, HistoryQuery query, HistoryCompletion done) override;
    EngineStats stats() const override;
    std::vector<EngineShardHealth> health() const override { return {}; }
    // One node: a control message for this node or for every node is handed over at once.
    void publishControl(std::string_view target, std::string payload) override;
    void heartbeat(NodeHeartbeat heartbeat, std::chrono::milliseconds ttl) override;
    void nodes(NodesCompletion done) override;

private:
    // A channel's stream. Kept while the node subscribes to it; otherwise (published into, read,
    // or just unsubscribed) it sits on its shard's idle list, least recently used first, until
    // kMaxIdleStreamsPerShard newer idle streams push it out. Its history is contiguous and ends
    // at `offset`: it is only ever trimmed from the front (size, TTL) or cleared whole.
    struct Stream {
        std::uint64_t offset = 0;
        std::string epoch;
        bool subscribed = false;
        std::list<std::string>::iterator idle;  // valid while !subscribed
        std::deque<PublicationPtr> history;
        std::size_t historyBytes = 0;
        std::int64_t historyTtlMs = 0;
        std::size_t dataBytes = 0;  // of the kept publications' data and mids, for maxBytes
        std::size_t maxDataBytes = 0;
    };
    struct RememberedKey {
        PublicationPtr publication;  // without data or report
        std::int64_t expiresAtMs = 0;
    };
    // Channels are sharded so that publishers of different channels rarely meet on one mutex.
    // The mutex is held while the handler runs so that, per channel, deliveries leave in offset
    // order; the handler only enqueues, so the critical section stays short.
    struct Shard {
        std::mutex mutex;
        std::unordered_map<std::string, Stream, StringHash, std::equal_to<>> streams;
        std::list<std::string> idle;  // unsubscribed streams, least recently used first
        // channel + '\n' + key -> the first publication; `keyOrder` is insertion order, for expiry.
        std::unordered_map<std::string, RememberedKey, StringHash, std::equal_to<>> keys;
        std::deque<std::unordered_map<std::string, RememberedKey>::key_type> keyOrder;
    };

    Shard& shardOf(std::string_view channel);
    Stream& streamLocked(Shard& shard, std::string_view channel);
    void makeIdleLocked(Shard& shard, Stream& stream, const std::string& name);
    void evictIdleLocked(Shard& shard);
    void appendHistoryLocked(Stream& stream, const PublicationPtr& publication, const HistoryPolicy& policy);
    // Drops the stream's oldest publications while `shouldGo(oldest)` holds, keeping the counts.
    template <class Predicate>
    void popOldestLocked(Stream& stream, Predicate&& shouldGo);
    void trimHistoryLocked(Stream& stream, std::size_t size, std::int64_t now);
    void forgetHistoryLocked(Stream& stream);
    const RememberedKey* rememberedLocked(Shard& shard, const std::string& key, std::int64_t now);
    void rememberLocked(Shard& shard, std::string key, const Publication& publication, std::int64_t expiresAtMs,
                        std::int64_t now);

    std::string instanceId_;
    Clock clock_;
    BrokerEventHandler* handler_ = nullptr;
    std::string nodeName_;
    std::mutex heartbeatMutex_;
    std::optional<NodeHeartbeat> heartbeat_;
    std::atomic<std::uint64_t> nextMid_{1};
    std::atomic<std::uint64_t> nextEpoch_{1};
    std::atomic<std::uint64_t> historyPublications_{0};
    std::atomic<std::uint64_t> historyBytes_{0};
    std::atomic<std::uint64_t> streams_{0};
    std::array<Shard, kShards> shards_;
};

}  // namespace wspush
