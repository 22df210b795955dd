// Presence for one node: per channel, the entries, a count per user and the entries ordered by
// expiry, under one mutex (presence changes at subscribe and unsubscribe, far less often than
// publications). Entries expire as Redis's do, by the injected clock; the expired ones are
// dropped whenever their channel is touched, from the front of the expiry order, so that stats()
// costs O(1) plus what expired.
//
// While transitions are reported, the reported channels are also indexed by their last entry's
// expiry, and the users of the user status channel waiting out the offline grace by when it ends:
// sweep() takes from the front of both, whatever the number of channels.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
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
    void remove(std::string_view channel, std::vector<std::string> clients, std::string reason) override;
    void list(std::string_view channel, std::size_t limit, PresenceListCompletion done) override;
    void stats(std::string_view channel, PresenceStatsCompletion done) override;
    void hasUsers(std::string_view channel, std::vector<std::string> users, PresenceHasUsersCompletion done) override;
    void users(std::string_view channel, std::string cursor, std::size_t limit, PresenceUsersCompletion done) override;
    void reportTransitions(PresenceTransitionOptions options) override;
    void sweep() override;

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
        std::optional<std::int64_t> sweptAtMs;                    // its key in sweepable_, if any
    };
    using Channels = std::unordered_map<std::string, Channel, StringHash, std::equal_to<>>;

    // A user of the user status channel whose last entry went: offline once the grace ends.
    struct PendingOffline {
        std::int64_t dueMs;
        PresenceEntry lastEntry;
        std::string reason;
    };

    // One call on one channel, and what it has to report.
    struct Call {
        std::string_view channel;
        std::int64_t nowMs;
        bool reported;    // the channel's transitions are reported
        bool userStatus;  // …and it is the user status channel
        std::vector<PresenceTransition> transitions;

        void report(PresenceTransitionKind kind, const PresenceEntry& entry, std::string reason = {}) {
            transitions.push_back(PresenceTransition{kind, std::string(channel), entry, std::move(reason), nowMs});
        }
    };

    Call begin(std::string_view channel, std::int64_t now) const;
    // The channel of `call`, its expired entries dropped, or end() when it has none left; reports
    // the offline users that are due, with or without entries there.
    Channels::iterator touch(Call& call);
    // Adds an entry new to the channel.
    void insert(Channel& channel, PresenceEntry entry, std::int64_t expiresAt, Call& call);
    // Drops a client's entry (an unknown one is ignored).
    void drop(Channel& channel, const std::string& client, const std::string& reason, Call& call);
    void expire(Channel& channel, Call& call);
    void reportDueOffline(Call& call);
    // Forgets the channel once empty (then end()), else moves it to its place in sweepable_.
    Channels::iterator settle(Channels::iterator it, const Call& call);
    // Runs the handler without the state's lock, after every call that changed the state before.
    void report(std::unique_lock<std::mutex> state, std::vector<PresenceTransition> transitions);

    Clock clock_;
    std::mutex mutex_;
    Channels channels_;

    // Set once by reportTransitions(), before any other call.
    std::optional<PresenceTransitionOptions> reporting_;
    // The reported channels by their last entry's expiry: those before now expired whole.
    std::set<std::pair<std::int64_t, std::string>> sweepable_;
    std::unordered_map<std::string, PendingOffline, StringHash, std::equal_to<>> pendingOffline_;
    std::set<std::pair<std::int64_t, std::string>> offlineDue_;  // (due, user) of pendingOffline_
    // Each call with something to report takes a turn under mutex_ and reports when it comes:
    // transitions are reported in the order they were made, and the calls that have nothing to
    // report never wait for a handler.
    std::uint64_t nextTurn_ = 0;
    std::mutex reportMutex_;
    std::condition_variable turnEnded_;
    std::uint64_t turn_ = 0;  // under reportMutex_
};

}  // namespace wspush
