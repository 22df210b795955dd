// Per client address: how many WebSocket connections it has open, and how fast it opens new ones
// (limits.connections_per_ip, limits.connects_per_second_per_ip). Not thread-safe and reads no
// clock: ConnectionGate locks it and passes the time.
//
// Bounded: an address with open connections is kept (there are never more of those than open
// connections, each of which costs far more than its entry); an address without any is kept only
// while its connect bucket is not full again — forgetting it earlier would hand it a fresh burst —
// and at most `maxIdle` of them. Past that the one seen least recently is forgotten first, so an
// attacker with more addresses than that gets a fresh burst for some of them, and no more memory.
#pragma once

#include <chrono>
#include <cstddef>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/string_hash.h"
#include "base/token_bucket.h"

namespace wspush {

class AddressTable {
public:
    using TimePoint = std::chrono::steady_clock::time_point;

    struct Limits {
        std::size_t connections = 0;   // open at once per address; 0: no limit
        double connectsPerSecond = 0;  // new connections per second per address; 0: no limit
        std::size_t maxIdle = 65536;   // addresses without an open connection remembered, at most
    };
    enum class Verdict { Admitted, TooManyConnections, TooFast };

    explicit AddressTable(Limits limits) : limits_(limits) {}

    // Counts a new connection of `address` when the limits allow it.
    Verdict admit(std::string_view address, TimePoint now);
    // One of the address's admitted connections ended.
    void release(std::string_view address, TimePoint now);

    std::size_t size() const { return entries_.size(); }
    std::size_t idle() const { return idle_.size(); }
    std::size_t openConnections(std::string_view address) const;

private:
    struct Entry {
        std::size_t open = 0;
        std::optional<TokenBucket> connects;
        TimePoint lastSeen;
        std::list<std::string>::iterator idlePosition;  // valid while open == 0
    };
    using Entries = std::unordered_map<std::string, Entry, StringHash, std::equal_to<>>;

    // Forgets idle addresses whose bucket is full again, and the least recently seen ones past maxIdle.
    void prune(TimePoint now);
    void becomeIdle(Entries::iterator entry, TimePoint now);
    bool worthKeeping(const Entry& entry, TimePoint now) const;

    Limits limits_;
    Entries entries_;
    std::list<std::string> idle_;  // addresses without an open connection, least recently seen first
};

}  // namespace wspush
