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

// Upper bounds, in seconds, of the publish latency histogram's buckets (+Inf is implied).
inline constexpr std::array<double, 12> kLatencyBuckets{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                        0.01,   0.025,   0.05,   0.1,   0.25,   1.0};

struct LoopMetrics {
    Counter websocketConnections;  // gauge
    Counter httpConnections;       // gauge
    Counter websocketConnectionsTotal;
    Counter httpRequests;
    Counter messagesIn;   // protocol messages received from clients
    Counter messagesOut;  // messages written to clients (each coalesced piece counts)
    Counter bytesIn;
    Counter bytesOut;
    Counter writes;  // WebSocket writes (one per coalesced batch)
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
    // Publish latency: from the API request being parsed to its publication being accepted.
    std::array<Counter, kLatencyBuckets.size() + 1> publishLatencyBuckets;
    Counter publishLatencyCount;
    Counter publishLatencyMicros;

    void observePublishLatency(std::chrono::nanoseconds elapsed) noexcept;
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
};

// Prometheus text exposition (version 0.0.4) of all loops' counters.
std::string renderPrometheus(const std::vector<const LoopMetrics*>& loops, const NodeTotals& totals);

}  // namespace wspush
