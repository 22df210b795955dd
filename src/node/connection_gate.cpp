#include "node/connection_gate.h"

#include <utility>

namespace wspush {

ConnectionGate::Ticket& ConnectionGate::Ticket::operator=(Ticket&& other) noexcept {
    if (this != &other) {
        reset();
        gate_ = std::exchange(other.gate_, nullptr);
        address_ = std::move(other.address_);
    }
    return *this;
}

void ConnectionGate::Ticket::reset() {
    if (gate_ != nullptr) std::exchange(gate_, nullptr)->release(*this);
}

ConnectionGate::ConnectionGate(const LimitsConfig& limits, const Clock& clock)
    : clock_(clock),
      maxConnections_(limits.connections_per_node),
      limitsAddresses_(limits.connections_per_ip > 0 || limits.connects_per_second_per_ip > 0),
      addresses_(AddressTable::Limits{limits.connections_per_ip, limits.connects_per_second_per_ip}) {}

std::variant<ConnectionGate::Ticket, ConnectionGate::Refusal> ConnectionGate::admit(std::string_view address) {
    // Taken first and given back on a refusal, so that racing upgrades on several loops can never
    // take the node past its limit together.
    std::size_t before = connections_.fetch_add(1, std::memory_order_relaxed);
    if (maxConnections_ > 0 && before >= maxConnections_) {
        connections_.fetch_sub(1, std::memory_order_relaxed);
        return Refusal::NodeFull;
    }
    Ticket ticket;
    ticket.gate_ = this;
    if (!limitsAddresses_ || address.empty()) return ticket;  // empty: the peer was gone already

    AddressTable::Verdict verdict;
    {
        std::lock_guard lock(addressesMutex_);
        verdict = addresses_.admit(address, clock_.now());
    }
    switch (verdict) {
        case AddressTable::Verdict::Admitted: ticket.address_ = std::string(address); return ticket;
        case AddressTable::Verdict::TooManyConnections: return Refusal::TooManyFromAddress;  // ~Ticket uncounts
        case AddressTable::Verdict::TooFast: return Refusal::TooFastFromAddress;
    }
    return Refusal::TooFastFromAddress;  // unreachable
}

void ConnectionGate::release(Ticket& ticket) {
    if (!ticket.address_.empty()) {
        std::lock_guard lock(addressesMutex_);
        addresses_.release(ticket.address_, clock_.now());
    }
    connections_.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace wspush
