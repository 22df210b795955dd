#include "engine/memory/memory_broker.h"

#include <algorithm>
#include <cassert>
#include <memory>

namespace wspush {

namespace {

// What history and idempotency keep of a publication: never the report, which would hold the
// publisher's waiting request alive for as long as the copy lives.
PublicationPtr withoutReport(const std::shared_ptr<Publication>& publication) {
    if (!publication->report) return publication;
    auto copy = std::make_shared<Publication>(*publication);
    copy->report = nullptr;
    return copy;
}

std::size_t bytesOf(const Publication& publication) {
    return sizeof(Publication) + publication.data.size() + publication.channel.size() + publication.mid.size() +
           publication.epoch.size();
}

std::size_t dataBytesOf(const Publication& publication) {
    return publication.data.size() + publication.mid.size();
}

}  // namespace

MemoryBroker::MemoryBroker(std::string instanceId, Clock clock)
    : instanceId_(std::move(instanceId)), clock_(std::move(clock)) {}

MemoryBroker::Shard& MemoryBroker::shardOf(std::string_view channel) {
    return shards_[StringHash{}(channel) % kShards];
}

MemoryBroker::Stream& MemoryBroker::streamLocked(Shard& shard, std::string_view channel) {
    auto it = shard.streams.find(channel);
    if (it != shard.streams.end()) {
        Stream& stream = it->second;
        if (!stream.subscribed) shard.idle.splice(shard.idle.end(), shard.idle, stream.idle);
        return stream;
    }
    Stream stream;
    stream.epoch = instanceId_ + "." + std::to_string(nextEpoch_.fetch_add(1, std::memory_order_relaxed));
    it = shard.streams.emplace(std::string(channel), std::move(stream)).first;
    streams_.fetch_add(1, std::memory_order_relaxed);
    makeIdleLocked(shard, it->second, it->first);
    return it->second;
}

void MemoryBroker::makeIdleLocked(Shard& shard, Stream& stream, const std::string& name) {
    stream.subscribed = false;
    stream.idle = shard.idle.insert(shard.idle.end(), name);
    // The stream just made idle is the newest, so it is never the one evicted here.
    if (shard.idle.size() > kMaxIdleStreamsPerShard) evictIdleLocked(shard);
}

void MemoryBroker::evictIdleLocked(Shard& shard) {
    auto it = shard.streams.find(shard.idle.front());
    assert(it != shard.streams.end() && !it->second.subscribed);
    forgetHistoryLocked(it->second);
    shard.idle.pop_front();
    shard.streams.erase(it);
    streams_.fetch_sub(1, std::memory_order_relaxed);
}

void MemoryBroker::appendHistoryLocked(Stream& stream, const PublicationPtr& publication, const HistoryPolicy& policy) {
    stream.historyTtlMs = policy.ttl.count();
    stream.maxDataBytes = policy.maxBytes;
    stream.history.push_back(publication);
    std::size_t bytes = bytesOf(*publication);
    stream.historyBytes += bytes;
    stream.dataBytes += dataBytesOf(*publication);
    historyPublications_.fetch_add(1, std::memory_order_relaxed);
    historyBytes_.fetch_add(bytes, std::memory_order_relaxed);
    trimHistoryLocked(stream, policy.size, publication->timestampMs);
}

void MemoryBroker::trimHistoryLocked(Stream& stream, std::size_t size, std::int64_t now) {
    popOldestLocked(stream, [&](const Publication& oldest) {
        bool overBytes = stream.maxDataBytes > 0 && stream.history.size() > 1 && stream.dataBytes > stream.maxDataBytes;
        return stream.history.size() > size || overBytes || oldest.timestampMs + stream.historyTtlMs <= now;
    });
}

template <class Predicate>
void MemoryBroker::popOldestLocked(Stream& stream, Predicate&& shouldGo) {
    std::uint64_t publications = 0;
    std::size_t bytes = 0;
    while (!stream.history.empty() && shouldGo(*stream.history.front())) {
        bytes += bytesOf(*stream.history.front());
        stream.dataBytes -= dataBytesOf(*stream.history.front());
        ++publications;
        stream.history.pop_front();
    }
    stream.historyBytes -= bytes;
    historyPublications_.fetch_sub(publications, std::memory_order_relaxed);
    historyBytes_.fetch_sub(bytes, std::memory_order_relaxed);
}

void MemoryBroker::forgetHistoryLocked(Stream& stream) {
    historyPublications_.fetch_sub(stream.history.size(), std::memory_order_relaxed);
    historyBytes_.fetch_sub(stream.historyBytes, std::memory_order_relaxed);
    stream.history.clear();
    stream.historyBytes = 0;
    stream.dataBytes = 0;
}

const MemoryBroker::RememberedKey* MemoryBroker::rememberedLocked(Shard& shard, const std::string& key,
                                                                  std::int64_t now) {
    auto it = shard.keys.find(key);
    if (it == shard.keys.end() || it->second.expiresAtMs <= now) return nullptr;
    return &it->second;
}

void MemoryBroker::rememberLocked(Shard& shard, std::string key, const Publication& publication,
                                  std::int64_t expiresAtMs, std::int64_t now) {
    // Keys leave in insertion order: expired ones at the front, and past the cap the oldest.
    while (!shard.keyOrder.empty()) {
        auto front = shard.keys.find(shard.keyOrder.front());
        bool stale = front == shard.keys.end() || front->second.expiresAtMs <= now;
        if (!stale && shard.keyOrder.size() < kMaxIdempotencyKeysPerShard) break;
        if (front != shard.keys.end()) shard.keys.erase(front);
        shard.keyOrder.pop_front();
    }
    auto first = std::make_shared<Publication>();
    first->channel = publication.channel;
    first->offset = publication.offset;
    first->epoch = publication.epoch;
    first->mid = publication.mid;
    first->timestampMs = publication.timestampMs;
    first->qos = publication.qos;
    shard.keys.insert_or_assign(key, RememberedKey{std::move(first), expiresAtMs});
    shard.keyOrder.push_back(std::move(key));
}

void MemoryBroker::subscribe(std::string_view channel, SubscribeCompletion done) {
    {
        Shard& shard = shardOf(channel);
        std::lock_guard lock(shard.mutex);
        Stream& stream = streamLocked(shard, channel);
        if (!stream.subscribed) {
            shard.idle.erase(stream.idle);
            stream.subscribed = true;
        }
    }
    done(std::nullopt);  // one process: every later publication reaches the handler
}

void MemoryBroker::unsubscribe(std::string_view channel) {
    Shard& shard = shardOf(channel);
    std::lock_guard lock(shard.mutex);
    auto it = shard.streams.find(channel);
    if (it == shard.streams.end() || !it->second.subscribed) return;
    makeIdleLocked(shard, it->second, it->first);
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
    std::int64_t now = clock_();
    publication->timestampMs = now;
    std::string key;
    if (!request.idempotencyKey.empty()) key = publication->channel + '\n' + request.idempotencyKey;

    Shard& shard = shardOf(publication->channel);
    {
        std::unique_lock lock(shard.mutex);
        if (!key.empty()) {
            if (const RememberedKey* first = rememberedLocked(shard, key, now)) {
                PublicationPtr earlier = first->publication;
                lock.unlock();
                // Nobody gets it again: the report, never given a part, completes when released.
                return done(Published{std::move(earlier), true});
            }
        }
        Stream& stream = streamLocked(shard, publication->channel);
        publication->offset = ++stream.offset;
        publication->epoch = stream.epoch;
        if (request.history.size > 0)
            appendHistoryLocked(stream, withoutReport(publication), request.history);
        else if (!stream.history.empty())
            forgetHistoryLocked(stream);  // the namespace stopped keeping history
        if (!key.empty())
            rememberLocked(shard, std::move(key), *publication, now + request.idempotencyWindow.count(), now);
        handler_->onPublication(publication);
    }
    done(Published{std::move(publication), false});
}

void MemoryBroker::publishEvent(std::string_view channel, std::string frame) {
    auto event = std::make_shared<Publication>();
    event->channel = std::string(channel);
    event->data = std::move(frame);
    event->event = true;
    handler_->onPublication(event);  // the router drops it when nobody here subscribes
}

void MemoryBroker::trimHistory(std::string_view channel, StreamPosition upTo) {
    Shard& shard = shardOf(channel);
    std::lock_guard lock(shard.mutex);
    auto it = shard.streams.find(channel);
    if (it == shard.streams.end() || it->second.epoch != upTo.epoch) return;
    popOldestLocked(it->second, [&](const Publication& oldest) { return oldest.offset <= upTo.offset; });
}

void MemoryBroker::history(std::string_view channel, HistoryQuery query, HistoryCompletion done) {
    HistoryPage page;
    {
        Shard& shard = shardOf(channel);
        std::lock_guard lock(shard.mutex);
        Stream& stream = streamLocked(shard, channel);
        trimHistoryLocked(stream, stream.history.size(), clock_());
        page.position = StreamPosition{stream.offset, stream.epoch};
        const auto& kept = stream.history;
        if (query.limit > 0 && !kept.empty()) {
            std::uint64_t oldest = kept.front()->offset;  // kept holds oldest..stream.offset, contiguous
            std::uint64_t newest = stream.offset;
            if (!query.reverse) {
                std::uint64_t from = std::max(query.since + 1, oldest);
                for (std::uint64_t offset = from; offset <= newest && page.publications.size() < query.limit; ++offset)
                    page.publications.push_back(kept[offset - oldest]);
            } else {
                std::uint64_t from = query.since == 0 ? newest : std::min(query.since - 1, newest);
                for (std::uint64_t offset = from;
                     offset >= oldest && offset > 0 && page.publications.size() < query.limit; --offset)
                    page.publications.push_back(kept[offset - oldest]);
            }
        }
    }
    done(std::move(page));
}

EngineStats MemoryBroker::stats() const {
    EngineStats stats;
    stats.historyPublications = historyPublications_.load(std::memory_order_relaxed);
    stats.historyBytes = historyBytes_.load(std::memory_order_relaxed);
    stats.streams = streams_.load(std::memory_order_relaxed);
    return stats;
}

void MemoryBroker::publishControl(std::string_view target, std::string payload) {
    if (target.empty() || target == nodeName_) handler_->onControl(payload);
}

void MemoryBroker::heartbeat(NodeHeartbeat heartbeat, std::chrono::milliseconds) {
    std::lock_guard lock(heartbeatMutex_);
    heartbeat_ = std::move(heartbeat);
}

void MemoryBroker::nodes(NodesCompletion done) {
    std::vector<NodeHeartbeat> nodes;
    {
        std::lock_guard lock(heartbeatMutex_);
        if (heartbeat_) nodes.push_back(*heartbeat_);
    }
    done(std::move(nodes));
}

}  // namespace wspush
