#include "node/metrics.h"

#include <functional>
#include <initializer_list>
#include <span>
#include <sstream>
#include <utility>

namespace wspush {

std::string DisconnectCounts::codeOf(std::size_t slot) {
    if (slot < 16) return std::to_string(1000 + slot);
    if (slot < 27) return std::to_string(4000 + slot - 16);
    if (slot < 31) return std::to_string(4500 + slot - 27);
    return "other";
}

void LoopMetrics::observeInboxBacklog(std::uint64_t pending, std::uint64_t dropped) noexcept {
    std::size_t bucket = 0;
    while (bucket < kInboxBacklogBuckets.size() && static_cast<double>(pending) > kInboxBacklogBuckets[bucket])
        ++bucket;
    inboxBacklogBuckets[bucket].add();
    inboxBacklogCount.add();
    inboxBacklogSum.add(pending);
    inboxDropped.add(dropped);
}

namespace {

// `labels`: "" or `shard="a",`-style pairs, each followed by a comma.
void renderHistogram(std::ostream& out, const char* name, const std::string& labels, std::span<const double> bounds,
                     std::span<const std::uint64_t> buckets, std::uint64_t count, double sum) {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i <= bounds.size(); ++i) {
        cumulative += buckets[i];
        out << name << "_bucket{" << labels << "le=\"";
        if (i < bounds.size())
            out << bounds[i];
        else
            out << "+Inf";
        out << "\"} " << cumulative << '\n';
    }
    // _sum and _count carry the same labels without `le` (and without the trailing comma).
    std::string_view pairs(labels);
    if (!pairs.empty()) pairs.remove_suffix(1);
    auto series = [&](const char* suffix) -> std::ostream& {
        out << name << suffix;
        if (!pairs.empty()) out << '{' << pairs << '}';
        return out << ' ';
    };
    series("_sum") << sum << '\n';
    series("_count") << count << '\n';
}

void renderLatency(std::ostream& out, const char* name, const std::string& labels, const LatencySnapshot& latency) {
    renderHistogram(out, name, labels, kLatencyBuckets, latency.buckets, latency.count,
                    static_cast<double>(latency.sumMicros) / 1e6);
}

// Prometheus label values escape backslash, quote and newline.
std::string labelValue(std::string_view text) {
    std::string escaped;
    for (char c : text) {
        if (c == '\\' || c == '"') escaped += '\\';
        if (c == '\n') {
            escaped += "\\n";
            continue;
        }
        escaped += c;
    }
    return escaped;
}

}  // namespace

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
    metric("wspush_messages_in_total", "counter", "Protocol messages received from clients.",
           sum(&LoopMetrics::messagesIn));
    metric("wspush_messages_out_total", "counter", "Messages written to clients.", sum(&LoopMetrics::messagesOut));
    metric("wspush_bytes_in_total", "counter", "WebSocket payload bytes received.", sum(&LoopMetrics::bytesIn));
    metric("wspush_bytes_out_total", "counter", "WebSocket payload bytes written.", sum(&LoopMetrics::bytesOut));
    metric("wspush_writes_total", "counter", "WebSocket writes (coalesced batches).", sum(&LoopMetrics::writes));
    metric("wspush_deflate_compressions_total", "counter",
           "Messages compressed for permessage-deflate without context takeover, each for all its recipients.",
           sum(&LoopMetrics::deflateCompressions));
    metric("wspush_batched_sends_total", "counter",
           "WebSocket writes submitted together with other connections' in one system call (io_uring).",
           sum(&LoopMetrics::batchedSends));
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

    labelled("wspush_recoveries_total", "Subscribes with since, by their answer: recovered true or false.", "outcome",
             {{"recovered", &LoopMetrics::recoveries}, {"not_recovered", &LoopMetrics::recoveryMisses}});
    labelled("wspush_qos_answers_total",
             "Client answers that moved a QoS delivery on: ack and comp finish one, rec "
             "gets a rel.",
             "kind", {{"ack_or_comp", &LoopMetrics::qosAcks}, {"rec", &LoopMetrics::qosRecs}});

    auto header = [&](const char* name, const char* type, const char* help) {
        out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
    };
    header("wspush_publications_total", "counter",
           "Publications this node received from the engine (from any node), by QoS.");
    for (std::size_t qos = 0; qos < 3; ++qos)
        out << "wspush_publications_total{qos=\"" << qos << "\"} " << totals.publicationsByQos[qos] << '\n';
    header("wspush_deliveries_total", "counter", "Publications handed to client sessions, by QoS.");
    for (std::size_t qos = 0; qos < 3; ++qos) {
        std::uint64_t total = 0;
        for (const auto* loop : loops) total += loop->deliveries[qos].get();
        out << "wspush_deliveries_total{qos=\"" << qos << "\"} " << total << '\n';
    }
    metric("wspush_subscriptions", "gauge", "Channel subscriptions on this node (personal channels included).",
           totals.subscriptions);

    header("wspush_disconnects_total", "counter",
           "WebSocket connections ended: by the server (its close code), the client (its close code) or the network.");
    using By = DisconnectCounts::By;
    for (By by : {By::Server, By::Client}) {
        for (std::size_t slot = 0; slot < DisconnectCounts::kSlots; ++slot) {
            std::uint64_t total = 0;
            for (const auto* loop : loops) total += loop->disconnects.get(by, slot);
            // A series appears with its first count: 64 zeros per scrape would say nothing.
            if (total != 0)
                out << "wspush_disconnects_total{by=\"" << (by == By::Server ? "server" : "client") << "\",code=\""
                    << DisconnectCounts::codeOf(slot) << "\"} " << total << '\n';
        }
    }
    std::uint64_t network = 0;
    for (const auto* loop : loops) network += loop->disconnects.get(By::Network, 0);
    out << "wspush_disconnects_total{by=\"network\",code=\"none\"} " << network << '\n';

    header("wspush_inbox_backlog_messages", "histogram",
           "Messages waiting in a user's inbox for a device when it connects (connected.inbox.pending).");
    std::array<std::uint64_t, kInboxBacklogBuckets.size() + 1> backlog{};
    for (std::size_t i = 0; i < backlog.size(); ++i)
        for (const auto* loop : loops) backlog[i] += loop->inboxBacklogBuckets[i].get();
    renderHistogram(out, "wspush_inbox_backlog_messages", "", kInboxBacklogBuckets, backlog,
                    sum(&LoopMetrics::inboxBacklogCount), static_cast<double>(sum(&LoopMetrics::inboxBacklogSum)));
    metric("wspush_inbox_dropped_total", "counter",
           "Inbox messages that expired or overflowed before a device got them (connected.inbox.dropped).",
           sum(&LoopMetrics::inboxDropped));

    header("wspush_publish_latency_seconds", "histogram",
           "Time from an API publish request to its response (with wait, acks included).");
    LatencySnapshot publishLatency;
    for (const auto* loop : loops) publishLatency += loop->publishLatency.snapshot();
    renderLatency(out, "wspush_publish_latency_seconds", "", publishLatency);

    header("wspush_event_loop_lag_seconds", "histogram",
           "How late each event loop ran a timer due every 100 ms: the time it was busy with other work.");
    for (std::size_t index = 0; index < loops.size(); ++index)
        renderLatency(out, "wspush_event_loop_lag_seconds", "loop=\"" + std::to_string(index) + "\",",
                      loops[index]->lag.snapshot());

    if (!totals.engineShards.empty()) {
        header("wspush_redis_command_duration_seconds", "histogram",
               "Time from a command sent to a Redis shard to its reply read, on this node's command connection.");
        for (const auto& shard : totals.engineShards)
            renderLatency(out, "wspush_redis_command_duration_seconds", "shard=\"" + labelValue(shard.name) + "\",",
                          shard.commandLatency);
        header("wspush_redis_shard_up", "gauge", "Whether this node reaches the Redis shard now (1) or not (0).");
        for (const auto& shard : totals.engineShards)
            out << "wspush_redis_shard_up{shard=\"" << labelValue(shard.name) << "\"} " << (shard.up ? 1 : 0) << '\n';
        header("wspush_redis_command_errors_total", "counter",
               "Redis commands that failed: an error reply, or no reply (shard not reachable, connection lost, timed "
               "out).");
        for (const auto& shard : totals.engineShards) {
            std::string name = labelValue(shard.name);
            out << "wspush_redis_command_errors_total{shard=\"" << name << "\",kind=\"error_reply\"} "
                << shard.errorReplies << '\n'
                << "wspush_redis_command_errors_total{shard=\"" << name << "\",kind=\"no_reply\"} " << shard.failures
                << '\n';
        }
    }
    return out.str();
}

}  // namespace wspush
