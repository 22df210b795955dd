#include "node/local_hub.h"

#include <algorithm>
#include <cassert>

namespace wspush {

bool LocalHub::contains(std::string_view channel) const {
    return channels_.find(channel) != channels_.end();
}

void LocalHub::add(std::string_view channel, Subscriber* subscriber) {
    assert(!delivering_);
    auto it = channels_.find(channel);
    if (it == channels_.end()) it = channels_.emplace(std::string(channel), std::vector<Entry>{}).first;
    Entry entry{subscriber, 0, {}, std::make_unique<Buffered>(), false};
    it->second.push_back(std::move(entry));
}

LocalHub::Entry* LocalHub::find(std::string_view channel, const Subscriber* subscriber) {
    auto it = channels_.find(channel);
    if (it == channels_.end()) return nullptr;
    // A subscriber names its position right after adding itself, so search from the back.
    auto& entries = it->second;
    for (auto entry = entries.rbegin(); entry != entries.rend(); ++entry)
        if (entry->subscriber == subscriber) return &*entry;
    return nullptr;
}

void LocalHub::goLive(std::string_view channel, Subscriber* subscriber, const StreamPosition& position) {
    assert(!delivering_);
    Entry* entry = find(channel, subscriber);
    if (entry == nullptr || !entry->buffer) return;
    auto buffered = std::move(entry->buffer);
    entry->offset = position.offset;
    entry->epoch = position.epoch;
    if (entry->lost) return subscriber->lost(std::string(channel));  // the buffer overflowed
    const std::string& name = channels_.find(channel)->first;
    // Delivering may not add or remove entries (Subscriber::deliver), so `entry` stays valid.
    delivering_ = true;
    for (const auto& [publication, frame] : *buffered) deliverTo(name, *entry, publication, frame);
    delivering_ = false;
}

std::optional<StreamPosition> LocalHub::positionOf(std::string_view channel, const Subscriber* subscriber) const {
    auto it = channels_.find(channel);
    if (it == channels_.end()) return std::nullopt;
    for (const Entry& entry : it->second)
        if (entry.subscriber == subscriber) {
            if (entry.buffer || entry.lost) return std::nullopt;
            return StreamPosition{entry.offset, entry.epoch};
        }
    return std::nullopt;
}

bool LocalHub::remove(std::string_view channel, Subscriber* subscriber) {
    assert(!delivering_);
    auto it = channels_.find(channel);
    if (it == channels_.end()) return false;
    auto& entries = it->second;
    auto found =
        std::find_if(entries.begin(), entries.end(), [&](const Entry& e) { return e.subscriber == subscriber; });
    if (found == entries.end()) return false;
    if (found != entries.end() - 1) *found = std::move(entries.back());  // order among subscribers carries no meaning
    entries.pop_back();
    if (!entries.empty()) return false;
    channels_.erase(it);
    return true;
}

void LocalHub::markLost(const std::string& channel, Entry& entry) {
    entry.lost = true;
    entry.buffer.reset();
    entry.subscriber->lost(channel);
}

bool LocalHub::deliverTo(const std::string& channel, Entry& entry, const PublicationPtr& publication,
                         const SharedFrame& frame) {
    if (entry.lost) return false;
    if (publication->epoch != entry.epoch) {
        markLost(channel, entry);
        return false;
    }
    if (publication->offset <= entry.offset) return false;  // delivered already
    if (publication->offset != entry.offset + 1) {
        markLost(channel, entry);
        return false;
    }
    entry.offset = publication->offset;
    entry.subscriber->deliver(publication, frame);
    return true;
}

std::size_t LocalHub::deliver(const PublicationPtr& publication, const SharedFrame& frame) {
    auto it = channels_.find(publication->channel);
    if (it == channels_.end()) return 0;  // the last subscriber left while this was in flight
    delivering_ = true;
    std::size_t delivered = 0;
    if (publication->event) {
        // Outside the stream: to whoever is live now, never buffered, never a gap.
        for (Entry& entry : it->second) {
            if (entry.buffer || entry.lost) continue;
            entry.subscriber->deliver(publication, frame);
            ++delivered;
        }
        delivering_ = false;
        return delivered;
    }
    for (Entry& entry : it->second) {
        if (entry.buffer) {
            if (entry.lost) continue;
            if (entry.buffer->size() < kMaxBuffered) {
                entry.buffer->emplace_back(publication, frame);
            } else {
                entry.lost = true;  // told at goLive, when the subscriber can act on it
                Buffered().swap(*entry.buffer);
            }
            continue;
        }
        if (deliverTo(it->first, entry, publication, frame)) ++delivered;
    }
    delivering_ = false;
    return delivered;
}

}  // namespace wspush
