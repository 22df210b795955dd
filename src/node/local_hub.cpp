#include "node/local_hub.h"

#include <algorithm>
#include <cassert>

namespace wspush {

bool LocalHub::contains(std::string_view channel) const {
    return channels_.find(channel) != channels_.end();
}

void LocalHub::add(std::string_view channel, Subscriber* subscriber, std::uint64_t sinceOffset) {
    assert(!delivering_);
    auto it = channels_.find(channel);
    if (it == channels_.end()) it = channels_.emplace(std::string(channel), std::vector<Entry>{}).first;
    it->second.push_back(Entry{subscriber, sinceOffset});
}

void LocalHub::setSince(std::string_view channel, Subscriber* subscriber, std::uint64_t sinceOffset) {
    auto it = channels_.find(channel);
    if (it == channels_.end()) return;
    // A subscriber sets its threshold right after adding itself, so search from the back.
    auto& entries = it->second;
    for (auto entry = entries.rbegin(); entry != entries.rend(); ++entry) {
        if (entry->subscriber == subscriber) {
            entry->sinceOffset = sinceOffset;
            return;
        }
    }
}

bool LocalHub::remove(std::string_view channel, Subscriber* subscriber) {
    assert(!delivering_);
    auto it = channels_.find(channel);
    if (it == channels_.end()) return false;
    auto& entries = it->second;
    auto found =
        std::find_if(entries.begin(), entries.end(), [&](const Entry& e) { return e.subscriber == subscriber; });
    if (found == entries.end()) return false;
    *found = entries.back();  // order among subscribers carries no meaning
    entries.pop_back();
    if (!entries.empty()) return false;
    channels_.erase(it);
    return true;
}

std::uint64_t LocalHub::sinceOf(std::string_view channel, const Subscriber* subscriber) const {
    auto it = channels_.find(channel);
    if (it == channels_.end()) return 0;
    for (const Entry& entry : it->second)
        if (entry.subscriber == subscriber) return entry.sinceOffset;
    return 0;
}

void LocalHub::replace(std::string_view channel, const Subscriber* from, Subscriber* to, std::uint64_t sinceOffset) {
    assert(!delivering_);
    auto it = channels_.find(channel);
    if (it == channels_.end()) return;
    for (Entry& entry : it->second) {
        if (entry.subscriber == from) {
            entry.subscriber = to;
            entry.sinceOffset = sinceOffset;
            return;
        }
    }
}

std::size_t LocalHub::deliver(const PublicationPtr& publication, const SharedFrame& frame) {
    auto it = channels_.find(publication->channel);
    if (it == channels_.end()) return 0;  // the last subscriber left while this was in flight
    delivering_ = true;
    std::size_t delivered = 0;
    for (Entry& entry : it->second) {
        if (publication->offset <= entry.sinceOffset) continue;
        entry.sinceOffset = publication->offset;
        entry.subscriber->deliver(publication, frame);
        ++delivered;
    }
    delivering_ = false;
    return delivered;
}

}  // namespace wspush
