// The presence contract: who is subscribed to a channel, counted by connection (a session waiting
// for its client to resume is not present). Each node adds the entries of its own connections,
// refreshes them before they expire, and removes them when a connection leaves; the store answers
// for every node. An engine for one node keeps them in memory (MemoryPresenceStore), the Redis
// engine in Redis (RedisPresenceStore); both pass tests/engine/presence_store_contract_test.cpp.
//
// Completions run exactly once, on any thread (memory: synchronously, before the call returns;
// Redis: on the engine's loop), like the Broker's.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "wspush/broker.h"

namespace wspush {

struct PresenceEntry {
    std::string client;  // the connection's id
    std::string user;    // "" for an anonymous connection
    std::string device;  // "" when the client named none
    std::string node;    // the node holding the connection
    std::int64_t connectedAtMs = 0;
    std::string info;  // a JSON object's text, "" when none

    bool operator==(const PresenceEntry&) const = default;
};

struct PresenceStats {
    std::uint64_t clients = 0;  // connections subscribed
    std::uint64_t users = 0;    // distinct users among them ("" counts as one user: anonymous)
};

// A change of a channel's presence that backends hear about (docs/webhooks.md). Each is reported
// once, to the node whose call made it (on Redis, the script that made it, atomically): a join,
// a leave, a refresh or read that found entries expired, or a sweep().
enum class PresenceTransitionKind : unsigned char {
    MemberAdded,      // an entry new to the channel
    MemberRemoved,    // an entry removed or expired
    ChannelOccupied,  // the channel's first entry (after MemberAdded)
    ChannelVacated,   // the channel's last entry gone (after MemberRemoved)
    UserOnline,       // user status channel: the user's first entry, unless back within the grace
    UserOffline,      // user status channel: the user without an entry for the whole grace
};

struct PresenceTransition {
    PresenceTransitionKind kind = PresenceTransitionKind::MemberAdded;
    std::string channel;
    // The entry concerned: added, removed, the first or last of the channel, the user's first
    // entry (online) or the last one that left (offline).
    PresenceEntry entry;
    // Removed, vacated, offline: why the entry went, as given to remove(), or "expired".
    std::string reason;
    std::int64_t timeMs = 0;  // when the store saw it (Unix ms)

    bool operator==(const PresenceTransition&) const = default;
};

// Runs on any thread (memory: inside the call that made the transitions; Redis: on the engine's
// loop), in the order they happened for one channel. It must not call the store.
using PresenceTransitionHandler = std::function<void(std::vector<PresenceTransition>)>;

struct PresenceTransitionOptions {
    PresenceTransitionHandler handler;
    // Channels whose transitions are reported (others cost nothing more than before).
    std::function<bool(std::string_view channel)> reported;
    // The one channel that also reports UserOnline / UserOffline (Node: $online), and how long a
    // user must be without an entry there before UserOffline: a user back within it (a page
    // reload) makes neither UserOffline nor a second UserOnline.
    std::string userStatusChannel;
    std::chrono::milliseconds offlineGrace{5000};
};

// A page of a channel's distinct users. `cursor` continues the listing; empty on the last page.
struct PresenceUserPage {
    std::vector<std::string> users;
    std::string cursor;
};

using PresenceListCompletion = std::function<void(std::variant<std::vector<PresenceEntry>, BrokerError>)>;
using PresenceStatsCompletion = std::function<void(std::variant<PresenceStats, BrokerError>)>;
using PresenceUsersCompletion = std::function<void(std::variant<PresenceUserPage, BrokerError>)>;
// One flag per user asked, in the order asked: whether the user has an entry.
using PresenceHasUsersCompletion = std::function<void(std::variant<std::vector<bool>, BrokerError>)>;

class PresenceStore {
public:
    virtual ~PresenceStore() = default;

    // Adds `entries` to `channel`, or refreshes those already there (same client), each present
    // until `ttl` from now unless added again: a node that dies takes its entries with it within
    // `ttl`. Never fails visibly: an entry that could not be stored is stored at the next refresh.
    // A call of a few entries (a join) is seen by every read made after it; a large one (a
    // refresh) may be stored in parts, with reads in between (Redis: 64 entries a part).
    virtual void add(std::string_view channel, std::vector<PresenceEntry> entries, std::chrono::milliseconds ttl) = 0;
    // Removes these clients' entries of `channel` (unknown clients are ignored); `reason` is
    // what MemberRemoved / ChannelVacated / UserOffline report ("unsubscribed", "disconnected").
    virtual void remove(std::string_view channel, std::vector<std::string> clients, std::string reason) = 0;

    // At most `limit` entries of `channel`, in no particular order.
    virtual void list(std::string_view channel, std::size_t limit, PresenceListCompletion done) = 0;
    // The counts, without reading the entries: O(1) however many there are.
    virtual void stats(std::string_view channel, PresenceStatsCompletion done) = 0;
    // Whether each of `users` has at least one entry in `channel`: one read however many.
    virtual void hasUsers(std::string_view channel, std::vector<std::string> users,
                          PresenceHasUsersCompletion done) = 0;
    // The distinct users of `channel` (anonymous "" left out), a page at a time: `cursor` empty
    // starts, the page's own continues. A user present the whole time is listed exactly once
    // (Redis: at least once); `limit` is a hint the Redis store may exceed or fall short of, as
    // HSCAN does. Pages end when the returned cursor is empty.
    virtual void users(std::string_view channel, std::string cursor, std::size_t limit,
                       PresenceUsersCompletion done) = 0;

    // Starts reporting transitions. Called once, before any other call; without it nothing is
    // reported and nothing is kept for it.
    virtual void reportTransitions(PresenceTransitionOptions options) = 0;
    // Reports what is due without anyone touching its channel: entries of a channel whose every
    // entry expired (a dead node's, when no live node has members there to notice), and
    // UserOffline once the grace has passed. Each node calls it about once a second while
    // transitions are reported; nodes calling it together report each transition once.
    virtual void sweep() = 0;
};

}  // namespace wspush
