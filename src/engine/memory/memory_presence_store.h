// Presence for one node: per channel, the entries, a count per user and the entries ordered by
// expiry, under one mutex (presence changes at subscribe and unsubscribe, far less often than
// publications). Entries expire as Redis's do, by the injected clock; the expired ones are
// dropped whenever their channel is touched, from the front of the expiry order, so that stats()
// costs O(1) plus what expired.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>

#include "base/string_hash.h"
#include "wspush/presence_store.h"

namespace wspush {

class MemoryPresenceStore final : public PresenceStore {
public:
    using Clock = std::function<std::int64_t()>;  // Unix milliseconds

    explicit MemoryPresenceStore(Clock clock);

    void add(std::string_view channel, std::vector<PresenceEntry> entries, std::chrono::milliseconds ttl) override;
    void remove(std::string_view channel, std::vector<std::string> clients) override;
    void list(std::string_view channel, std::size_t limit, PresenceListCompletion done) override;
    void stats(std::string_view channel, PresenceStatsCompletion done) override;
    void hasUsers(std::string_view channel, std::vector<std::string> users, PresenceHasUsersCompletion done) override;
    void users(std::string_view channel, std::string cursor, std::size_t limit, PresenceUsersCompletion done) override;

private:
    struct Present {
        PresenceEntry entry;
        std::int64_t expiresAtMs;
    };
    struct Channel {
        std::unordered_map<std::string, Present, StringHash, std::equal_to<>> clients;
        // Ordered, so that users() pages by name: its cursor is the last name of a page.
        std::map<std::string, std::uint64_t, std::less<>> connectionsPerUser;
        std::set<std::pair<std::int64_t, std::string>> byExpiry;  // (expires at, client)
    };
    using Channels = std::unordered_map<std::string, Channel, StringHash, std::equal_to<>>;

    // Drops the expired entries of `it`'s channel, and the channel once empty; false then.
    bool expire(Channels::iterator it, std::int64_t now);
    static void drop(Channel& channel, const std::string& client);

    Clock clock_;
    std::mutex mutex_;
    Channels channels_;
};

}  // namespace wspush
