#include "node/node.h"

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "engine/memory/memory_broker.h"

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
    Node node(configWithDefaults(), "n", std::move(broker));
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
    Node node(configWithDefaults(), "n", std::make_unique<MemoryBroker>("m", [] { return std::int64_t{1}; }));
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

}  // namespace
}  // namespace wspush
