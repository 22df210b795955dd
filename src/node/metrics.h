// Counters for /metrics and /api/info.
//
// Each event loop owns one LoopMetrics and is its only writer, so a counter update is a plain
// relaxed load+store (no locked instruction); readers on other threads sum the loops.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "wspush/broker.h"
#include "wspush/latency_histogram.h"

namespace wspush {

class Counter {
public:
    void add(std::uint64_t n = 1) noexcept {
        value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    void sub(std::uint64_t n = 1) noexcept {
        value_.store(value_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
    }
    std::uint64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> value_{0};
};

// Connections ended, by who ended them and the close code. A code is one wspush or RFC 6455
// defines (1000-1015, 4000-4010, 4500-4503) or "other": a client's own codes must not make a
// series each.
class DisconnectCounts {
public:
    enum class By { Server, Client, Network };  // Network: the TCP connection went without a close
    static constexpr std::size_t kSlots = 32;

    void count(By by, std::uint16_t code) noexcept {
        if (by == By::Network) return network_.add();
        (by == By::Server ? server_ : client_)[slotOf(code)].add();
    }
    std::uint64_t get(By by, std::size_t slot) const noexcept {
        if (by == By::Network) return slot == 0 ? network_.get() : 0;
        return (by == By::Server ? server_ : client_)[slot].get();
    }
    // The code label of a slot: "1001", or "other" for the last one.
    static std::string codeOf(std::size_t slot);

private:
    static std::size_t slotOf(std::uint16_t code) noexcept {
        if (code >= 1000 && code <= 1015) return code - 1000u;
        if (code >= 4000 && code <= 4010) return 16u + (code - 4000u);
        if (code >= 4500 && code <= 4503) return 27u + (code - 4500u);
        return kSlots - 1;
    }
    std::array<Counter, kSlots> server_;
    std::array<Counter, kSlots> client_;
    Counter network_;
};

// Upper bounds of the inbox backlog histogram: messages waiting for a device when it connects.
inline constexpr std::array<double, 6> kInboxBacklogBuckets{0, 1, 10, 100, 1000, 10000};

struct LoopMetrics {
    Counter websocketConnections;  // gauge
    Counter httpConnections;       // gauge
    Counter websocketConnectionsTotal;
    Counter httpRequests;
    Counter messagesIn;   // protocol messages received from clients
    Counter messagesOut;  // messages written to clients (each coalesced piece counts)
    Counter bytesIn;
    Counter bytesOut;
    Counter writes;               // WebSocket writes (one per coalesced batch)
    Counter deflateCompressions;  // messages compressed for the shared permessage-deflate (FrameCompressor)
    Counter batchedSends;         // writes submitted together through io_uring (BatchedSends)
    Counter slowConsumerCloses;
    Counter noPongCloses;
    Counter connectTimeoutCloses;
    Counter protocolErrors;
    Counter unhealthyCloses;   // QoS deliveries unacknowledged after max_redeliveries
    Counter qosRedeliveries;   // QoS messages (or rels) sent again
    Counter qos0DroppedAway;   // QoS 0 publications for a session without a connection
    Counter sessionOverflows;  // a session's QoS queue passed sessions.max_queued
    Counter qosAbandoned;      // QoS deliveries unfinished when their session ended
    Counter sessionsResumed;
    Counter sessionsEnded;
    Counter subscriptionsLost;     // the hub found a gap or an epoch change: "insufficient state"
    Counter recoveries;            // subscribes with `since` answered recovered:true
    Counter recoveryMisses;        // … answered recovered:false
    Counter tokensRefused;         // connection tokens refused at connect or refresh (invalid or expired)
    Counter tokenExpiryCloses;     // connections closed with 4006 as their token expired
    Counter tlsHandshakeFailures;  // TLS connections that ended before or in their handshake
    Counter subscribesRefused;     // subscribes refused by the namespace's `subscribe` permission (103, 114)
    // Refused by a limit (docs/security.md, "Limits"): WebSocket upgrades and HTTP requests
    // before they are served, and `connect`s past limits.connections_per_user.
    Counter refusedNodeLimit;       // 503, connections_per_node
    Counter refusedIpLimit;         // 429, connections_per_ip
    Counter refusedIpRate;          // 429, connects_per_second_per_ip
    Counter refusedOrigin;          // 403, websocket.allowed_origins
    Counter refusedHeaderTooLarge;  // 431, max_header_bytes
    Counter refusedUrlTooLong;      // 414, max_url_bytes
    Counter refusedUserLimit;       // error 106 + close 4010, connections_per_user
    // Client commands refused with error 116.
    Counter commandsRefusedRate;          // commands_per_second
    Counter commandsRefusedHistoryRate;   // history_reads_per_second
    Counter commandsRefusedPresenceRate;  // presence_reads_per_second
    Counter tooManyRequestsCloses;        // 4009: past commands_burst refusals in a row
    // Publications handed to sessions (join/leave events excepted), by QoS 0, 1, 2.
    std::array<Counter, 3> deliveries;
    Counter qosAcks;  // QoS 1 acks and QoS 2 comps that finished a delivery
    Counter qosRecs;  // QoS 2 recs answered with a rel
    DisconnectCounts disconnects;
    // Devices that connected with an inbox (a `device`), and what was waiting for them.
    std::array<Counter, kInboxBacklogBuckets.size() + 1> inboxBacklogBuckets;
    Counter inboxBacklogCount;
    Counter inboxBacklogSum;
    Counter inboxDropped;  // messages reported as `dropped` at connect
    // Publish latency: from the API request being parsed to its response.
    LatencyHistogram publishLatency;
    // How late the loop ran a timer due every EventLoop::kLagProbeInterval: time it spent on other work.
    LatencyHistogram lag;

    void observeInboxBacklog(std::uint64_t pending, std::uint64_t dropped) noexcept;
};

struct NodeTotals {
    std::uint64_t websocketConnections = 0;
    std::uint64_t httpConnections = 0;
    std::uint64_t channels = 0;
    std::uint64_t publications = 0;
    std::uint64_t sessions = 0;
    std::uint64_t historyPublications = 0;  // from the engine
    std::uint64_t historyBytes = 0;
    std::uint64_t streams = 0;
    std::uint64_t engineGapsFound = 0;
    std::uint64_t engineGapsRepaired = 0;
    std::uint64_t engineShardsDown = 0;
    std::uint64_t subscriptions = 0;
    std::array<std::uint64_t, 3> publicationsByQos{};
    std::vector<EngineStats::Shard> engineShards;
};

// Prometheus text exposition (version 0.0.4) for /metrics: the loops' counters summed, each loop's
// lag on its own (label `loop`, the loops' order), and the node's totals.
std::string renderPrometheus(const std::vector<const LoopMetrics*>& loops, const NodeTotals& totals);

}  // namespace wspush
