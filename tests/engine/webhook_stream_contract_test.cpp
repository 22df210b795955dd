// The webhook-stream contract (include/wspush/webhook_stream.h), one typed suite that every stream
// must pass: the in-memory one and the Redis engine's, against a real redis-server (one shard and
// two). Then what only a stream shared by several nodes does (Redis): readers that never get the
// same event, a node that reads its unacknowledged events again after a restart, a dead node's
// events taken over by a live one, a stream deleted under the nodes, a shard that is down.
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <ostream>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "engine/memory/memory_webhook_stream.h"
#include "engine/redis/redis_broker.h"
#include "engine/redis/redis_webhook_stream.h"
#include "support/engine_loop.h"
#include "support/redis_server_process.h"
#include "support/started_redis_engine.h"
#include "wspush/webhook_stream.h"

namespace wspush {

void PrintTo(const WebhookStreamEvent& event, std::ostream* out) {
    *out << event.name << " " << event.json;
}

namespace {

using namespace std::chrono_literals;
using Clock = std::function<std::int64_t()>;

std::vector<WebhookStreamEvent> events(int first, int count) {
    std::vector<WebhookStreamEvent> made;
    for (int i = first; i < first + count; ++i)
        made.push_back(WebhookStreamEvent{"user_online", R"({"id":")" + std::to_string(i) + R"("})"});
    return made;
}

std::variant<std::size_t, BrokerError> tryAppend(WebhookStream& stream, std::vector<WebhookStreamEvent> events) {
    std::promise<std::variant<std::size_t, BrokerError>> promise;
    stream.append(std::move(events), [&](auto result) { promise.set_value(std::move(result)); });
    auto future = promise.get_future();
    EXPECT_EQ(future.wait_for(5s), std::future_status::ready);
    return future.get();
}

// How many were dropped.
std::size_t append(WebhookStream& stream, std::vector<WebhookStreamEvent> events) {
    auto result = tryAppend(stream, std::move(events));
    EXPECT_TRUE(std::holds_alternative<std::size_t>(result)) << std::get<BrokerError>(result).message;
    auto* dropped = std::get_if<std::size_t>(&result);
    return dropped ? *dropped : 0;
}

std::variant<std::vector<WebhookStreamEntry>, BrokerError> tryRead(WebhookStream& stream, std::size_t max) {
    std::promise<std::variant<std::vector<WebhookStreamEntry>, BrokerError>> promise;
    stream.read(max, [&](auto result) { promise.set_value(std::move(result)); });
    auto future = promise.get_future();
    EXPECT_EQ(future.wait_for(5s), std::future_status::ready);
    return future.get();
}

std::vector<WebhookStreamEntry> read(WebhookStream& stream, std::size_t max) {
    auto result = tryRead(stream, max);
    EXPECT_TRUE(std::holds_alternative<std::vector<WebhookStreamEntry>>(result))
        << std::get<BrokerError>(result).message;
    auto* entries = std::get_if<std::vector<WebhookStreamEntry>>(&result);
    return entries ? std::move(*entries) : std::vector<WebhookStreamEntry>{};
}

std::vector<WebhookStreamEvent> eventsOf(const std::vector<WebhookStreamEntry>& entries) {
    std::vector<WebhookStreamEvent> found;
    for (const WebhookStreamEntry& entry : entries) found.push_back(entry.event);
    return found;
}

std::vector<std::string> idsOf(const std::vector<WebhookStreamEntry>& entries) {
    std::vector<std::string> ids;
    for (const WebhookStreamEntry& entry : entries) ids.push_back(entry.entryId);
    return ids;
}

// ---- the contract, every stream ----------------------------------------------------------------

struct MemoryStream {
    explicit MemoryStream(std::size_t maxLength) : stream(std::make_unique<MemoryWebhookStream>(maxLength)) {}
    std::unique_ptr<WebhookStream> stream;
};

template <std::size_t Shards>
struct RedisStream {
    explicit RedisStream(std::size_t maxLength)
        : redis(testing::sharedRedisShards<Shards>("webhooks"), "node-a", [] { return std::int64_t{1700000000000}; }),
          stream(std::make_unique<RedisWebhookStream>(*redis.engine, "node-a", maxLength)) {
        redis.start();
    }
    // An acknowledgement may still be on its way, and its completion names the stream.
    ~RedisStream() { redis.engine->stop(); }

    testing::StartedRedisEngine<Shards> redis;
    std::unique_ptr<WebhookStream> stream;
};

template <class Stream>
class WebhookStreamContractTest : public ::testing::Test {
protected:
    static constexpr std::size_t kMaxLength = 5;

    WebhookStreamContractTest() : fixture(kMaxLength) {}

    WebhookStream& stream() { return *fixture.stream; }

    Stream fixture;
};

using Streams = ::testing::Types<MemoryStream, RedisStream<1>, RedisStream<2>>;
TYPED_TEST_SUITE(WebhookStreamContractTest, Streams);

TYPED_TEST(WebhookStreamContractTest, EventsAreReadInAppendOrderAndOnce) {
    EXPECT_EQ(append(this->stream(), events(0, 2)), 0u);
    EXPECT_EQ(append(this->stream(), events(2, 1)), 0u);
    auto entries = read(this->stream(), 10);
    EXPECT_EQ(eventsOf(entries), events(0, 3));
    auto ids = idsOf(entries);
    EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 3u) << "distinct ids";
    EXPECT_TRUE(read(this->stream(), 10).empty()) << "read, not acknowledged: not given again";
}

TYPED_TEST(WebhookStreamContractTest, AReadGivesAtMostMax) {
    append(this->stream(), events(0, 5));
    EXPECT_EQ(eventsOf(read(this->stream(), 2)), events(0, 2));
    EXPECT_EQ(eventsOf(read(this->stream(), 2)), events(2, 2));
    EXPECT_EQ(eventsOf(read(this->stream(), 2)), events(4, 1));
    EXPECT_TRUE(read(this->stream(), 0).empty());
}

TYPED_TEST(WebhookStreamContractTest, PastTheBoundTheNewestEventsAreDroppedAndCounted) {
    EXPECT_EQ(append(this->stream(), events(0, 3)), 0u);
    EXPECT_EQ(append(this->stream(), events(3, 4)), 2u) << "room for 2 of 4";
    EXPECT_EQ(append(this->stream(), events(7, 1)), 1u);
    EXPECT_EQ(eventsOf(read(this->stream(), 10)), events(0, 5));
}

TYPED_TEST(WebhookStreamContractTest, AcknowledgedEventsLeaveTheStreamAndFreeTheirRoom) {
    append(this->stream(), events(0, 5));
    auto first = read(this->stream(), 3);
    ASSERT_EQ(first.size(), 3u);
    EXPECT_EQ(append(this->stream(), events(5, 1)), 1u) << "read but unacknowledged events still count";
    this->stream().acknowledge(idsOf(first));
    // Redis: the acknowledgement has no completion; the append after it is on the same connection.
    EXPECT_EQ(append(this->stream(), events(5, 4)), 1u) << "room for the 3 acknowledged";
    EXPECT_EQ(eventsOf(read(this->stream(), 10)), events(3, 5));
    EXPECT_TRUE(read(this->stream(), 10).empty()) << "acknowledged events are never read again";
}

// ---- several nodes on one Redis stream ---------------------------------------------------------

class RedisWebhookStreamTest : public ::testing::Test {
protected:
    static constexpr std::size_t kMaxLength = 1000;

    // A node: its engine and its stream, which reads as the node's name.
    struct Node {
        Node(const RedisBrokerOptions& options, const std::string& name, Clock clock,
             std::chrono::milliseconds takeOverInterval, std::chrono::milliseconds takeOverIdle)
            : name(name),
              redis(options, name, std::move(clock)),
              stream(std::make_unique<RedisWebhookStream>(*redis.engine, name, kMaxLength,
                                                          RedisWebhookStreamOptions{takeOverInterval, takeOverIdle})) {
            redis.start();
        }
        ~Node() { redis.engine->stop(); }

        void heartbeat() { redis.engine->heartbeat(NodeHeartbeat{name, "{}"}, 15s); }

        std::string name;
        testing::StartedRedisEngine<1> redis;
        std::unique_ptr<RedisWebhookStream> stream;
    };

    // Idle 0 by default: a consumer is gone as soon as its node has no heartbeat.
    std::unique_ptr<Node> node(const std::string& name, std::chrono::milliseconds takeOverInterval = 5s,
                               std::chrono::milliseconds takeOverIdle = 0ms) {
        return std::make_unique<Node>(
            options, name, [this] { return now.load(); }, takeOverInterval, takeOverIdle);
    }

    static std::set<std::string> liveNodes(Node& asking) {
        std::promise<std::set<std::string>> promise;
        asking.redis.engine->nodes([&](auto result) {
            std::set<std::string> names;
            if (auto* nodes = std::get_if<std::vector<NodeHeartbeat>>(&result))
                for (const NodeHeartbeat& node : *nodes) names.insert(node.name);
            promise.set_value(std::move(names));
        });
        return promise.get_future().get();
    }
    // The live nodes as `asking` sees them, once they are `expected` (5 s at most): a heartbeat
    // has no completion.
    static std::set<std::string> awaitLiveNodes(Node& asking, const std::set<std::string>& expected) {
        auto deadline = std::chrono::steady_clock::now() + 5s;
        std::set<std::string> live = liveNodes(asking);
        while (live != expected && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(5ms);
            live = liveNodes(asking);
        }
        return live;
    }

    // What Redis holds, asked directly (the stream lives on the only shard).
    RedisReply redisCommand(const std::vector<std::string>& argv) {
        return testing::blockingCommand(options.shards.front().address.port, argv);
    }
    std::string key() const { return RedisKeys(options.prefix).webhooks(); }
    std::set<std::string> consumers() {
        std::set<std::string> names;
        RedisReply reply = redisCommand({"XINFO", "CONSUMERS", key(), "wspushd"});
        for (const RedisReply& consumer : reply.elements)
            if (consumer.isArray() && consumer.elements.size() >= 2)
                names.insert(std::string(consumer.elements[1].asString().value_or("")));
        return names;
    }

    std::atomic<std::int64_t> now{1700000000000};
    RedisBrokerOptions options = testing::sharedRedisShards<1>("webhook-nodes");
};

TEST_F(RedisWebhookStreamTest, NodesReadingAtOnceNeverGetTheSameEventAndTogetherGetAll) {
    // Every read also looks for gone consumers: a live reader's events must never be taken.
    auto a = node("a", 0ms);
    auto b = node("b", 0ms);
    a->heartbeat();
    b->heartbeat();
    ASSERT_EQ(awaitLiveNodes(*a, {"a", "b"}), (std::set<std::string>{"a", "b"}));
    constexpr int kEvents = 300;
    for (int first = 0; first < kEvents; first += 50) {
        Node& appending = first % 100 == 0 ? *a : *b;
        append(*appending.stream, events(first, 50));
    }

    std::atomic<int> received{0};
    auto readAll = [&](Node& node) {
        std::vector<WebhookStreamEntry> got;
        auto deadline = std::chrono::steady_clock::now() + 10s;
        while (received.load() < kEvents && std::chrono::steady_clock::now() < deadline) {
            auto entries = read(*node.stream, 7);
            received += static_cast<int>(entries.size());
            node.stream->acknowledge(idsOf(entries));
            got.insert(got.end(), entries.begin(), entries.end());
        }
        return got;
    };
    auto fromA = std::async(std::launch::async, readAll, std::ref(*a));
    auto fromB = std::async(std::launch::async, readAll, std::ref(*b));
    auto gotA = fromA.get(), gotB = fromB.get();

    std::multiset<std::string> all;
    for (const auto& entry : gotA) all.insert(entry.event.json);
    for (const auto& entry : gotB) all.insert(entry.event.json);
    std::multiset<std::string> expected;
    for (const auto& event : events(0, kEvents)) expected.insert(event.json);
    EXPECT_EQ(all, expected) << "each event once, to one of them (a: " << gotA.size() << ", b: " << gotB.size() << ")";
}

TEST_F(RedisWebhookStreamTest, ANodeStartedAgainUnderItsNameReadsWhatItHadNotAcknowledgedFirst) {
    auto a = node("a");
    append(*a->stream, events(0, 5));
    auto taken = read(*a->stream, 3);
    ASSERT_EQ(eventsOf(taken), events(0, 3));
    a.reset();

    a = node("a");
    auto again = read(*a->stream, 2);
    EXPECT_EQ(eventsOf(again), events(0, 2));
    EXPECT_EQ(idsOf(again), (std::vector<std::string>{taken[0].entryId, taken[1].entryId})) << "the same entries";
    EXPECT_EQ(eventsOf(read(*a->stream, 2)), events(2, 2)) << "the last one taken before, then a new one";
    EXPECT_EQ(eventsOf(read(*a->stream, 10)), events(4, 1));
    EXPECT_TRUE(read(*a->stream, 10).empty()) << "its own pending entries are read again once, not at every read";
}

TEST_F(RedisWebhookStreamTest, TheEventsOfANodeWithoutHeartbeatAreTakenOverByALiveOne) {
    auto dead = node("dead");
    append(*dead->stream, events(0, 4));
    ASSERT_EQ(read(*dead->stream, 3).size(), 3u);

    auto live = node("live", 0ms);
    live->heartbeat();
    ASSERT_EQ(awaitLiveNodes(*live, {"live"}), (std::set<std::string>{"live"}));
    auto entries = read(*live->stream, 10);
    EXPECT_EQ(eventsOf(entries), events(0, 4)) << "the dead node's three first, then the new one";
    EXPECT_EQ(consumers(), (std::set<std::string>{"live"})) << "a gone consumer with nothing pending is deleted";
    live->stream->acknowledge(idsOf(entries));
    EXPECT_TRUE(read(*live->stream, 10).empty());
    EXPECT_EQ(redisCommand({"XLEN", key()}).integer, 0) << "acknowledged entries are deleted";
}

TEST_F(RedisWebhookStreamTest, ANodesEventsAreTakenOverOnlyOnceItsHeartbeatExpired) {
    auto a = node("a");
    auto b = node("b", 100ms);
    a->heartbeat();
    b->heartbeat();
    ASSERT_EQ(awaitLiveNodes(*b, {"a", "b"}), (std::set<std::string>{"a", "b"}));
    append(*a->stream, events(0, 3));
    ASSERT_EQ(read(*a->stream, 2).size(), 2u);
    EXPECT_EQ(eventsOf(read(*b->stream, 10)), events(2, 1)) << "a lives: its events stay its own";

    now += 20000;  // past a's heartbeat ttl (15 s)
    b->heartbeat();
    ASSERT_EQ(awaitLiveNodes(*b, {"b"}), (std::set<std::string>{"b"}));
    std::this_thread::sleep_for(150ms);  // the next look is due
    EXPECT_EQ(eventsOf(read(*b->stream, 10)), events(0, 2));
}

TEST_F(RedisWebhookStreamTest, AReaderWithoutHeartbeatIsNotGoneWhileItReadsRecently) {
    // A node whose first heartbeat has not landed yet, or lost one, still reads every 100 ms.
    auto starting = node("starting");
    append(*starting->stream, events(0, 2));
    ASSERT_EQ(read(*starting->stream, 2).size(), 2u);
    auto other = node("other", 0ms, 1000ms);
    other->heartbeat();
    ASSERT_EQ(awaitLiveNodes(*other, {"other"}), (std::set<std::string>{"other"}));
    EXPECT_TRUE(read(*other->stream, 10).empty()) << "read 1 s ago at most: not gone";
    std::this_thread::sleep_for(1100ms);
    EXPECT_EQ(eventsOf(read(*other->stream, 10)), events(0, 2)) << "idle past 1 s and no heartbeat: gone";
}

TEST_F(RedisWebhookStreamTest, EventsTakenOverFromALiveReaderAndClaimedBackAreNotGivenItTwice) {
    auto a = node("a", 0ms);
    append(*a->stream, events(0, 2));
    auto taken = read(*a->stream, 10);
    ASSERT_EQ(taken.size(), 2u);
    auto b = node("b", 0ms);
    b->heartbeat();
    ASSERT_EQ(awaitLiveNodes(*b, {"b"}), (std::set<std::string>{"b"}));
    EXPECT_EQ(eventsOf(read(*b->stream, 10)), events(0, 2)) << "a has no heartbeat (yet): its events are taken";

    now += 20000;  // b's heartbeat expires; a's begins
    a->heartbeat();
    ASSERT_EQ(awaitLiveNodes(*a, {"a"}), (std::set<std::string>{"a"}));
    EXPECT_TRUE(read(*a->stream, 10).empty()) << "a still holds them: claimed back, not new to it";
    EXPECT_EQ(consumers(), (std::set<std::string>{"a"}));
    a->stream->acknowledge(idsOf(taken));
    EXPECT_TRUE(read(*a->stream, 10).empty());
    EXPECT_EQ(redisCommand({"XLEN", key()}).integer, 0);
}

TEST_F(RedisWebhookStreamTest, ADeletedStreamIsMadeAgainWithItsGroup) {
    auto a = node("a");
    append(*a->stream, events(0, 2));
    a->stream->acknowledge(idsOf(read(*a->stream, 10)));

    redisCommand({"DEL", key()});
    EXPECT_TRUE(read(*a->stream, 10).empty()) << "the group is made again, on an empty stream";
    redisCommand({"DEL", key()});
    EXPECT_EQ(append(*a->stream, events(2, 2)), 0u);
    EXPECT_EQ(eventsOf(read(*a->stream, 10)), events(2, 2)) << "appended before the group was made again";
}

TEST_F(RedisWebhookStreamTest, AShardThatIsDownFailsAppendsAndReadsAsUnavailable) {
    RedisBrokerOptions nowhere;
    RedisAddress address{"127.0.0.1", testing::pickFreePort()};
    nowhere.shards = {RedisShardOptions{address.describe(), address, std::nullopt}};
    nowhere.prefix = options.prefix;
    testing::EngineLoop loop;
    RedisBroker engine(nowhere, "down", [this] { return now.load(); });
    RedisWebhookStream stream(engine, "down", kMaxLength);
    testing::StartedRedisEngine<1>::NoHandler handler;
    engine.setEventHandler(&handler, "down");
    engine.start(loop.context());

    auto appended = tryAppend(stream, events(0, 1));
    ASSERT_TRUE(std::holds_alternative<BrokerError>(appended));
    EXPECT_EQ(std::get<BrokerError>(appended).code, ApiErrorCode::Unavailable);
    auto read = tryRead(stream, 10);
    ASSERT_TRUE(std::holds_alternative<BrokerError>(read));
    EXPECT_EQ(std::get<BrokerError>(read).code, ApiErrorCode::Unavailable);
    engine.stop();
}

}  // namespace
}  // namespace wspush
