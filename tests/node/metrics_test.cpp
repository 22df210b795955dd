// The Prometheus rendering of /metrics: histograms are cumulative with their _sum and _count,
// disconnect codes fall into bounded series, each loop's lag is its own series, and Redis
// shard names are escaped as label values.
#include "node/metrics.h"

#include <gtest/gtest.h>

namespace wspush {
namespace {

using namespace std::chrono_literals;

bool has(const std::string& text, const std::string& line) {
    return text.find(line + "\n") != std::string::npos;
}

TEST(LatencyHistogram, CountsEachObservationInTheFirstBucketThatHoldsIt) {
    LatencyHistogram histogram;
    histogram.observe(100us);  // on the bound: that bucket
    histogram.observe(101us);  // just above: the next
    histogram.observe(2s);     // past the last bound: +Inf
    histogram.observe(-5us);   // a clock step back: the first bucket, nothing subtracted
    LatencySnapshot snapshot = histogram.snapshot();
    EXPECT_EQ(snapshot.buckets[0], 2u);
    EXPECT_EQ(snapshot.buckets[1], 1u);
    EXPECT_EQ(snapshot.buckets[kLatencyBuckets.size()], 1u);
    EXPECT_EQ(snapshot.count, 4u);
    EXPECT_EQ(snapshot.sumMicros, 100u + 101u + 2'000'000u);
}

TEST(DisconnectCounts, KnownCodesHaveASeriesEachAndTheRestShareOther) {
    DisconnectCounts counts;
    counts.count(DisconnectCounts::By::Server, 4001);
    counts.count(DisconnectCounts::By::Server, 4001);
    counts.count(DisconnectCounts::By::Client, 1000);
    counts.count(DisconnectCounts::By::Client, 3999);  // an application's own code
    counts.count(DisconnectCounts::By::Client, 4321);
    counts.count(DisconnectCounts::By::Network, 0);
    EXPECT_EQ(DisconnectCounts::codeOf(0), "1000");
    EXPECT_EQ(DisconnectCounts::codeOf(15), "1015");
    EXPECT_EQ(DisconnectCounts::codeOf(16), "4000");
    EXPECT_EQ(DisconnectCounts::codeOf(26), "4010");
    EXPECT_EQ(DisconnectCounts::codeOf(27), "4500");
    EXPECT_EQ(DisconnectCounts::codeOf(30), "4503");
    EXPECT_EQ(DisconnectCounts::codeOf(DisconnectCounts::kSlots - 1), "other");
    EXPECT_EQ(counts.get(DisconnectCounts::By::Server, 17), 2u);  // 4001
    EXPECT_EQ(counts.get(DisconnectCounts::By::Client, 0), 1u);
    EXPECT_EQ(counts.get(DisconnectCounts::By::Client, DisconnectCounts::kSlots - 1), 2u);
    EXPECT_EQ(counts.get(DisconnectCounts::By::Network, 0), 1u);
}

TEST(RenderPrometheus, SumsLoopsButKeepsEachLoopsLag) {
    LoopMetrics first, second;
    first.disconnects.count(DisconnectCounts::By::Server, 4002);
    second.disconnects.count(DisconnectCounts::By::Server, 4002);
    second.disconnects.count(DisconnectCounts::By::Client, 1001);
    first.deliveries[1].add(3);
    second.deliveries[1].add(4);
    first.lag.observe(50us);
    second.lag.observe(30ms);
    second.lag.observe(30ms);
    NodeTotals totals;
    totals.publicationsByQos = {5, 6, 7};
    std::string text = renderPrometheus({&first, &second}, totals);

    EXPECT_TRUE(has(text, R"(wspush_disconnects_total{by="server",code="4002"} 2)")) << text;
    EXPECT_TRUE(has(text, R"(wspush_disconnects_total{by="client",code="1001"} 1)")) << text;
    EXPECT_TRUE(has(text, R"(wspush_disconnects_total{by="network",code="none"} 0)")) << text;
    EXPECT_EQ(text.find(R"(code="4003")"), std::string::npos) << "no series before its first count";
    EXPECT_TRUE(has(text, R"(wspush_deliveries_total{qos="1"} 7)")) << text;
    EXPECT_TRUE(has(text, R"(wspush_publications_total{qos="2"} 7)")) << text;

    EXPECT_TRUE(has(text, R"(wspush_event_loop_lag_seconds_bucket{loop="0",le="0.0001"} 1)")) << text;
    EXPECT_TRUE(has(text, R"(wspush_event_loop_lag_seconds_bucket{loop="1",le="0.025"} 0)")) << text;
    EXPECT_TRUE(has(text, R"(wspush_event_loop_lag_seconds_bucket{loop="1",le="0.05"} 2)")) << text;
    EXPECT_TRUE(has(text, R"(wspush_event_loop_lag_seconds_bucket{loop="1",le="+Inf"} 2)")) << text;
    EXPECT_TRUE(has(text, R"(wspush_event_loop_lag_seconds_count{loop="1"} 2)")) << text;
    EXPECT_TRUE(has(text, R"(wspush_event_loop_lag_seconds_sum{loop="1"} 0.06)")) << text;
    EXPECT_EQ(text.find("wspush_redis_"), std::string::npos) << "no Redis series without Redis shards";
}

TEST(RenderPrometheus, RedisShardsAreLabelledAndTheirNamesEscaped) {
    NodeTotals totals;
    EngineStats::Shard shard;
    shard.name = R"(master "a"\1)";
    shard.up = true;
    shard.errorReplies = 2;
    shard.failures = 3;
    LatencyHistogram latency;
    latency.observe(300us);
    shard.commandLatency = latency.snapshot();
    totals.engineShards.push_back(shard);
    LoopMetrics loop;
    std::string text = renderPrometheus({&loop}, totals);
    const std::string label = R"(shard="master \"a\"\\1")";
    EXPECT_TRUE(has(text, "wspush_redis_shard_up{" + label + "} 1")) << text;
    EXPECT_TRUE(has(text, "wspush_redis_command_errors_total{" + label + R"(,kind="error_reply"} 2)")) << text;
    EXPECT_TRUE(has(text, "wspush_redis_command_errors_total{" + label + R"(,kind="no_reply"} 3)")) << text;
    EXPECT_TRUE(has(text, "wspush_redis_command_duration_seconds_bucket{" + label + R"(,le="0.00025"} 0)")) << text;
    EXPECT_TRUE(has(text, "wspush_redis_command_duration_seconds_bucket{" + label + R"(,le="0.0005"} 1)")) << text;
    EXPECT_TRUE(has(text, "wspush_redis_command_duration_seconds_count{" + label + "} 1")) << text;
}

TEST(RenderPrometheus, InboxBacklogIsAHistogramOfMessagesWaiting) {
    LoopMetrics loop;
    loop.observeInboxBacklog(0, 0);
    loop.observeInboxBacklog(7, 2);
    loop.observeInboxBacklog(20'000, 0);
    std::string text = renderPrometheus({&loop}, NodeTotals{});
    EXPECT_TRUE(has(text, R"(wspush_inbox_backlog_messages_bucket{le="0"} 1)")) << text;
    EXPECT_TRUE(has(text, R"(wspush_inbox_backlog_messages_bucket{le="1"} 1)")) << text;
    EXPECT_TRUE(has(text, R"(wspush_inbox_backlog_messages_bucket{le="10"} 2)")) << text;
    EXPECT_TRUE(has(text, R"(wspush_inbox_backlog_messages_bucket{le="10000"} 2)")) << text;
    EXPECT_TRUE(has(text, R"(wspush_inbox_backlog_messages_bucket{le="+Inf"} 3)")) << text;
    EXPECT_TRUE(has(text, "wspush_inbox_backlog_messages_sum 20007")) << text;
    EXPECT_TRUE(has(text, "wspush_inbox_backlog_messages_count 3")) << text;
    EXPECT_TRUE(has(text, "wspush_inbox_dropped_total 2")) << text;
}

}  // namespace
}  // namespace wspush
