#include "node/local_presence.h"

namespace wspush {

void LocalPresence::join(const std::string& channel, PresenceEntry entry) {
    store_->add(channel, {entry}, ttl_);
    auto [it, added] = channels_[channel].insert_or_assign(entry.client, std::move(entry));
    if (added) ++entries_;
}

void LocalPresence::leave(const std::string& channel, const std::string& client) {
    auto it = channels_.find(channel);
    if (it == channels_.end() || it->second.erase(client) == 0) return;
    --entries_;
    if (it->second.empty()) channels_.erase(it);
    store_->remove(channel, {client});
}

void LocalPresence::refresh() {
    for (const auto& [channel, clients] : channels_) {
        std::vector<PresenceEntry> entries;
        entries.reserve(clients.size());
        for (const auto& [client, entry] : clients) entries.push_back(entry);
        store_->add(channel, std::move(entries), ttl_);
    }
}

}  // namespace wspush
