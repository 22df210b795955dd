// The in-memory engine: one node, offsets and epochs kept in this process.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>

#include "wspush/broker.h"

namespace wspush {

class MemoryBroker final : public Broker {
public:
    using Clock = std::function<std::int64_t()>;  // Unix milliseconds; injected for tests

    // `instanceId` prefixes every mid and seeds epochs, so it must differ between runs
    // (a restarted node starts new epochs: its offsets begin again at 1).
    MemoryBroker(std::string instanceId, Clock clock);

    const char* name() const override { return "memory"; }
    void setEventHandler(BrokerEventHandler* handler) override { handler_ = handler; }
    void publish(PublishRequest request, PublishCompletion done) override;
    void subscribe(std::string_view channel) override;
    void unsubscribe(std::string_view channel) override;
    void position(std::string_view channel, PositionCompletion done) override;

private:
    // A channel's stream is kept while the node has subscribers of it. Streams nobody subscribes
    // to (published into, or just unsubscribed) sit in their shard's idle list, oldest first, and
    // the oldest is forgotten past kMaxIdlePerShard: memory is bounded by live channels, not by
    // every name ever used. A forgotten stream starts a new epoch if it comes back.
    struct Stream {
        std::uint64_t offset = 0;
        std::string epoch;
        bool subscribed = false;
        std::list<std::string>::iterator idle;  // valid while !subscribed
    };
    struct NameHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    // Channels are sharded so that publishers of different channels rarely meet on one mutex.
    // The mutex is held while the handler runs so that, per channel, deliveries leave in offset
    // order; the handler only enqueues, so the critical section stays short.
    struct Shard {
        std::mutex mutex;
        std::unordered_map<std::string, Stream, NameHash, std::equal_to<>> streams;
        std::list<std::string> idle;  // unsubscribed streams, least recently used first
    };
    static constexpr std::size_t kShards = 64;
    static constexpr std::size_t kMaxIdlePerShard = 1024;

    Shard& shardOf(std::string_view channel);
    Stream& streamLocked(Shard& shard, std::string_view channel);
    void touchIdleLocked(Shard& shard, Stream& stream);

    std::string instanceId_;
    Clock clock_;
    BrokerEventHandler* handler_ = nullptr;
    std::atomic<std::uint64_t> nextMid_{1};
    std::atomic<std::uint64_t> nextEpoch_{1};
    std::array<Shard, kShards> shards_;
};

}  // namespace wspush
