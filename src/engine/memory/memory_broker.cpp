#include "engine/memory/memory_broker.h"

#include <cassert>
#include <memory>

namespace wspush {

MemoryBroker::MemoryBroker(std::string instanceId, Clock clock)
    : instanceId_(std::move(instanceId)), clock_(std::move(clock)) {}

MemoryBroker::Shard& MemoryBroker::shardOf(std::string_view channel) {
    return shards_[NameHash{}(channel) % kShards];
}

MemoryBroker::Stream& MemoryBroker::streamLocked(Shard& shard, std::string_view channel) {
    auto it = shard.streams.find(channel);
    if (it == shard.streams.end()) {
        Stream stream;
        stream.epoch = instanceId_ + "." + std::to_string(nextEpoch_.fetch_add(1, std::memory_order_relaxed));
        it = shard.streams.emplace(std::string(channel), std::move(stream)).first;
        it->second.idle = shard.idle.insert(shard.idle.end(), it->first);
        if (shard.idle.size() > kMaxIdlePerShard) {
            shard.streams.erase(shard.idle.front());
            shard.idle.pop_front();
        }
    } else {
        touchIdleLocked(shard, it->second);
    }
    return it->second;
}

void MemoryBroker::touchIdleLocked(Shard& shard, Stream& stream) {
    if (!stream.subscribed) shard.idle.splice(shard.idle.end(), shard.idle, stream.idle);
}

void MemoryBroker::subscribe(std::string_view channel) {
    Shard& shard = shardOf(channel);
    std::lock_guard lock(shard.mutex);
    Stream& stream = streamLocked(shard, channel);
    if (stream.subscribed) return;
    shard.idle.erase(stream.idle);
    stream.subscribed = true;
}

void MemoryBroker::unsubscribe(std::string_view channel) {
    Shard& shard = shardOf(channel);
    std::lock_guard lock(shard.mutex);
    auto it = shard.streams.find(channel);
    if (it == shard.streams.end() || !it->second.subscribed) return;
    it->second.subscribed = false;
    it->second.idle = shard.idle.insert(shard.idle.end(), it->first);
    if (shard.idle.size() > kMaxIdlePerShard) {
        shard.streams.erase(shard.idle.front());
        shard.idle.pop_front();
    }
}

void MemoryBroker::publish(PublishRequest request, PublishCompletion done) {
    assert(handler_ != nullptr);
    auto publication = std::make_shared<Publication>();
    publication->channel = std::move(request.channel);
    publication->data = std::move(request.data);
    publication->qos = request.qos;
    publication->report = std::move(request.report);
    publication->mid = !request.mid.empty()
                           ? std::move(request.mid)
                           : instanceId_ + "-" + std::to_string(nextMid_.fetch_add(1, std::memory_order_relaxed));
    publication->timestampMs = clock_();
    Shard& shard = shardOf(publication->channel);
    {
        std::lock_guard lock(shard.mutex);
        Stream& stream = streamLocked(shard, publication->channel);
        publication->offset = ++stream.offset;
        publication->epoch = stream.epoch;
        handler_->onPublication(publication);
    }
    done(PublicationPtr(std::move(publication)));
}

void MemoryBroker::position(std::string_view channel, PositionCompletion done) {
    StreamPosition position;
    {
        Shard& shard = shardOf(channel);
        std::lock_guard lock(shard.mutex);
        const Stream& stream = streamLocked(shard, channel);
        position = StreamPosition{stream.offset, stream.epoch};
    }
    done(std::move(position));
}

}  // namespace wspush
