#include "node/metrics.h"

#include <functional>
#include <initializer_list>
#include <sstream>
#include <utility>

namespace wspush {

void LoopMetrics::observePublishLatency(std::chrono::nanoseconds elapsed) noexcept {
    double seconds = std::chrono::duration<double>(elapsed).count();
    std::size_t bucket = 0;
    while (bucket < kLatencyBuckets.size() && seconds > kLatencyBuckets[bucket]) ++bucket;
    publishLatencyBuckets[bucket].add();
    publishLatencyCount.add();
    publishLatencyMicros.add(static_cast<std::uint64_t>(elapsed.count() / 1000));
}

std::string renderPrometheus(const std::vector<const LoopMetrics*>& loops, const NodeTotals& totals) {
    std::ostringstream out;
    auto sum = [&](Counter LoopMetrics::*member) {
        std::uint64_t total = 0;
        for (const auto* loop : loops) total += (loop->*member).get();
        return total;
    };
    auto metric = [&](const char* name, const char* type, const char* help, std::uint64_t value) {
        out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n'
            << name << ' ' << value << '\n';
    };
    metric("wspush_connections", "gauge", "Open WebSocket connections.", totals.websocketConnections);
    metric("wspush_http_connections", "gauge", "Open HTTP (non-WebSocket) connections.", totals.httpConnections);
    metric("wspush_channels", "gauge", "Channels with at least one subscriber on this node.", totals.channels);
    metric("wspush_connections_total", "counter", "WebSocket connections accepted.",
           sum(&LoopMetrics::websocketConnectionsTotal));
    metric("wspush_http_requests_total", "counter", "HTTP requests served.", sum(&LoopMetrics::httpRequests));
    metric("wspush_publications_total", "counter", "Publications routed by this node.", totals.publications);
    metric("wspush_messages_in_total", "counter", "Protocol messages received from clients.",
           sum(&LoopMetrics::messagesIn));
    metric("wspush_messages_out_total", "counter", "Messages written to clients.", sum(&LoopMetrics::messagesOut));
    metric("wspush_bytes_in_total", "counter", "WebSocket payload bytes received.", sum(&LoopMetrics::bytesIn));
    metric("wspush_bytes_out_total", "counter", "WebSocket payload bytes written.", sum(&LoopMetrics::bytesOut));
    metric("wspush_writes_total", "counter", "WebSocket writes (coalesced batches).", sum(&LoopMetrics::writes));
    metric("wspush_slow_consumer_closes_total", "counter", "Connections closed because their write queue overflowed.",
           sum(&LoopMetrics::slowConsumerCloses));
    metric("wspush_no_pong_closes_total", "counter",
           "Connections closed for silence past ping_interval + pong_timeout.", sum(&LoopMetrics::noPongCloses));
    metric("wspush_connect_timeout_closes_total", "counter", "Connections closed for not sending connect in time.",
           sum(&LoopMetrics::connectTimeoutCloses));
    metric("wspush_protocol_errors_total", "counter", "Client commands answered with an error.",
           sum(&LoopMetrics::protocolErrors));
    metric("wspush_sessions", "gauge", "Client sessions, with or without a connection.", totals.sessions);
    metric("wspush_sessions_resumed_total", "counter", "Sessions resumed by a reconnecting client.",
           sum(&LoopMetrics::sessionsResumed));
    metric("wspush_sessions_ended_total", "counter", "Sessions ended (client goodbye, ttl, overflow).",
           sum(&LoopMetrics::sessionsEnded));
    metric("wspush_subscriptions_lost_total", "counter",
           "Subscriptions ended because the node found a gap or an epoch change (insufficient state).",
           sum(&LoopMetrics::subscriptionsLost));
    metric("wspush_recoveries_total", "counter", "Subscribes with since answered recovered:true.",
           sum(&LoopMetrics::recoveries));
    metric("wspush_recovery_misses_total", "counter", "Subscribes with since answered recovered:false.",
           sum(&LoopMetrics::recoveryMisses));
    metric("wspush_tokens_refused_total", "counter",
           "Connection tokens refused at connect or refresh (invalid, expired or not valid yet).",
           sum(&LoopMetrics::tokensRefused));
    metric("wspush_token_expiry_closes_total", "counter", "Connections closed with 4006 as their token expired.",
           sum(&LoopMetrics::tokenExpiryCloses));
    metric("wspush_tls_handshake_failures_total", "counter",
           "TLS connections that failed or timed out in their handshake (tls.cert).",
           sum(&LoopMetrics::tlsHandshakeFailures));
    metric("wspush_subscribes_refused_total", "counter",
           "Subscribes refused by their namespace's subscribe permission (errors 103 and 114).",
           sum(&LoopMetrics::subscribesRefused));
    metric("wspush_history_publications", "gauge", "Publications held in channel history by the engine.",
           totals.historyPublications);
    metric("wspush_history_bytes", "gauge", "Bytes held in channel history by the engine (approximate).",
           totals.historyBytes);
    metric("wspush_engine_streams", "gauge", "Channel streams (offset, epoch, history) the engine keeps.",
           totals.streams);
    metric("wspush_engine_gaps_total", "counter",
           "Gaps this node found in the publications it received from the engine (Redis: missed PUBLISHes).",
           totals.engineGapsFound);
    metric("wspush_engine_gaps_repaired_total", "counter", "Gaps filled from history before delivery.",
           totals.engineGapsRepaired);
    metric("wspush_engine_shards_down", "gauge", "Engine storage shards (Redis) not reachable now.",
           totals.engineShardsDown);
    metric("wspush_unhealthy_closes_total", "counter",
           "Connections closed because QoS deliveries stayed unacknowledged.", sum(&LoopMetrics::unhealthyCloses));
    metric("wspush_qos_redeliveries_total", "counter", "QoS messages or rels sent again.",
           sum(&LoopMetrics::qosRedeliveries));
    metric("wspush_qos0_dropped_away_total", "counter",
           "QoS 0 publications not delivered because the session had no connection.",
           sum(&LoopMetrics::qos0DroppedAway));
    metric("wspush_session_overflows_total", "counter", "Times a session's QoS queue passed sessions.max_queued.",
           sum(&LoopMetrics::sessionOverflows));
    metric("wspush_qos_abandoned_total", "counter", "QoS deliveries unfinished when their session ended.",
           sum(&LoopMetrics::qosAbandoned));
    auto labelled = [&](const char* name, const char* help, const char* label,
                        std::initializer_list<std::pair<const char*, Counter LoopMetrics::*>> values) {
        out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " counter\n";
        for (const auto& [value, member] : values)
            out << name << '{' << label << "=\"" << value << "\"} " << sum(member) << '\n';
    };
    labelled("wspush_connections_refused_total",
             "WebSocket upgrades and HTTP requests refused by a limit, and connects past connections_per_user.",
             "reason",
             {{"node_limit", &LoopMetrics::refusedNodeLimit},
              {"ip_limit", &LoopMetrics::refusedIpLimit},
              {"ip_rate", &LoopMetrics::refusedIpRate},
              {"origin", &LoopMetrics::refusedOrigin},
              {"header_too_large", &LoopMetrics::refusedHeaderTooLarge},
              {"url_too_long", &LoopMetrics::refusedUrlTooLong},
              {"user_limit", &LoopMetrics::refusedUserLimit}});
    labelled("wspush_commands_refused_total", "Client commands refused with error 116 by a rate limit.", "reason",
             {{"rate", &LoopMetrics::commandsRefusedRate},
              {"history_rate", &LoopMetrics::commandsRefusedHistoryRate},
              {"presence_rate", &LoopMetrics::commandsRefusedPresenceRate}});
    metric("wspush_too_many_requests_closes_total", "counter",
           "Connections closed with 4009: commands kept coming past the rate limit.",
           sum(&LoopMetrics::tooManyRequestsCloses));

    out << "# HELP wspush_publish_latency_seconds Time from an API publish request to its response (with wait, acks "
           "included).\n"
           "# TYPE wspush_publish_latency_seconds histogram\n";
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i <= kLatencyBuckets.size(); ++i) {
        for (const auto* loop : loops) cumulative += loop->publishLatencyBuckets[i].get();
        out << "wspush_publish_latency_seconds_bucket{le=\"";
        if (i < kLatencyBuckets.size())
            out << kLatencyBuckets[i];
        else
            out << "+Inf";
        out << "\"} " << cumulative << '\n';
    }
    out << "wspush_publish_latency_seconds_sum " << static_cast<double>(sum(&LoopMetrics::publishLatencyMicros)) / 1e6
        << '\n'
        << "wspush_publish_latency_seconds_count " << sum(&LoopMetrics::publishLatencyCount) << '\n';
    return out.str();
}

}  // namespace wspush
