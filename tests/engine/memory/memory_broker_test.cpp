#include "engine/memory/memory_broker.h"

#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace wspush {
namespace {

class RecordingHandler : public BrokerEventHandler {
public:
    void onControl(std::string_view) override {}
    void onPublication(const PublicationPtr& publication) override {
        std::lock_guard lock(mutex);
        seen.push_back(publication);
    }
    std::vector<PublicationPtr> snapshot() {
        std::lock_guard lock(mutex);
        return seen;
    }
    std::mutex mutex;
    std::vector<PublicationPtr> seen;
};

class MemoryBrokerTest : public ::testing::Test {
protected:
    MemoryBrokerTest() : broker("inst-a", [this] { return now.load(); }) { broker.setEventHandler(&handler, "node-a"); }

    PublicationPtr publish(MemoryBroker& target, const std::string& channel, const std::string& data = "1") {
        PublicationPtr result;
        target.publish(PublishRequest{channel, data}, [&](PublishResult r) {
            ASSERT_TRUE(std::holds_alternative<Published>(r));
            result = std::get<Published>(r).publication;
        });
        EXPECT_NE(result, nullptr) << "MemoryBroker completes synchronously";
        return result;
    }
    PublicationPtr publish(const std::string& channel, const std::string& data = "1") {
        return publish(broker, channel, data);
    }

    StreamPosition position(const std::string& channel) {
        StreamPosition result{~0ull, "<unset>"};
        broker.history(channel, HistoryQuery{}, [&](std::variant<HistoryPage, BrokerError> r) {
            ASSERT_TRUE(std::holds_alternative<HistoryPage>(r));
            result = std::get<HistoryPage>(r).position;
        });
        return result;
    }

    std::atomic<std::int64_t> now{1700000000000};
    RecordingHandler handler;
    MemoryBroker broker;
};

TEST_F(MemoryBrokerTest, OffsetsStartAtOneAndIncreaseByOnePerChannel) {
    EXPECT_EQ(publish("news")->offset, 1u);
    EXPECT_EQ(publish("news")->offset, 2u);
    EXPECT_EQ(publish("news")->offset, 3u);
}

TEST_F(MemoryBrokerTest, ChannelsHaveIndependentOffsets) {
    EXPECT_EQ(publish("a")->offset, 1u);
    EXPECT_EQ(publish("a")->offset, 2u);
    EXPECT_EQ(publish("b")->offset, 1u);
    EXPECT_EQ(publish("a")->offset, 3u);
    EXPECT_EQ(publish("b")->offset, 2u);
}

TEST_F(MemoryBrokerTest, PublicationCarriesChannelAndData) {
    PublicationPtr p = publish("chat:1", R"({"text":"hi"})");
    EXPECT_EQ(p->channel, "chat:1");
    EXPECT_EQ(p->data, R"({"text":"hi"})");
}

TEST_F(MemoryBrokerTest, EpochIsStablePerChannelAndDiffersBetweenChannels) {
    PublicationPtr a1 = publish("a");
    PublicationPtr a2 = publish("a");
    PublicationPtr b1 = publish("b");
    EXPECT_FALSE(a1->epoch.empty());
    EXPECT_EQ(a1->epoch, a2->epoch);
    EXPECT_NE(a1->epoch, b1->epoch);
}

TEST_F(MemoryBrokerTest, EpochsDifferBetweenInstances) {
    RecordingHandler otherHandler;
    MemoryBroker other("inst-b", [] { return std::int64_t{0}; });
    other.setEventHandler(&otherHandler, "node-b");
    PublicationPtr mine = publish("news");
    PublicationPtr theirs = publish(other, "news");
    EXPECT_EQ(theirs->offset, 1u);
    EXPECT_NE(mine->epoch, theirs->epoch);
    EXPECT_NE(mine->mid, theirs->mid);
}

TEST_F(MemoryBrokerTest, MidsAreUnique) {
    std::set<std::string> mids;
    for (int i = 0; i < 50; ++i) {
        mids.insert(publish("a")->mid);
        mids.insert(publish("b")->mid);
    }
    EXPECT_EQ(mids.size(), 100u);
    EXPECT_EQ(publish("a")->mid.rfind("inst-a", 0), 0u) << "mids carry the instance id";
}

TEST_F(MemoryBrokerTest, TimestampComesFromTheClock) {
    EXPECT_EQ(publish("news")->timestampMs, 1700000000000);
    now = 1700000000500;
    EXPECT_EQ(publish("news")->timestampMs, 1700000000500);
}

TEST_F(MemoryBrokerTest, PositionBeforeAndAfterPublishes) {
    StreamPosition before = position("news");
    EXPECT_EQ(before.offset, 0u);
    EXPECT_FALSE(before.epoch.empty());
    PublicationPtr p1 = publish("news");
    PublicationPtr p2 = publish("news");
    StreamPosition after = position("news");
    EXPECT_EQ(after.offset, 2u);
    EXPECT_EQ(after.epoch, p2->epoch);
    // Asking for the position first must not start a different epoch than publishing would.
    EXPECT_EQ(before.epoch, p1->epoch);
    EXPECT_EQ(position("other").offset, 0u);
    EXPECT_EQ(position("news").offset, 2u);  // reading does not move it
}

TEST_F(MemoryBrokerTest, HandlerSeesThePublicationBeforeCompletion) {
    bool completed = false;
    broker.publish(PublishRequest{"news", "1"}, [&](PublishResult r) {
        auto seen = handler.snapshot();
        ASSERT_EQ(seen.size(), 1u);
        EXPECT_EQ(seen[0], std::get<Published>(r).publication) << "the handler got the same publication object";
        completed = true;
    });
    EXPECT_TRUE(completed);
}

TEST_F(MemoryBrokerTest, HandlerSeesEveryPublicationOfEveryChannel) {
    publish("a");
    publish("b");
    publish("a");
    auto seen = handler.snapshot();
    ASSERT_EQ(seen.size(), 3u);
    EXPECT_EQ(seen[0]->channel, "a");
    EXPECT_EQ(seen[1]->channel, "b");
    EXPECT_EQ(seen[2]->channel, "a");
    EXPECT_EQ(seen[2]->offset, 2u);
}

TEST_F(MemoryBrokerTest, ConcurrentPublishersGetGapFreeOffsetsInOrder) {
    constexpr int kThreads = 4;
    constexpr int kPerThread = 2000;
    constexpr std::uint64_t kTotal = kThreads * kPerThread;
    std::vector<std::vector<std::uint64_t>> offsets(kThreads);
    std::vector<std::thread> threads;
    std::atomic<bool> go{false};
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            while (!go.load()) std::this_thread::yield();
            for (int i = 0; i < kPerThread; ++i) {
                broker.publish(PublishRequest{"hot", std::to_string(t)}, [&offsets, t](PublishResult r) {
                    offsets[t].push_back(std::get<Published>(r).publication->offset);
                });
                // Traffic on other channels shares shards and counters with "hot".
                if (i % 100 == 0) broker.publish(PublishRequest{"cold" + std::to_string(t), "0"}, [](PublishResult) {});
            }
        });
    }
    go = true;
    for (auto& thread : threads) thread.join();

    std::vector<int> hits(kTotal + 1, 0);
    for (const auto& perThread : offsets) {
        ASSERT_EQ(perThread.size(), static_cast<std::size_t>(kPerThread));
        for (std::size_t i = 1; i < perThread.size(); ++i) EXPECT_LT(perThread[i - 1], perThread[i]);
        for (std::uint64_t offset : perThread) {
            ASSERT_GE(offset, 1u);
            ASSERT_LE(offset, kTotal);
            ++hits[offset];
        }
    }
    for (std::uint64_t offset = 1; offset <= kTotal; ++offset) ASSERT_EQ(hits[offset], 1) << "offset " << offset;

    std::uint64_t expected = 1;
    for (const PublicationPtr& p : handler.snapshot()) {
        if (p->channel != "hot") continue;
        ASSERT_EQ(p->offset, expected) << "the handler must see offsets in increasing order";
        ++expected;
    }
    EXPECT_EQ(expected, kTotal + 1);
    EXPECT_EQ(position("hot").offset, kTotal);
}

TEST_F(MemoryBrokerTest, AForgottenIdleStreamComesBackUnderANewEpoch) {
    // Channels in one shard: enough names that some shard overflows its idle list.
    PublicationPtr first = publish("evicted");
    for (std::size_t i = 0; i < MemoryBroker::kShards * MemoryBroker::kMaxIdleStreamsPerShard * 2; ++i)
        publish("filler-" + std::to_string(i));
    PublicationPtr again = publish("evicted");
    EXPECT_EQ(again->offset, 1u);
    EXPECT_NE(again->epoch, first->epoch) << "never the same epoch with offsets restarted";
    EXPECT_LE(broker.stats().streams, MemoryBroker::kShards * MemoryBroker::kMaxIdleStreamsPerShard);
}

TEST_F(MemoryBrokerTest, ASubscribedStreamIsNeverForgotten) {
    broker.subscribe("live", [](std::optional<BrokerError>) {});
    PublicationPtr first = publish("live");
    for (std::size_t i = 0; i < MemoryBroker::kShards * MemoryBroker::kMaxIdleStreamsPerShard * 2; ++i)
        publish("filler-" + std::to_string(i));
    PublicationPtr again = publish("live");
    EXPECT_EQ(again->offset, 2u);
    EXPECT_EQ(again->epoch, first->epoch);
}

TEST_F(MemoryBrokerTest, StatsCountHistoryHeldAndReleased) {
    PublishRequest request;
    request.channel = "h";
    request.data = std::string(1000, '1');
    request.history = HistoryPolicy{3, std::chrono::milliseconds(10000)};
    for (int i = 0; i < 5; ++i) broker.publish(request, [](PublishResult) {});
    EngineStats stats = broker.stats();
    EXPECT_EQ(stats.historyPublications, 3u);
    EXPECT_GE(stats.historyBytes, 3000u);
    EXPECT_LT(stats.historyBytes, 4000u);
    now += 20000;
    position("h");  // a read drops what expired
    EXPECT_EQ(broker.stats().historyPublications, 0u);
    EXPECT_EQ(broker.stats().historyBytes, 0u);
}

}  // namespace
}  // namespace wspush
