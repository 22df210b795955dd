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
    publications_.fetch_add(1, std::memory_order_relaxed);
    std::uint64_t mask = 0;
    {
        Shard& shard = shardOf(publication->channel);
        std::lock_guard lock(shard.mutex);
        auto it = shard.channels.find(publication->channel);
        if (it != shard.channels.end()) mask = it->second.loopMask;
    }
    if (publication->report) publication->report->expectLoops(static_cast<std::uint64_t>(std::popcount(mask)));
    if (mask == 0) return;  // nobody here listens: nothing to encode
    auto frame = std::make_shared<const std::string>(encodeMessage(*publication));
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

}  // namespace wspush
