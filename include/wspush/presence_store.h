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

using PresenceListCompletion = std::function<void(std::variant<std::vector<PresenceEntry>, BrokerError>)>;
using PresenceStatsCompletion = std::function<void(std::variant<PresenceStats, BrokerError>)>;

class PresenceStore {
public:
    virtual ~PresenceStore() = default;

    // Adds `entries` to `channel`, or refreshes those already there (same client), each present
    // until `ttl` from now unless added again: a node that dies takes its entries with it within
    // `ttl`. Never fails visibly: an entry that could not be stored is stored at the next refresh.
    virtual void add(std::string_view channel, std::vector<PresenceEntry> entries, std::chrono::milliseconds ttl) = 0;
    // Removes these clients' entries of `channel` (unknown clients are ignored).
    virtual void remove(std::string_view channel, std::vector<std::string> clients) = 0;

    // At most `limit` entries of `channel`, in no particular order.
    virtual void list(std::string_view channel, std::size_t limit, PresenceListCompletion done) = 0;
    // The counts, without reading the entries: O(1) however many there are.
    virtual void stats(std::string_view channel, PresenceStatsCompletion done) = 0;
};

}  // namespace wspush
