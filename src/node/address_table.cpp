#include "node/address_table.h"

#include <algorithm>

namespace wspush {

AddressTable::Verdict AddressTable::admit(std::string_view address, TimePoint now) {
    prune(now);
    auto it = entries_.find(address);
    bool known = it != entries_.end();
    if (!known) {
        it = entries_.emplace(std::string(address), Entry{}).first;
        // A bucket of one second's worth: the rate is "per second", so a burst any larger would
        // let a client open more than the rate in its first second.
        if (limits_.connectsPerSecond > 0)
            it->second.connects.emplace(limits_.connectsPerSecond, std::max(1.0, limits_.connectsPerSecond), now);
    }
    Entry& entry = it->second;
    entry.lastSeen = now;
    Verdict verdict = Verdict::Admitted;
    if (limits_.connections > 0 && entry.open >= limits_.connections)
        verdict = Verdict::TooManyConnections;
    else if (entry.connects && !entry.connects->take(now))
        verdict = Verdict::TooFast;

    if (verdict == Verdict::Admitted) {
        if (known && entry.open == 0) idle_.erase(entry.idlePosition);
        ++entry.open;
    } else if (entry.open == 0) {
        // Refused without a connection open: still idle, now the most recently seen.
        if (known) idle_.erase(entry.idlePosition);
        becomeIdle(it, now);
    }
    return verdict;
}

void AddressTable::release(std::string_view address, TimePoint now) {
    auto it = entries_.find(address);
    if (it == entries_.end() || it->second.open == 0) return;
    if (--it->second.open > 0) return;
    becomeIdle(it, now);
}

std::size_t AddressTable::openConnections(std::string_view address) const {
    auto it = entries_.find(address);
    return it == entries_.end() ? 0 : it->second.open;
}

void AddressTable::becomeIdle(Entries::iterator entry, TimePoint now) {
    if (!worthKeeping(entry->second, now)) {
        entries_.erase(entry);
        return;
    }
    entry->second.idlePosition = idle_.insert(idle_.end(), entry->first);
    prune(now);
}

bool AddressTable::worthKeeping(const Entry& entry, TimePoint now) const {
    return entry.connects && !entry.connects->full(now);
}

void AddressTable::prune(TimePoint now) {
    // The front was seen longest ago, so its bucket is the likeliest to be full; one that is not
    // stops the sweep, and the addresses behind it are looked at again by a later call.
    while (!idle_.empty()) {
        auto it = entries_.find(idle_.front());
        if (idle_.size() <= limits_.maxIdle && worthKeeping(it->second, now)) break;
        entries_.erase(it);
        idle_.pop_front();
    }
}

}  // namespace wspush
