// The Redis engine as several nodes see it, against a real redis-server: what the typed contract
// suite (tests/engine/broker_contract_test.cpp) cannot say about one broker alone.
#include "engine/redis/redis_broker.h"

#include <atomic>
#include <future>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "support/engine_loop.h"
#include "support/redis_server_process.h"

namespace wspush {
namespace {

using namespace std::chrono_literals;
using testing::EngineLoop;
using testing::RedisServerProcess;

class RecordingNode : public BrokerEventHandler {
public:
    void onPublication(const PublicationPtr& publication) override {
        std::lock_guard lock(mutex_);
        publications_.push_back(publication);
    }
    void onControl(std::string_view payload) override {
        std::lock_guard lock(mutex_);
        controls_.emplace_back(payload);
    }
    std::vector<std::uint64_t> offsetsOf(const std::string& channel) {
        std::lock_guard lock(mutex_);
        std::vector<std::uint64_t> offsets;
        for (const auto& p : publications_)
            if (p->channel == channel) offsets.push_back(p->offset);
        return offsets;
    }
    std::vector<PublicationPtr> publications() {
        std::lock_guard lock(mutex_);
        return publications_;
    }
    std::vector<std::string> controls() {
        std::lock_guard lock(mutex_);
        return controls_;
    }

private:
    std::mutex mutex_;
    std::vector<PublicationPtr> publications_;
    std::vector<std::string> controls_;
};

template <class Condition>
bool eventually(Condition condition, std::chrono::milliseconds timeout = 5s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (condition()) return true;
        std::this_thread::sleep_for(5ms);
    }
    return condition();
}

class RedisBrokerTest : public ::testing::Test {
protected:
    struct TestNode {
        RecordingNode handler;
        EngineLoop loop;
        std::unique_ptr<RedisBroker> broker;
    };

    std::unique_ptr<TestNode> makeNode(const std::string& name, RedisBrokerOptions options = {}) {
        auto node = std::make_unique<TestNode>();
        options.shards = {RedisShardOptions{server.address(), server.redisAddress(), std::nullopt}};
        options.prefix = prefix;
        options.connectTimeout = 500ms;
        options.commandTimeout = 500ms;
        node->broker = std::make_unique<RedisBroker>(options, name, [this] { return now.load(); });
        node->broker->setEventHandler(&node->handler, name);
        node->broker->start(node->loop.context());
        EXPECT_TRUE(eventually([&] {
            auto health = node->broker->health();
            return !health.empty() && health[0].ok;
        })) << "the node connects";
        return node;
    }

    static std::variant<Published, BrokerError> publish(Broker& broker, const std::string& channel,
                                                        std::string key = {}) {
        PublishRequest request;
        request.channel = channel;
        request.data = "{}";
        request.history = {100, 300s};
        request.idempotencyKey = std::move(key);
        request.idempotencyWindow = 60s;
        std::promise<PublishResult> promise;
        broker.publish(std::move(request), [&](PublishResult result) { promise.set_value(std::move(result)); });
        auto future = promise.get_future();
        EXPECT_EQ(future.wait_for(5s), std::future_status::ready);
        return future.get();
    }
    static Published published(Broker& broker, const std::string& channel, std::string key = {}) {
        auto result = publish(broker, channel, std::move(key));
        EXPECT_TRUE(std::holds_alternative<Published>(result));
        return std::get<Published>(result);
    }
    static void subscribe(Broker& broker, const std::string& channel) {
        std::promise<std::optional<BrokerError>> promise;
        broker.subscribe(channel, [&](std::optional<BrokerError> error) { promise.set_value(std::move(error)); });
        auto future = promise.get_future();
        ASSERT_EQ(future.wait_for(5s), std::future_status::ready);
        EXPECT_FALSE(future.get().has_value());
    }

    RedisServerProcess server;
    std::string prefix = "t" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
                         ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::atomic<std::int64_t> now{1700000000000};
};

TEST_F(RedisBrokerTest, APublicationOnOneNodeReachesTheOtherInOffsetOrder) {
    auto a = makeNode("a");
    auto b = makeNode("b");
    subscribe(*b->broker, "news");
    for (int i = 0; i < 200; ++i) EXPECT_EQ(published(*a->broker, "news").nodes, 1u) << "only b receives it";
    ASSERT_TRUE(eventually([&] { return b->handler.offsetsOf("news").size() == 200; }))
        << b->handler.offsetsOf("news").size();
    auto offsets = b->handler.offsetsOf("news");
    for (std::size_t i = 0; i < offsets.size(); ++i) ASSERT_EQ(offsets[i], i + 1);
    EXPECT_TRUE(a->handler.offsetsOf("news").empty()) << "a did not subscribe";
    subscribe(*a->broker, "news");
    EXPECT_EQ(published(*a->broker, "news").nodes, 2u) << "the nodes a delivery report waits for";
}

TEST_F(RedisBrokerTest, AHistoryPageIsReadAgainWithEvalWhenRedisForgotTheScript) {
    auto a = makeNode("a");
    for (int i = 0; i < 5; ++i) published(*a->broker, "h");
    // The position script runs inside a MULTI there, where NOSCRIPT shows only in EXEC's reply.
    for (bool flush : {false, true}) {
        if (flush) {
            ASSERT_EQ(server.command({"SCRIPT", "FLUSH"}).asString(), "OK");
        }
        // Shared: a read still pending when an assertion fails is completed by the engine's stop.
        auto promise = std::make_shared<std::promise<std::variant<HistoryPage, BrokerError>>>();
        a->broker->history("h", HistoryQuery{2, 10, false}, [promise](std::variant<HistoryPage, BrokerError> result) {
            promise->set_value(std::move(result));
        });
        auto future = promise->get_future();
        ASSERT_EQ(future.wait_for(5s), std::future_status::ready);
        auto result = future.get();
        ASSERT_TRUE(std::holds_alternative<HistoryPage>(result)) << std::get<BrokerError>(result).message;
        const HistoryPage& page = std::get<HistoryPage>(result);
        EXPECT_EQ(page.position.offset, 5u);
        ASSERT_EQ(page.publications.size(), 3u) << "after flush: " << flush;
        EXPECT_EQ(page.publications.front()->offset, 3u);
        EXPECT_EQ(page.publications.back()->offset, 5u);
    }
}

TEST_F(RedisBrokerTest, AReportOriginTravelsWithThePublication) {
    auto a = makeNode("a");
    auto b = makeNode("b");
    subscribe(*b->broker, "r");
    PublishRequest request;
    request.channel = "r";
    request.data = "1";
    request.reportOrigin = ReportOrigin{"a", 42};
    std::promise<PublishResult> done;
    a->broker->publish(std::move(request), [&](PublishResult result) { done.set_value(std::move(result)); });
    ASSERT_EQ(done.get_future().wait_for(5s), std::future_status::ready);
    ASSERT_TRUE(eventually([&] { return b->handler.publications().size() == 1; }));
    auto received = b->handler.publications()[0];
    ASSERT_NE(received->reportOrigin, nullptr);
    EXPECT_EQ(received->reportOrigin->node, "a");
    EXPECT_EQ(received->reportOrigin->id, 42u);
}

TEST_F(RedisBrokerTest, ControlMessagesReachOneNodeOrEvery) {
    auto a = makeNode("a");
    auto b = makeNode("b");
    a->broker->publishControl("b", "for b");
    a->broker->publishControl("", "for all");
    ASSERT_TRUE(eventually([&] { return b->handler.controls().size() == 2 && a->handler.controls().size() == 1; }));
    EXPECT_EQ(b->handler.controls(), (std::vector<std::string>{"for b", "for all"}));
    EXPECT_EQ(a->handler.controls(), (std::vector<std::string>{"for all"}));
}

TEST_F(RedisBrokerTest, NodesListsTheHeartbeatsNotExpired) {
    auto a = makeNode("a");
    auto b = makeNode("b");
    a->broker->heartbeat(NodeHeartbeat{"a", R"({"n":1})"}, 15s);
    b->broker->heartbeat(NodeHeartbeat{"b", R"({"n":2})"}, 5s);
    auto list = [&] {
        std::promise<std::variant<std::vector<NodeHeartbeat>, BrokerError>> promise;
        a->broker->nodes([&](auto result) { promise.set_value(std::move(result)); });
        auto result = promise.get_future().get();
        std::vector<std::string> names;
        for (const auto& node : std::get<std::vector<NodeHeartbeat>>(result)) names.push_back(node.name);
        return names;
    };
    EXPECT_TRUE(eventually([&] { return list() == std::vector<std::string>{"a", "b"}; }));
    now += 10000;  // b's heartbeat is 10 s old, with a 5 s ttl
    EXPECT_EQ(list(), std::vector<std::string>{"a"});
}

TEST_F(RedisBrokerTest, AnIdempotencyKeyHoldsAcrossNodes) {
    auto a = makeNode("a");
    auto b = makeNode("b");
    Published first = published(*a->broker, "k", "key-1");
    Published retry = published(*b->broker, "k", "key-1");
    EXPECT_FALSE(first.duplicate);
    EXPECT_TRUE(retry.duplicate);
    EXPECT_EQ(retry.publication->offset, first.publication->offset);
    EXPECT_EQ(retry.publication->mid, first.publication->mid);
}

TEST_F(RedisBrokerTest, AGapInWhatANodeReceivedIsRepairedFromHistory) {
    auto a = makeNode("a");
    auto b = makeNode("b");
    subscribe(*b->broker, "g");
    published(*a->broker, "g");
    ASSERT_TRUE(eventually([&] { return b->handler.offsetsOf("g").size() == 1; }));
    // A publication whose PUBLISH never reached b: in history and counted, never sent.
    RedisKeys keys(prefix);
    Publication lost;
    lost.mid = "lost";
    lost.timestampMs = now.load();
    lost.data = "\"lost\"";
    ASSERT_EQ(server.command({"HINCRBY", keys.meta("g"), "s", "1"}).integer, 2);
    ASSERT_FALSE(
        server.command({"XADD", keys.stream("g"), "2-0", "d", "0\n" + std::to_string(now.load()) + "\nlost\n\"lost\""})
            .isError());
    published(*a->broker, "g");
    ASSERT_TRUE(eventually([&] { return b->handler.offsetsOf("g").size() == 3; }));
    EXPECT_EQ(b->handler.offsetsOf("g"), (std::vector<std::uint64_t>{1, 2, 3}));
    EXPECT_EQ(b->handler.publications()[1]->mid, "lost");
    EXPECT_EQ(b->broker->stats().gapsFound, 1u);
    EXPECT_EQ(b->broker->stats().gapsRepaired, 1u);
}

TEST_F(RedisBrokerTest, WhatWasPublishedWhilePubSubWasDownIsRecoveredAfterTheReconnect) {
    auto a = makeNode("a");
    RedisBrokerOptions options;
    options.positionCheckInterval = 1h;  // only the reconnect may find it
    auto b = makeNode("b", options);
    subscribe(*b->broker, "p");
    published(*a->broker, "p");
    ASSERT_TRUE(eventually([&] { return b->handler.offsetsOf("p").size() == 1; }));
    // Drop every pub/sub connection and publish before they are back.
    server.command({"CLIENT", "KILL", "TYPE", "pubsub"});
    for (int i = 0; i < 5; ++i) published(*a->broker, "p");
    ASSERT_TRUE(eventually([&] { return b->handler.offsetsOf("p").size() == 6; }));
    EXPECT_EQ(b->handler.offsetsOf("p"), (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6}));
}

TEST_F(RedisBrokerTest, AnUnreachableRedisAnswersUnavailableQuicklyAndItResumesByItself) {
    auto a = makeNode("a");
    subscribe(*a->broker, "o");
    published(*a->broker, "o");
    server.stop();
    ASSERT_TRUE(eventually([&] { return !a->broker->health()[0].ok; }));
    EXPECT_EQ(a->broker->stats().shardsDown, 1u);
    auto started = std::chrono::steady_clock::now();
    auto result = publish(*a->broker, "o");
    ASSERT_TRUE(std::holds_alternative<BrokerError>(result));
    EXPECT_EQ(std::get<BrokerError>(result).code, ApiErrorCode::Unavailable);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 1s) << "within command_timeout";
    server.start();
    ASSERT_TRUE(eventually([&] { return a->broker->health()[0].ok; }, 10s));
    Published after = published(*a->broker, "o");
    EXPECT_EQ(after.publication->offset, 1u) << "Redis lost everything (no persistence)";
    ASSERT_TRUE(eventually([&] { return a->handler.offsetsOf("o").size() == 2; }));
    auto received = a->handler.publications();
    EXPECT_NE(received[1]->epoch, received[0]->epoch) << "a new epoch: subscribers are told, never a silent gap";
}

TEST_F(RedisBrokerTest, APausedRedisTimesOutPublishesWithUnavailable) {
    auto a = makeNode("a");
    server.pause();
    auto started = std::chrono::steady_clock::now();
    auto result = publish(*a->broker, "slow");
    server.resume();
    ASSERT_TRUE(std::holds_alternative<BrokerError>(result));
    EXPECT_EQ(std::get<BrokerError>(result).code, ApiErrorCode::Unavailable);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
    ASSERT_TRUE(eventually([&] { return a->broker->health()[0].ok; }, 10s));
    EXPECT_TRUE(std::holds_alternative<Published>(publish(*a->broker, "slow")));
}

}  // namespace
}  // namespace wspush
