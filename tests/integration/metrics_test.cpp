// /metrics of the real daemon counts what an operator alerts on (docs/ops.md, "Monitor"):
// deliveries and QoS answers, the inbox at connect, disconnects by who and code, each event
// loop's lag, and per Redis shard the command latency, errors and state. And the Grafana
// dashboard that ships (docs/ops/grafana-dashboard.json) only asks for metrics, and labels, that
// a daemon on Redis with webhooks really exports.
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "support/redis_server_process.h"
#include "support/test_helpers.h"
#include "support/webhook_receiver.h"

namespace wspush::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

json anonymousUsers() {
    return json{{"client", {{"allow_anonymous", true}, {"trust_client_user", true}}}};
}

TEST(Metrics, CountDeliveriesAnswersInboxBacklogAndDisconnectsByWhoAndCode) {
    DaemonProcess daemon(anonymousUsers());
    HttpTestClient api(daemon.apiPort());
    unsigned short port = daemon.apiPort();

    // A device seen once, then away with a goodbye (1000 from the client).
    {
        WsTestClient phone;
        ASSERT_TRUE(phone.connectWith(daemon.port(), json{{"user", "ann"}, {"device", "phone"}}));
        phone.close();
    }
    ASSERT_TRUE(
        eventually([&] { return readMetric(port, R"(wspush_disconnects_total{by="client",code="1000"})") == 1; }));

    for (int n = 1; n <= 3; ++n)
        ASSERT_EQ(api.postJson("/api/send", json{{"user", "ann"}, {"data", {{"n", n}}}, {"qos", 1}}).status, 200u);
    WsTestClient phone;
    auto connected = phone.connectWith(daemon.port(), json{{"user", "ann"}, {"device", "phone"}});
    ASSERT_TRUE(connected);
    ASSERT_EQ((*connected)["inbox"]["pending"], 3) << connected->dump();
    for (int n = 1; n <= 3; ++n) {
        auto message = phone.waitFor([](const json& m) { return typeOf(m) == "message"; });
        ASSERT_TRUE(message) << "inbox message " << n;
        ASSERT_TRUE(phone.sendJson({{"type", "ack"}, {"did", (*message)["did"]}}));
    }
    ASSERT_TRUE(subscribeOk(phone, "news"));
    ASSERT_EQ(api.postJson("/api/publish", json{{"channel", "news"}, {"data", "hello"}}).status, 200u);
    ASSERT_TRUE(phone.waitFor([](const json& m) { return typeOf(m) == "message" && m.value("data", "") == "hello"; }));

    EXPECT_TRUE(eventually([&] { return readMetric(port, R"(wspush_qos_answers_total{kind="ack_or_comp"})") == 3; }));
    EXPECT_EQ(readMetric(port, R"(wspush_deliveries_total{qos="1"})"), 3);
    EXPECT_EQ(readMetric(port, R"(wspush_deliveries_total{qos="0"})"), 1);
    EXPECT_EQ(readMetric(port, R"(wspush_publications_total{qos="0"})"), 1);
    EXPECT_EQ(readMetric(port, R"(wspush_publications_total{qos="1"})"), 3);
    EXPECT_EQ(readMetric(port, "wspush_subscriptions"), 2) << "news and the personal channel";
    // Two connects with a device: nothing waiting the first time, three the second.
    EXPECT_EQ(readMetric(port, "wspush_inbox_backlog_messages_count"), 2);
    EXPECT_EQ(readMetric(port, "wspush_inbox_backlog_messages_sum"), 3);
    EXPECT_EQ(readMetric(port, R"(wspush_inbox_backlog_messages_bucket{le="0"})"), 1);
    EXPECT_EQ(readMetric(port, R"(wspush_inbox_backlog_messages_bucket{le="1"})"), 1);
    EXPECT_EQ(readMetric(port, R"(wspush_inbox_backlog_messages_bucket{le="10"})"), 2);
    EXPECT_EQ(readMetric(port, "wspush_inbox_dropped_total"), 0);

    // The server ends it: POST /api/disconnect without reconnect is 4503.
    ASSERT_EQ(api.postJson("/api/disconnect", json{{"user", "ann"}}).status, 202u);
    ASSERT_TRUE(phone.waitClose());
    EXPECT_TRUE(
        eventually([&] { return readMetric(port, R"(wspush_disconnects_total{by="server",code="4503"})") == 1; }));

    // The network ends it: a TCP reset, no close frame.
    WsTestClient dropped;
    ASSERT_TRUE(dropped.connectWith(daemon.port(), json{{"user", "bob"}}));
    dropped.drop();
    EXPECT_TRUE(
        eventually([&] { return readMetric(port, R"(wspush_disconnects_total{by="network",code="none"})") == 1; }));
    EXPECT_EQ(readMetric(port, R"(wspush_disconnects_total{by="client",code="1000"})"), 1);
}

TEST(Metrics, EachEventLoopReportsItsLag) {
    DaemonProcess daemon;  // two event loops
    unsigned short port = daemon.apiPort();
    // A probe every 100 ms per loop: a few in half a second, each far under a second on an idle loop.
    for (const char* loop : {"0", "1"}) {
        std::string count = std::string("wspush_event_loop_lag_seconds_count{loop=\"") + loop + "\"}";
        std::string underASecond = std::string("wspush_event_loop_lag_seconds_bucket{loop=\"") + loop + "\",le=\"1\"}";
        EXPECT_TRUE(eventually([&] { return readMetric(port, count) >= 3; }, 5000ms)) << count;
        double total = readMetric(port, count);
        EXPECT_GE(readMetric(port, underASecond), total - 1) << "at most the sample taken as /metrics ran";
    }
    EXPECT_EQ(readMetric(port, R"(wspush_event_loop_lag_seconds_count{loop="2"})"), -1) << "only the loops that exist";
}

TEST(Metrics, EachRedisShardReportsCommandLatencyErrorsAndWhetherItIsUp) {
    RedisServerProcess redis;
    DaemonProcess daemon(
        json{{"engine", "redis"},
             {"redis", {{"addresses", {redis.address()}}, {"connect_timeout", 1}, {"command_timeout", 1}}}});
    unsigned short port = daemon.apiPort();
    std::string shard = "shard=\"" + redis.address() + "\"";
    ASSERT_TRUE(eventually([&] { return readMetric(port, "wspush_redis_shard_up{" + shard + "}") == 1; }, 5000ms));

    HttpTestClient api(port);
    for (int n = 0; n < 5; ++n)
        ASSERT_EQ(api.postJson("/api/publish", json{{"channel", "news"}, {"data", n}}).status, 200u);
    EXPECT_GE(readMetric(port, "wspush_redis_command_duration_seconds_count{" + shard + "}"), 5);
    EXPECT_GE(readMetric(port, "wspush_redis_command_duration_seconds_bucket{" + shard + ",le=\"+Inf\"}"), 5);
    EXPECT_EQ(readMetric(port, "wspush_redis_command_errors_total{" + shard + ",kind=\"no_reply\"}"), 0);

    redis.kill();
    EXPECT_TRUE(eventually([&] { return readMetric(port, "wspush_redis_shard_up{" + shard + "}") == 0; }, 5000ms));
    EXPECT_EQ(api.postJson("/api/publish", json{{"channel", "news"}, {"data", "lost"}}).status, 503u);
    EXPECT_GE(readMetric(port, "wspush_redis_command_errors_total{" + shard + ",kind=\"no_reply\"}"), 1);
    EXPECT_EQ(readMetric(port, "wspush_engine_shards_down"), 1);
}

// ---- the Grafana dashboard ------------------------------------------------------------------------

// Sample lines of a /metrics text: name → the label sets printed with it.
std::map<std::string, std::vector<std::string>> samplesOf(const std::string& metrics) {
    std::map<std::string, std::vector<std::string>> samples;
    std::istringstream lines(metrics);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::size_t end = line.find_first_of("{ ");
        std::string name = line.substr(0, end);
        std::string labels =
            end != std::string::npos && line[end] == '{' ? line.substr(end, line.find('}') - end + 1) : "";
        samples[name].push_back(labels);
    }
    return samples;
}

TEST(GrafanaDashboard, EveryQueryNamesMetricsAndLabelsTheDaemonExports) {
    std::ifstream file(WSPUSH_GRAFANA_DASHBOARD);
    ASSERT_TRUE(file) << "cannot read " << WSPUSH_GRAFANA_DASHBOARD;
    json dashboard = json::parse(file, nullptr, false);
    ASSERT_FALSE(dashboard.is_discarded()) << "the dashboard is not JSON";

    // Everything a query may name is there: Redis shards, webhooks, two loops.
    RedisServerProcess redis;
    WebhookReceiver receiver("secret");
    json config = anonymousUsers();
    config.merge_patch(json{
        {"engine", "redis"},
        {"redis", {{"addresses", {redis.address()}}}},
        {"webhooks", {{"endpoints", {{{"url", receiver.url()}, {"secret", "secret"}, {"events", {"user_online"}}}}}}}});
    DaemonProcess daemon(config);
    ASSERT_TRUE(eventually([&] { return httpGet(daemon.apiPort(), "/readyz").status == 200; }, 5000ms));
    auto samples = samplesOf(httpGet(daemon.apiPort(), "/metrics").body);
    ASSERT_FALSE(samples.empty());

    const std::regex metricName(R"(wspush_[a-z0-9_]+)");
    const std::regex grouping(R"(\b(?:by|without)\s*\(([^)]*)\))");
    std::size_t queries = 0;
    std::set<std::string> named;
    for (const json& panel : dashboard.at("panels")) {
        if (panel.value("type", "") == "row") continue;
        std::string title = panel.value("title", "?");
        EXPECT_EQ(panel.value("datasource", json::object()).value("uid", ""), "${datasource}") << title;
        ASSERT_TRUE(panel.contains("targets")) << title;
        for (const json& target : panel.at("targets")) {
            std::string expr = target.at("expr").get<std::string>();
            ++queries;
            std::vector<std::string> metrics;
            for (std::sregex_iterator it(expr.begin(), expr.end(), metricName), end; it != end; ++it)
                metrics.push_back(it->str());
            EXPECT_FALSE(metrics.empty()) << title << ": " << expr;
            for (const std::string& metric : metrics) {
                named.insert(metric);
                EXPECT_TRUE(samples.count(metric)) << title << ": /metrics has no " << metric;
            }
            // Each label a query groups by is printed on the samples of a metric it reads
            // (`instance` is Prometheus's own).
            for (std::sregex_iterator it(expr.begin(), expr.end(), grouping), end; it != end; ++it) {
                std::istringstream labels((*it)[1].str());
                std::string label;
                while (std::getline(labels, label, ',')) {
                    label.erase(0, label.find_first_not_of(' '));
                    label.erase(label.find_last_not_of(' ') + 1);
                    if (label.empty() || label == "instance") continue;
                    bool found = false;
                    for (const std::string& metric : metrics)
                        for (const std::string& set : samples[metric])
                            found = found || set.find(label + "=\"") != std::string::npos;
                    EXPECT_TRUE(found) << title << ": no metric of \"" << expr << "\" has the label " << label;
                }
            }
        }
    }
    EXPECT_GE(queries, 40u) << "the dashboard lost its panels";
    // What the issue asks an operator to see is on the dashboard.
    for (const char* metric :
         {"wspush_connections", "wspush_sessions", "wspush_subscriptions", "wspush_channels",
          "wspush_publications_total", "wspush_deliveries_total", "wspush_qos_answers_total",
          "wspush_qos_redeliveries_total", "wspush_inbox_backlog_messages_bucket", "wspush_recoveries_total",
          "wspush_webhook_events_sent_total", "wspush_webhook_requests_failed_total",
          "wspush_redis_command_duration_seconds_bucket", "wspush_redis_command_errors_total",
          "wspush_disconnects_total", "wspush_event_loop_lag_seconds_bucket", "wspush_publish_latency_seconds_bucket"})
        EXPECT_TRUE(named.count(metric)) << "the dashboard does not show " << metric;
}

}  // namespace
}  // namespace wspush::testing
