#include "node/node.h"
#include "support/one_node_engine.h"

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "engine/memory/memory_broker.h"
#include "support/fake_cluster_broker.h"

namespace wspush {
namespace {

// Wraps the memory engine and checks what the contract promises the engine: per channel,
// subscribe and unsubscribe alternate, starting with subscribe.
class InterestCheckingBroker final : public Broker {
public:
    InterestCheckingBroker() : inner_("chk", [] { return std::int64_t{1700000000000}; }) {}
    const char* name() const override { return "checking"; }
    bool clustered() const override { return false; }
    void setEventHandler(BrokerEventHandler* handler, std::string nodeName) override {
        inner_.setEventHandler(handler, std::move(nodeName));
    }
    void publish(PublishRequest request, PublishCompletion done) override {
        inner_.publish(std::move(request), std::move(done));
    }
    void subscribe(std::string_view channel, SubscribeCompletion done) override {
        {
            std::lock_guard lock(mutex_);
            if (subscribed_) ++violations;
            subscribed_ = true;
            ++subscribes;
        }
        inner_.subscribe(channel, std::move(done));
    }
    void unsubscribe(std::string_view channel) override {
        // Widens the window in which a node calling the engine outside its lock would let another
        // loop's subscribe overtake this unsubscribe.
        std::this_thread::yield();
        {
            std::lock_guard lock(mutex_);
            if (!subscribed_) ++violations;
            subscribed_ = false;
        }
        inner_.unsubscribe(channel);
    }
    void history(std::string_view channel, HistoryQuery query, HistoryCompletion done) override {
        inner_.history(channel, query, std::move(done));
    }
    EngineStats stats() const override { return inner_.stats(); }
    std::vector<EngineShardHealth> health() const override { return {}; }
    void publishEvent(std::string_view channel, std::string frame) override {
        inner_.publishEvent(channel, std::move(frame));
    }
    void trimHistory(std::string_view channel, StreamPosition upTo) override { inner_.trimHistory(channel, upTo); }
    void publishControl(std::string_view target, std::string payload) override {
        inner_.publishControl(target, std::move(payload));
    }
    void heartbeat(NodeHeartbeat heartbeat, std::chrono::milliseconds ttl) override {
        inner_.heartbeat(std::move(heartbeat), ttl);
    }
    void nodes(NodesCompletion done) override { inner_.nodes(std::move(done)); }

    bool subscribed() {
        std::lock_guard lock(mutex_);
        return subscribed_;
    }
    std::atomic<int> violations{0};
    std::atomic<int> subscribes{0};

private:
    MemoryBroker inner_;
    std::mutex mutex_;
    bool subscribed_ = false;
};

Config configWithDefaults() {
    Config config;
    config.channel_defaults.history_size = 100;
    config.channel_defaults.history_ttl = Seconds{300};
    return config;
}

TEST(NodeTest, InterestReachesTheEngineInOrderWhenLoopsRaceOnOneChannel) {
    auto broker = std::make_unique<InterestCheckingBroker>();
    InterestCheckingBroker* engine = broker.get();
    Node node(configWithDefaults(), "n", testing::oneNodeEngine(std::move(broker)));
    EventLoopPool loops(2);  // never started: only their indexes matter here
    node.attach(loops);

    // Two loops, each with one subscriber coming and going: the node's count goes 0 -> 1 -> 0
    // from both sides. The engine must end unsubscribed and never see two subscribes in a row.
    std::vector<std::thread> threads;
    std::atomic<int> ready{0};
    for (unsigned loop = 0; loop < 2; ++loop)
        threads.emplace_back([&node, &ready, loop] {
            ready.fetch_add(1);
            while (ready.load() < 2) std::this_thread::yield();
            for (int i = 0; i < 100000; ++i) {
                node.join("race", loop, true, [](std::optional<BrokerError>) {});
                node.unsubscribe("race", loop, true);
            }
        });
    for (auto& thread : threads) thread.join();
    EXPECT_EQ(engine->violations.load(), 0);
    EXPECT_FALSE(engine->subscribed()) << "no subscriber left";
    EXPECT_GT(engine->subscribes.load(), 0);

    node.join("race", 1, true, [](std::optional<BrokerError>) {});
    EXPECT_TRUE(engine->subscribed());
}

TEST(NodeTest, SubscribeReportsThePositionAndRecoversAllOrNothing) {
    Node node(configWithDefaults(), "n",
              testing::oneNodeEngine(std::make_unique<MemoryBroker>("m", [] { return std::int64_t{1}; })));
    EventLoopPool loops(1);
    node.attach(loops);
    std::string epoch;
    for (int i = 0; i < 5; ++i)
        node.publish(PublishRequest{"c", "1"},
                     [&](PublishResult r) { epoch = std::get<Published>(r).publication->epoch; });

    auto subscribe = [&](std::optional<StreamPosition> since) {
        SubscribeOutcome outcome;
        node.subscribe("c", 0, true, since, [&](auto r) { outcome = std::get<SubscribeOutcome>(std::move(r)); });
        node.unsubscribe("c", 0, true);
        return outcome;
    };
    SubscribeOutcome plain = subscribe(std::nullopt);
    EXPECT_EQ(plain.position.offset, 5u);
    EXPECT_FALSE(plain.recovered.has_value());
    SubscribeOutcome recovered = subscribe(StreamPosition{2, epoch});
    EXPECT_EQ(recovered.recovered, true);
    ASSERT_EQ(recovered.missed.size(), 3u);
    EXPECT_EQ(recovered.missed.front()->offset, 3u);
    EXPECT_EQ(recovered.missed.back()->offset, 5u);
    EXPECT_EQ(subscribe(StreamPosition{2, "other"}).recovered, false);
    EXPECT_TRUE(subscribe(StreamPosition{2, "other"}).missed.empty());
    EXPECT_EQ(subscribe(StreamPosition{6, epoch}).recovered, false);
    EXPECT_EQ(subscribe(StreamPosition{5, epoch}).recovered, true);
}

// --- a clustered engine: delivery reports and control messages across nodes ------------------

// A session as far as reports go: counts itself reached, and acks when told to.
class AckingSubscriber final : public Subscriber {
public:
    void deliver(const PublicationPtr& publication, const SharedFrame&) override {
        if (publication->report) publication->report->reached();
        delivered.push_back(publication);
    }
    void lost(const std::string&) override { ADD_FAILURE() << "no gap expected"; }
    void ackAll() {
        for (const auto& publication : delivered)
            if (publication->report) publication->report->acked();
    }
    std::vector<PublicationPtr> delivered;
};

class RecordingConnection final : public Connection {
public:
    void drain() override {}
    bool isWebSocket() const override { return true; }
    void disconnect(const DisconnectTarget& target) override { targets.push_back(target); }
    std::vector<DisconnectTarget> targets;
};

// One node of the fake cluster, with one event loop that is never started: poll() runs it.
struct ClusterNode {
    ClusterNode(fakes::FakeCluster& cluster, std::string name)
        : node(configWithDefaults(), std::move(name),
               testing::oneNodeEngine(std::make_unique<fakes::FakeClusterBroker>(cluster))),
          loops(1) {
        node.attach(loops);
    }
    void subscribe(Subscriber* subscriber, const std::string& channel) {
        LocalHub& hub = loops.at(0).hub();
        bool first = !hub.contains(channel);
        hub.add(channel, subscriber);
        hub.goLive(channel, subscriber, StreamPosition{0, "fake"});
        node.join(channel, 0, first, [](std::optional<BrokerError> error) { ASSERT_FALSE(error); });
    }
    std::size_t poll() {
        std::size_t handlers = loops.at(0).context().poll();
        loops.at(0).context().restart();
        return handlers;
    }

    Node node;
    EventLoopPool loops;
};

struct ReportOutcome {
    int calls = 0;
    std::uint64_t reached = 0;
    std::uint64_t acked = 0;
};

class ClusterReportTest : public ::testing::Test {
protected:
    std::shared_ptr<DeliveryReport> publishReported(ClusterNode& from, std::uint64_t wantedAcks) {
        auto report = std::make_shared<DeliveryReport>(wantedAcks, [this](std::uint64_t reached, std::uint64_t acked) {
            ++outcome.calls;
            outcome.reached = reached;
            outcome.acked = acked;
        });
        PublishRequest request{"news", "1", 1};
        request.report = report;
        from.node.publish(std::move(request), [this](PublishResult result) {
            ASSERT_TRUE(std::holds_alternative<Published>(result));
            nodesReached = std::get<Published>(result).nodes;
        });
        return report;
    }
    // Until no loop has anything left to do: deliveries, and control messages sent from loops.
    void settle() {
        while (a.poll() + b.poll() > 0) {
        }
    }

    fakes::FakeCluster cluster;
    ClusterNode a{cluster, "a"};
    ClusterNode b{cluster, "b"};
    ReportOutcome outcome;
    std::uint64_t nodesReached = 0;
};

TEST_F(ClusterReportTest, ReachedAndAckedAreSummedAcrossTwoNodes) {
    AckingSubscriber onA1, onA2, onB;
    a.subscribe(&onA1, "news");
    a.subscribe(&onA2, "news");
    b.subscribe(&onB, "news");

    auto report = publishReported(a, 3);
    EXPECT_EQ(nodesReached, 2u);
    a.poll();  // a's loop delivers: its part reports straight into the report, no round trip
    EXPECT_EQ(outcome.calls, 0);
    settle();  // b's loop delivers and reports "reached" to a through the engine
    ASSERT_EQ(onB.delivered.size(), 1u);
    EXPECT_EQ(outcome.calls, 0) << "3 reached, waiting for 3 acks";

    onA1.ackAll();
    onA2.ackAll();
    EXPECT_EQ(outcome.calls, 0);
    onB.ackAll();
    settle();  // b's ack travels to a
    EXPECT_EQ(outcome.calls, 1);
    EXPECT_EQ(outcome.reached, 3u);
    EXPECT_EQ(outcome.acked, 3u);
    // The publication other nodes got carries the origin, not the report; each got its own part.
    EXPECT_EQ(onB.delivered[0]->reportOrigin->node, "a");
    EXPECT_NE(onB.delivered[0]->report, onA1.delivered[0]->report);
}

TEST_F(ClusterReportTest, WithoutAcksTheReportEndsOnceEveryNodeReported) {
    AckingSubscriber onA, onB1, onB2;
    a.subscribe(&onA, "news");
    b.subscribe(&onB1, "news");
    b.subscribe(&onB2, "news");

    auto report = publishReported(b, 0);  // the caller owns it: the node only indexes it
    b.poll();
    EXPECT_EQ(outcome.calls, 0) << "a has not reported yet";
    settle();
    EXPECT_EQ(outcome.calls, 1);
    EXPECT_EQ(outcome.reached, 3u);
    EXPECT_EQ(outcome.acked, 0u);
}

TEST_F(ClusterReportTest, ANodeThatNeverReportsLeavesTheReportToItsTimeout) {
    AckingSubscriber onA, onB;
    a.subscribe(&onA, "news");
    b.subscribe(&onB, "news");
    auto report = publishReported(a, 0);
    a.poll();  // b's loop never runs: its report is lost with it
    EXPECT_EQ(outcome.calls, 0);
    report->expire();  // the API's bounded lifetime
    EXPECT_EQ(outcome.calls, 1);
    EXPECT_EQ(outcome.reached, 1u);
    settle();  // b's late "reached" finds no report and changes nothing
    EXPECT_EQ(outcome.calls, 1);
}

TEST_F(ClusterReportTest, MalformedAndUnknownControlMessagesAreIgnored) {
    AckingSubscriber onA;
    a.subscribe(&onA, "news");
    auto report = publishReported(a, 1);
    for (const char* payload :
         {"", "not json", "[]", R"({"type":1})", R"({"type":"reached","report":"1"})",
          R"({"type":"reached","report":1})", R"({"type":"ack","report":-1})", R"({"type":"ack","report":99})",
          R"({"type":"disconnect"})", R"({"type":"disconnect","user":"u","client":"c"})", R"({"type":"future"})"})
        a.node.onControl(payload);
    EXPECT_EQ(outcome.calls, 0);
    EXPECT_EQ(a.poll(), 1u) << "only the delivery";
    onA.ackAll();
    EXPECT_EQ(outcome.calls, 1);
    EXPECT_EQ(outcome.acked, 1u);
}

TEST_F(ClusterReportTest, ADisconnectReachesTheConnectionsOfEveryNode) {
    RecordingConnection onA, onB;
    a.loops.at(0).attach(&onA);
    b.loops.at(0).attach(&onB);
    a.node.disconnect(DisconnectTarget{"alice", "", true});
    settle();
    ASSERT_EQ(onA.targets.size(), 1u);
    ASSERT_EQ(onB.targets.size(), 1u);
    EXPECT_EQ(onB.targets[0].user, "alice");
    EXPECT_TRUE(onB.targets[0].reconnect);
    a.node.disconnect(DisconnectTarget{"", "conn-1", false});
    settle();
    ASSERT_EQ(onB.targets.size(), 2u);
    EXPECT_EQ(onB.targets[1].client, "conn-1");
    EXPECT_FALSE(onB.targets[1].reconnect);
    a.loops.at(0).detach(&onA);
    b.loops.at(0).detach(&onB);
}

}  // namespace
}  // namespace wspush
