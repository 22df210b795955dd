// The engine contract (include/wspush/broker.h), one typed suite that every engine must pass:
// the memory engine, and the Redis engine against real redis-server processes, with one shard and with two. Completions
// are awaited with timeouts, so an engine that completes on another thread passes the same tests.
#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "engine/memory/memory_broker.h"
#include "engine/redis/redis_broker.h"
#include "support/engine_loop.h"
#include "support/shared_redis_shards.h"
#include "wspush/broker.h"

namespace wspush {
namespace {

using namespace std::chrono_literals;

// Polls `condition` for up to 3 s: for calls without an answer (trimHistory), which take effect
// on the engine's connection soon after.
bool settles(const std::function<bool()>& condition) {
    auto deadline = std::chrono::steady_clock::now() + 3s;
    while (!condition()) {
        if (std::chrono::steady_clock::now() >= deadline) return condition();
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

class RecordingHandler : public BrokerEventHandler {
public:
    void onControl(std::string_view) override {}
    void onPublication(const PublicationPtr& publication) override {
        std::lock_guard lock(mutex_);
        seen_.push_back(publication);
    }
    std::vector<PublicationPtr> seen() {
        std::lock_guard lock(mutex_);
        return seen_;
    }
    std::vector<std::uint64_t> offsetsOf(const std::string& channel) {
        std::vector<std::uint64_t> offsets;
        for (const auto& p : seen())
            if (p->channel == channel) offsets.push_back(p->offset);
        return offsets;
    }

private:
    std::mutex mutex_;
    std::vector<PublicationPtr> seen_;
};

// Each engine under test: how to make one with a given clock (Unix milliseconds).
struct MemoryEngine {
    static std::unique_ptr<Broker> make(std::function<std::int64_t()> clock) {
        static std::atomic<int> instances{0};
        return std::make_unique<MemoryBroker>("contract" + std::to_string(++instances), std::move(clock));
    }
};

// The Redis engine against real redis-server processes (support/shared_redis_shards.h).
template <std::size_t Shards>
struct RedisEngine {
    static std::unique_ptr<Broker> make(std::function<std::int64_t()> clock) {
        RedisBrokerOptions options = testing::sharedRedisShards<Shards>("contract");
        std::string id = options.prefix;
        return std::make_unique<RedisBroker>(std::move(options), id, std::move(clock));
    }
};

template <class Engine>
class BrokerContractTest : public ::testing::Test {
protected:
    BrokerContractTest() : broker(Engine::make([this] { return now.load(); })) {
        broker->setEventHandler(&handler, "node-a");
        broker->start(loop.context());
        // An engine with storage shards starts serving once it reached them.
        auto deadline = std::chrono::steady_clock::now() + 5s;
        auto ready = [&] {
            for (const auto& shard : broker->health())
                if (!shard.ok) return false;
            return true;
        };
        while (!ready() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
        EXPECT_TRUE(ready());
    }

    static HistoryPolicy keep(std::size_t size, std::chrono::milliseconds ttl = 300s) { return {size, ttl}; }

    Published publish(const std::string& channel, const std::string& data = "1", HistoryPolicy history = {},
                      std::string key = {}) {
        PublishRequest request;
        request.channel = channel;
        request.data = data;
        request.history = history;
        request.idempotencyKey = std::move(key);
        request.idempotencyWindow = 60s;
        std::promise<PublishResult> promise;
        broker->publish(std::move(request), [&](PublishResult result) { promise.set_value(std::move(result)); });
        auto future = promise.get_future();
        EXPECT_EQ(future.wait_for(5s), std::future_status::ready);
        PublishResult result = future.get();
        EXPECT_TRUE(std::holds_alternative<Published>(result));
        return std::get<Published>(result);
    }

    HistoryPage history(const std::string& channel, HistoryQuery query) {
        std::promise<std::variant<HistoryPage, BrokerError>> promise;
        broker->history(channel, query, [&](auto result) { promise.set_value(std::move(result)); });
        auto future = promise.get_future();
        EXPECT_EQ(future.wait_for(5s), std::future_status::ready);
        auto result = future.get();
        EXPECT_TRUE(std::holds_alternative<HistoryPage>(result));
        return std::get<HistoryPage>(result);
    }

    StreamPosition position(const std::string& channel) { return history(channel, HistoryQuery{}).position; }

    void subscribe(const std::string& channel) {
        std::promise<std::optional<BrokerError>> promise;
        broker->subscribe(channel, [&](std::optional<BrokerError> error) { promise.set_value(std::move(error)); });
        auto future = promise.get_future();
        ASSERT_EQ(future.wait_for(5s), std::future_status::ready);
        EXPECT_FALSE(future.get().has_value());
    }

    static std::vector<std::uint64_t> offsetsOf(const HistoryPage& page) {
        std::vector<std::uint64_t> offsets;
        for (const auto& p : page.publications) offsets.push_back(p->offset);
        return offsets;
    }

    std::atomic<std::int64_t> now{1700000000000};
    RecordingHandler handler;
    testing::EngineLoop loop;
    std::unique_ptr<Broker> broker;
};

using Engines = ::testing::Types<MemoryEngine, RedisEngine<1>, RedisEngine<2>>;
TYPED_TEST_SUITE(BrokerContractTest, Engines);

using Offsets = std::vector<std::uint64_t>;

TYPED_TEST(BrokerContractTest, OffsetsStartAtOneAndGrowByOnePerChannelWithinAnEpoch) {
    this->subscribe("a");
    auto first = this->publish("a").publication;
    auto second = this->publish("a").publication;
    auto other = this->publish("b").publication;
    EXPECT_EQ(first->offset, 1u);
    EXPECT_EQ(second->offset, 2u);
    EXPECT_EQ(other->offset, 1u);
    EXPECT_EQ(first->epoch, second->epoch);
    EXPECT_FALSE(first->epoch.empty());
    EXPECT_NE(first->mid, second->mid);
    EXPECT_EQ(first->timestampMs, this->now.load());
    EXPECT_EQ(this->position("a").offset, 2u);
    EXPECT_EQ(this->position("a").epoch, first->epoch);
}

TYPED_TEST(BrokerContractTest, AChannelNeverSeenHasPositionZero) {
    StreamPosition position = this->position("fresh");
    EXPECT_EQ(position.offset, 0u);
    EXPECT_FALSE(position.epoch.empty());
    EXPECT_TRUE(this->history("fresh", HistoryQuery{0, 100, false}).publications.empty());
}

TYPED_TEST(BrokerContractTest, ASubscribedNodeSeesEveryPublicationBeforeItsPublishCompletes) {
    this->subscribe("news");
    for (int i = 0; i < 5; ++i) {
        auto published = this->publish("news").publication;
        auto offsets = this->handler.offsetsOf("news");
        ASSERT_FALSE(offsets.empty());
        EXPECT_EQ(offsets.back(), published->offset);
    }
    EXPECT_EQ(this->handler.offsetsOf("news"), (Offsets{1, 2, 3, 4, 5}));
}

TYPED_TEST(BrokerContractTest, ConcurrentPublishersGetGapFreeOffsetsDeliveredInOrder) {
    this->subscribe("hot");
    constexpr int kThreads = 4, kEach = 500;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([this] {
            for (int i = 0; i < kEach; ++i) {
                PublishRequest request;
                request.channel = "hot";
                request.data = "1";
                request.history = {100, std::chrono::milliseconds(300000)};
                this->broker->publish(std::move(request), [](PublishResult) {});
            }
        });
    for (auto& thread : threads) thread.join();
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (this->handler.offsetsOf("hot").size() < kThreads * kEach && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(5ms);
    auto offsets = this->handler.offsetsOf("hot");
    ASSERT_EQ(offsets.size(), std::size_t{kThreads * kEach});
    for (std::size_t i = 0; i < offsets.size(); ++i) ASSERT_EQ(offsets[i], i + 1) << "in offset order, no gap";
    EXPECT_EQ(this->offsetsOf(this->history("hot", HistoryQuery{0, 1000, false})).front(), kThreads * kEach - 99u)
        << "history holds the newest, contiguous";
}

TYPED_TEST(BrokerContractTest, HistoryKeepsTheNewestHistorySizePublications) {
    for (int i = 0; i < 8; ++i) this->publish("h", std::to_string(i), this->keep(5));
    HistoryPage page = this->history("h", HistoryQuery{0, 100, false});
    EXPECT_EQ(this->offsetsOf(page), (Offsets{4, 5, 6, 7, 8}));
    EXPECT_EQ(page.position.offset, 8u);
    EXPECT_EQ(page.publications.front()->data, "3");
    EXPECT_EQ(page.publications.front()->channel, "h");
    EXPECT_EQ(page.publications.front()->epoch, page.position.epoch);
}

TYPED_TEST(BrokerContractTest, HistoryBoundedByBytesKeepsTheNewestThatFit) {
    std::string data = "\"" + std::string(200, 'x') + "\"";
    HistoryPolicy policy = this->keep(100);
    policy.maxBytes = 800;  // three messages of ~220-240 bytes (data, mid, and the engine's framing)
    for (int i = 0; i < 6; ++i) this->publish("bytes", data, policy);
    EXPECT_EQ(this->offsetsOf(this->history("bytes", {0, 100, false})), (Offsets{4, 5, 6}));
    // The bound follows trims: after one, room comes back for exactly what left.
    this->broker->trimHistory("bytes", StreamPosition{5, this->position("bytes").epoch});
    EXPECT_TRUE(settles([&] { return this->history("bytes", {0, 100, false}).publications.size() == 1; }));
    for (int i = 0; i < 2; ++i) this->publish("bytes", data, policy);
    EXPECT_EQ(this->offsetsOf(this->history("bytes", {0, 100, false})), (Offsets{6, 7, 8}));
    // The newest stays even alone past the bound.
    this->publish("bytes", "\"" + std::string(1000, 'y') + "\"", policy);
    EXPECT_EQ(this->offsetsOf(this->history("bytes", {0, 100, false})), (Offsets{9}));
}

TYPED_TEST(BrokerContractTest, TrimHistoryDropsUpToAnOffsetOfTheSameEpochOnly) {
    for (int i = 0; i < 5; ++i) this->publish("trim", "1", this->keep(100));
    StreamPosition top = this->position("trim");
    this->broker->trimHistory("trim", StreamPosition{3, "another-epoch"});
    this->broker->trimHistory("trim", StreamPosition{3, top.epoch});
    EXPECT_TRUE(settles([&] { return this->history("trim", {0, 100, false}).publications.size() == 2; }));
    HistoryPage page = this->history("trim", {0, 100, false});
    EXPECT_EQ(this->offsetsOf(page), (Offsets{4, 5})) << "the other epoch's trim did nothing";
    EXPECT_EQ(page.position.offset, 5u) << "the position stays";
    this->broker->trimHistory("trim", top);
    EXPECT_TRUE(settles([&] { return this->history("trim", {0, 100, false}).publications.empty(); }));
    EXPECT_EQ(this->publish("trim", "1", this->keep(100)).publication->offset, 6u);
}

TYPED_TEST(BrokerContractTest, HistoryWindowsForwardReverseAndLimit) {
    for (int i = 0; i < 10; ++i) this->publish("w", "1", this->keep(100));
    EXPECT_EQ(this->offsetsOf(this->history("w", {0, 3, false})), (Offsets{1, 2, 3})) << "forward from the oldest";
    EXPECT_EQ(this->offsetsOf(this->history("w", {3, 3, false})), (Offsets{4, 5, 6}))
        << "a page ends where the next begins";
    EXPECT_EQ(this->offsetsOf(this->history("w", {8, 100, false})), (Offsets{9, 10}));
    EXPECT_TRUE(this->history("w", {10, 100, false}).publications.empty());
    EXPECT_TRUE(this->history("w", {50, 100, false}).publications.empty());
    EXPECT_EQ(this->offsetsOf(this->history("w", {0, 3, true})), (Offsets{10, 9, 8})) << "reverse from the newest";
    EXPECT_EQ(this->offsetsOf(this->history("w", {8, 3, true})), (Offsets{7, 6, 5}));
    EXPECT_EQ(this->offsetsOf(this->history("w", {2, 3, true})), (Offsets{1}));
    EXPECT_TRUE(this->history("w", {1, 3, true}).publications.empty());
    EXPECT_EQ(this->offsetsOf(this->history("w", {50, 2, true})), (Offsets{10, 9}));
    HistoryPage positionOnly = this->history("w", {0, 0, false});
    EXPECT_TRUE(positionOnly.publications.empty());
    EXPECT_EQ(positionOnly.position.offset, 10u);
}

TYPED_TEST(BrokerContractTest, HistoryExpiresAfterItsTtl) {
    this->publish("t", "old", this->keep(100, 10s));
    this->now += 6000;
    this->publish("t", "new", this->keep(100, 10s));
    EXPECT_EQ(this->offsetsOf(this->history("t", {0, 100, false})), (Offsets{1, 2}));
    this->now += 5000;  // the first is 11 s old
    EXPECT_EQ(this->offsetsOf(this->history("t", {0, 100, false})), (Offsets{2}));
    this->now += 6000;
    HistoryPage page = this->history("t", {0, 100, false});
    EXPECT_TRUE(page.publications.empty());
    EXPECT_EQ(page.position.offset, 2u) << "the stream keeps its offset when its history expires";
}

TYPED_TEST(BrokerContractTest, AChannelWithoutHistoryKeepsNone) {
    this->publish("plain");
    HistoryPage page = this->history("plain", {0, 100, false});
    EXPECT_TRUE(page.publications.empty());
    EXPECT_EQ(page.position.offset, 1u);
}

TYPED_TEST(BrokerContractTest, AStreamWithHistoryOutlivesItsSubscribers) {
    this->subscribe("kept");
    auto first = this->publish("kept", "1", this->keep(10)).publication;
    this->broker->unsubscribe("kept");
    this->publish("kept", "2", this->keep(10));
    HistoryPage page = this->history("kept", {0, 100, false});
    EXPECT_EQ(page.position.epoch, first->epoch);
    EXPECT_EQ(this->offsetsOf(page), (Offsets{1, 2}));
}

TYPED_TEST(BrokerContractTest, HistoryNeverHoldsADeliveryReport) {
    auto report = std::make_shared<DeliveryReport>(0, [](std::uint64_t, std::uint64_t) {});
    PublishRequest request;
    request.channel = "r";
    request.data = "1";
    request.history = this->keep(10);
    request.report = report;
    this->broker->publish(std::move(request), [](PublishResult) {});
    HistoryPage page = this->history("r", {0, 10, false});
    ASSERT_EQ(page.publications.size(), 1u);
    EXPECT_EQ(page.publications[0]->report, nullptr);
}

TYPED_TEST(BrokerContractTest, AnIdempotencyKeyPublishesOncePerChannel) {
    this->subscribe("k");
    Published first = this->publish("k", "1", this->keep(10), "key-1");
    Published again = this->publish("k", "1", this->keep(10), "key-1");
    EXPECT_FALSE(first.duplicate);
    EXPECT_TRUE(again.duplicate);
    EXPECT_EQ(again.publication->offset, first.publication->offset);
    EXPECT_EQ(again.publication->epoch, first.publication->epoch);
    EXPECT_EQ(again.publication->mid, first.publication->mid);
    EXPECT_EQ(this->handler.offsetsOf("k"), Offsets{1}) << "a duplicate is delivered to nobody";
    EXPECT_EQ(this->position("k").offset, 1u) << "and takes no offset";
    EXPECT_EQ(this->publish("k", "2", this->keep(10), "key-2").publication->offset, 2u);
    EXPECT_FALSE(this->publish("other", "1", {}, "key-1").duplicate) << "keys are scoped by channel";
    this->now += 61000;  // past the window
    EXPECT_FALSE(this->publish("k", "1", this->keep(10), "key-1").duplicate);
}

}  // namespace
}  // namespace wspush
