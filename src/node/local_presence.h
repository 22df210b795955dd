// The presence entries of one event loop's connections: what that loop added to the store and
// must refresh before the entries expire (every third of presence_ttl, Server's timer), and take
// out again when a connection leaves a channel. Touched on its loop only, without a lock.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <unordered_map>

#include "base/string_hash.h"
#include "wspush/presence_store.h"

namespace wspush {

class LocalPresence {
public:
    LocalPresence(PresenceStore& store, std::chrono::milliseconds ttl) : store_(&store), ttl_(ttl) {}

    // Returns true when the entry is new (not a refresh of one this loop holds).
    bool join(const std::string& channel, PresenceEntry entry);
    // Returns the entry taken out; nullopt when this loop held none for the client. `reason` goes
    // to the store (PresenceStore::remove).
    std::optional<PresenceEntry> leave(const std::string& channel, const std::string& client, std::string reason);
    // Adds every entry again, one store call per channel.
    void refresh();

    std::size_t size() const { return entries_; }

private:
    using Clients = std::unordered_map<std::string, PresenceEntry, StringHash, std::equal_to<>>;

    PresenceStore* store_;
    std::chrono::milliseconds ttl_;
    std::unordered_map<std::string, Clients, StringHash, std::equal_to<>> channels_;
    std::size_t entries_ = 0;
};

}  // namespace wspush
