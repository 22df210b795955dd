#include "node/channel_router.h"

#include <algorithm>
#include <bit>

#include "protocol/server_message.h"

namespace wspush {

bool ChannelRouter::addSubscriber(std::string_view channel, unsigned loop, bool firstOnLoop) {
    Shard& shard = shardOf(channel);
    std::lock_guard lock(shard.mutex);
    auto it = shard.channels.find(channel);
    bool firstOnNode = it == shard.channels.end();
    if (firstOnNode) it = shard.channels.emplace(std::string(channel), Interest{}).first;
    if (firstOnLoop) it->second.loopMask |= std::uint64_t{1} << loop;
    ++it->second.subscribers;
    return firstOnNode;
}

bool ChannelRouter::removeSubscriber(std::string_view channel, unsigned loop, bool lastOnLoop) {
    Shard& shard = shardOf(channel);
    std::lock_guard lock(shard.mutex);
    auto it = shard.channels.find(channel);
    if (it == shard.channels.end()) return false;
    if (lastOnLoop) it->second.loopMask &= ~(std::uint64_t{1} << loop);
    if (--it->second.subscribers > 0) return false;
    shard.channels.erase(it);
    return true;
}

void ChannelRouter::onPublication(const PublicationPtr& publication) {
    if (!publication->event)
        publications_[static_cast<std::size_t>(std::clamp(publication->qos, 0, 2))].fetch_add(
            1, std::memory_order_relaxed);
    // The mask is read and the deliveries are queued under one lock: a subscriber change that
    // comes after the read also comes after the queueing, and so does everything it posts to a
    // loop. A session moving between loops relies on that (ClientSession::leaveLoop runs on the
    // old loop after the new loop joined the channel): released between read and queueing, a
    // publication could reach the old loop after the session left it and miss the new one.
    Shard& shard = shardOf(publication->channel);
    std::unique_lock lock(shard.mutex);
    std::uint64_t mask = 0;
    auto it = shard.channels.find(publication->channel);
    if (it != shard.channels.end()) mask = it->second.loopMask;
    if (mask == 0) return;  // nobody here listens: nothing to encode, no part to add to a report
    // Adding parts never completes a report (its publish has not completed): safe under the lock.
    if (publication->report) publication->report->addParts(static_cast<std::uint64_t>(std::popcount(mask)));
    auto frame =
        std::make_shared<const std::string>(publication->event ? publication->data : encodeMessage(*publication));
    while (mask != 0) {
        unsigned index = static_cast<unsigned>(std::countr_zero(mask));
        mask &= mask - 1;
        loops_[index]->deliverSoon(publication, frame);
    }
}

std::vector<std::pair<std::string, std::uint64_t>> ChannelRouter::channels() const {
    std::vector<std::pair<std::string, std::uint64_t>> result;
    for (const Shard& shard : shards_) {
        std::lock_guard lock(shard.mutex);
        for (const auto& [name, interest] : shard.channels) result.emplace_back(name, interest.subscribers);
    }
    std::sort(result.begin(), result.end());
    return result;
}

std::uint64_t ChannelRouter::channelCount() const {
    std::uint64_t count = 0;
    for (const Shard& shard : shards_) {
        std::lock_guard lock(shard.mutex);
        count += shard.channels.size();
    }
    return count;
}

std::uint64_t ChannelRouter::subscriptionCount() const {
    std::uint64_t count = 0;
    for (const Shard& shard : shards_) {
        std::lock_guard lock(shard.mutex);
        for (const auto& [name, interest] : shard.channels) count += interest.subscribers;
    }
    return count;
}

}  // namespace wspush
