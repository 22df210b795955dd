// Routes each publication to the event loops that have subscribers of its channel.
//
// The router keeps, per channel, a 64-bit mask of the loops with subscribers and the node's
// subscriber count. Both change only when a connection subscribes or unsubscribes; a publication
// reads its mask once, encodes its frame once, and appends it to the inbox of each loop in the
// mask (EventLoop::deliverSoon), which then writes the shared frame to its local subscribers
// without any lock (LocalHub). Only Node changes the counts (its per-channel interest lock).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/string_hash.h"
#include "node/event_loop.h"
#include "wspush/broker.h"

namespace wspush {

class ChannelRouter {
public:
    void attach(std::vector<EventLoop*> loops) { loops_ = std::move(loops); }

    // Only Node calls these, under its per-channel interest lock.
    // A subscriber of `channel` appeared on `loop`; `firstOnLoop` when the loop had none before.
    // Returns true when it is the node's first subscriber of the channel.
    bool addSubscriber(std::string_view channel, unsigned loop, bool firstOnLoop);
    // Returns true when the node has no subscriber of the channel left.
    bool removeSubscriber(std::string_view channel, unsigned loop, bool lastOnLoop);

    // From the engine (through Node), on any thread, in offset order per channel.
    void onPublication(const PublicationPtr& publication);

    // Channels with subscribers on this node and their subscriber counts, sorted by name.
    std::vector<std::pair<std::string, std::uint64_t>> channels() const;
    std::uint64_t channelCount() const;
    // Channel subscriptions on this node (the personal "$user:" channels included).
    std::uint64_t subscriptionCount() const;
    // Publications received (join/leave events excepted), by QoS 0, 1, 2.
    std::array<std::uint64_t, 3> publicationsByQos() const {
        std::array<std::uint64_t, 3> counts{};
        for (std::size_t qos = 0; qos < counts.size(); ++qos)
            counts[qos] = publications_[qos].load(std::memory_order_relaxed);
        return counts;
    }
    std::uint64_t publications() const {
        auto counts = publicationsByQos();
        return counts[0] + counts[1] + counts[2];
    }

private:
    struct Interest {
        std::uint64_t loopMask = 0;
        std::uint64_t subscribers = 0;
    };
    struct Shard {
        mutable std::mutex mutex;
        std::unordered_map<std::string, Interest, StringHash, std::equal_to<>> channels;
    };
    static constexpr std::size_t kShards = 64;
    Shard& shardOf(std::string_view channel) { return shards_[StringHash{}(channel) % kShards]; }

    std::vector<EventLoop*> loops_;
    std::array<Shard, kShards> shards_;
    std::array<std::atomic<std::uint64_t>, 3> publications_{};
};

}  // namespace wspush
