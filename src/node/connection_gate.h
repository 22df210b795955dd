// Who may open a WebSocket connection to this node (docs/security.md, "Limits"): at most
// limits.connections_per_node at once, and per client address at most limits.connections_per_ip
// at once and limits.connects_per_second_per_ip new ones a second.
//
// Asked on the loop of each upgrade request, so from every loop: the node's count is one atomic,
// and the address table one mutex, taken once when a connection is admitted and once when it ends,
// and only when a per-address limit is set. Nothing else is taken under it.
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <variant>

#include "base/clock.h"
#include "node/address_table.h"
#include "wspush/config.h"

namespace wspush {

class ConnectionGate {
public:
    enum class Refusal {
        NodeFull,            // connections_per_node
        TooManyFromAddress,  // connections_per_ip
        TooFastFromAddress,  // connects_per_second_per_ip
    };

    // An admitted connection's place, given back when the ticket is destroyed or reset. Move-only.
    class Ticket {
    public:
        Ticket() = default;
        Ticket(Ticket&& other) noexcept { *this = std::move(other); }
        Ticket& operator=(Ticket&& other) noexcept;
        Ticket(const Ticket&) = delete;
        Ticket& operator=(const Ticket&) = delete;
        ~Ticket() { reset(); }
        void reset();

    private:
        friend class ConnectionGate;
        ConnectionGate* gate_ = nullptr;
        std::string address_;  // empty: not counted per address
    };

    // `clock` outlives the gate (the Node's).
    ConnectionGate(const LimitsConfig& limits, const Clock& clock);

    // Counts a new connection from `address` (ClientAddress's key) unless a limit refuses it.
    std::variant<Ticket, Refusal> admit(std::string_view address);

    // Connections holding a ticket now.
    std::size_t connections() const { return connections_.load(std::memory_order_relaxed); }

private:
    void release(Ticket& ticket);

    const Clock& clock_;
    std::size_t maxConnections_;
    bool limitsAddresses_;
    std::atomic<std::size_t> connections_{0};
    std::mutex addressesMutex_;
    AddressTable addresses_;
};

}  // namespace wspush
