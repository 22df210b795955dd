// The inbox-devices contract (include/wspush/inbox_store.h), one typed suite that every store must
// pass: the in-memory one and the Redis engine's, against a real redis-server (one shard and two).
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <set>

#include <gtest/gtest.h>

#include "engine/memory/memory_inbox_store.h"
#include "engine/redis/redis_broker.h"
#include "engine/redis/redis_inbox_store.h"
#include "support/started_redis_engine.h"
#include "wspush/inbox_store.h"

namespace wspush {
namespace {

using namespace std::chrono_literals;
using Clock = std::function<std::int64_t()>;

struct MemoryStore {
    explicit MemoryStore(Clock clock) : store(std::make_unique<MemoryInboxStore>(std::move(clock))) {}
    std::unique_ptr<InboxStore> store;
};

template <std::size_t Shards>
struct RedisStore {
    explicit RedisStore(Clock clock)
        : redis("inbox", clock), store(std::make_unique<RedisInboxStore>(*redis.engine, clock)) {
        redis.start();
    }

    testing::StartedRedisEngine<Shards> redis;
    std::unique_ptr<InboxStore> store;
};

template <class Store>
class InboxStoreContractTest : public ::testing::Test {
protected:
    static constexpr std::chrono::milliseconds kTtl{60000};

    InboxStoreContractTest() : fixture([this] { return now.load(); }) {}

    InboxStore& store() { return *fixture.store; }

    std::optional<InboxDevice> touch(const std::string& user, const std::string& device) {
        std::promise<std::variant<std::optional<InboxDevice>, BrokerError>> promise;
        store().touch(user, device, kTtl, [&](auto result) { promise.set_value(std::move(result)); });
        auto future = promise.get_future();
        EXPECT_EQ(future.wait_for(5s), std::future_status::ready);
        auto result = future.get();
        EXPECT_TRUE(std::holds_alternative<std::optional<InboxDevice>>(result));
        auto* found = std::get_if<std::optional<InboxDevice>>(&result);
        return found ? *found : std::nullopt;
    }
    std::optional<std::uint64_t> advance(const std::string& user, const std::string& device, StreamPosition cursor) {
        std::promise<std::optional<std::uint64_t>> promise;
        store().advance(user, device, std::move(cursor), kTtl, [&](auto lowest) { promise.set_value(lowest); });
        auto future = promise.get_future();
        EXPECT_EQ(future.wait_for(5s), std::future_status::ready);
        return future.get();
    }
    std::set<std::string> devices(const std::string& user) {
        std::promise<std::variant<std::vector<InboxDevice>, BrokerError>> promise;
        store().devices(user, kTtl, [&](auto result) { promise.set_value(std::move(result)); });
        auto future = promise.get_future();
        EXPECT_EQ(future.wait_for(5s), std::future_status::ready);
        auto result = future.get();
        std::set<std::string> names;
        if (auto* list = std::get_if<std::vector<InboxDevice>>(&result))
            for (const auto& device : *list) names.insert(device.device + "@" + std::to_string(device.cursor.offset));
        return names;
    }

    std::atomic<std::int64_t> now{1700000000000};
    Store fixture;
};

using Stores = ::testing::Types<MemoryStore, RedisStore<1>, RedisStore<2>>;
TYPED_TEST_SUITE(InboxStoreContractTest, Stores);

TYPED_TEST(InboxStoreContractTest, ADeviceNeverSeenIsUnknown) {
    EXPECT_FALSE(this->touch("alice", "phone").has_value());
    EXPECT_TRUE(this->devices("alice").empty());
}

TYPED_TEST(InboxStoreContractTest, ACursorOnlyMovesForwardWithinItsEpoch) {
    EXPECT_EQ(this->advance("alice", "phone", {5, "e1"}), 5u);
    EXPECT_EQ(this->advance("alice", "phone", {3, "e1"}), 5u) << "never back";
    auto phone = this->touch("alice", "phone");
    ASSERT_TRUE(phone.has_value());
    EXPECT_EQ(phone->cursor.offset, 5u);
    EXPECT_EQ(phone->cursor.epoch, "e1");
    EXPECT_EQ(phone->lastSeenMs, this->now.load());
    EXPECT_EQ(this->advance("alice", "phone", {2, "e2"}), 2u) << "a new epoch starts over";
    EXPECT_EQ(this->touch("alice", "phone")->cursor.epoch, "e2");
}

TYPED_TEST(InboxStoreContractTest, TheLowestCursorOfTheUsersDevicesBoundsTrimming) {
    this->advance("bob", "phone", {10, "e"});
    EXPECT_EQ(this->advance("bob", "laptop", {4, "e"}), 4u);
    EXPECT_EQ(this->advance("bob", "phone", {12, "e"}), 4u) << "the laptop has not got past 4";
    EXPECT_EQ(this->advance("bob", "laptop", {20, "e"}), 12u);
    EXPECT_EQ(this->advance("bob", "tablet", {1, "old"}), 0u) << "the others are of another epoch";
    EXPECT_EQ(this->advance("bob", "phone", {13, "e"}), 0u) << "a cursor of another epoch counts as 0";
    EXPECT_EQ(this->devices("bob"), (std::set<std::string>{"phone@13", "laptop@20", "tablet@1"}));
    EXPECT_TRUE(this->devices("carol").empty()) << "users do not mix";
}

TYPED_TEST(InboxStoreContractTest, ADeviceNotSeenForItsTtlIsForgotten) {
    this->advance("dan", "old-phone", {3, "e"});
    this->now += 40000;
    this->advance("dan", "phone", {9, "e"});
    this->now += 30000;  // old-phone: 70 s unseen; phone: 30 s
    EXPECT_EQ(this->advance("dan", "phone", {10, "e"}), 10u) << "the forgotten device holds nothing back";
    EXPECT_FALSE(this->touch("dan", "old-phone").has_value());
    EXPECT_EQ(this->devices("dan"), (std::set<std::string>{"phone@10"}));
    this->now += 50000;
    EXPECT_TRUE(this->touch("dan", "phone").has_value()) << "touched 50 s ago: remembered";
}

TYPED_TEST(InboxStoreContractTest, PastTheCapTheDeviceSeenLongestAgoIsForgotten) {
    for (std::size_t i = 0; i < kMaxInboxDevices; ++i) {
        this->advance("eve", "d" + std::to_string(i), {1, "e"});
        this->now += 10;
    }
    this->touch("eve", "d0");  // seen again: d1 is now the one seen longest ago
    this->now += 10;
    EXPECT_EQ(this->advance("eve", "newest", {5, "e"}), 1u);
    auto remembered = this->devices("eve");
    EXPECT_EQ(remembered.size(), kMaxInboxDevices);
    EXPECT_TRUE(remembered.contains("d0@1"));
    EXPECT_FALSE(remembered.contains("d1@1"));
    EXPECT_TRUE(remembered.contains("newest@5"));
}

}  // namespace
}  // namespace wspush
