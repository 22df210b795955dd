#include "node/local_presence.h"

namespace wspush {

bool LocalPresence::join(const std::string& channel, PresenceEntry entry) {
    store_->add(channel, {entry}, ttl_);
    std::string client = entry.client;
    auto [it, added] = channels_[channel].insert_or_assign(std::move(client), std::move(entry));
    if (added) ++entries_;
    return added;
}

std::optional<PresenceEntry> LocalPresence::leave(const std::string& channel, const std::string& client,
                                                  std::string reason) {
    auto it = channels_.find(channel);
    if (it == channels_.end()) return std::nullopt;
    auto present = it->second.find(client);
    if (present == it->second.end()) return std::nullopt;
    PresenceEntry entry = std::move(present->second);
    it->second.erase(present);
    --entries_;
    if (it->second.empty()) channels_.erase(it);
    store_->remove(channel, {client}, std::move(reason));
    return entry;
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
