// The presence contract (include/wspush/presence_store.h), one typed suite that every store must
// pass: the in-memory one and the Redis engine's, against a real redis-server (one shard and two).
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <set>

#include <gtest/gtest.h>

#include "engine/memory/memory_presence_store.h"
#include "engine/redis/redis_broker.h"
#include "engine/redis/redis_presence_store.h"
#include "support/started_redis_engine.h"
#include "wspush/presence_store.h"

namespace wspush {
namespace {

using namespace std::chrono_literals;
using Clock = std::function<std::int64_t()>;

// A store and what it needs to run: nothing for memory; a Redis engine on its loop for Redis.
struct MemoryStore {
    explicit MemoryStore(Clock clock) : store(std::make_unique<MemoryPresenceStore>(std::move(clock))) {}
    std::unique_ptr<PresenceStore> store;
};

template <std::size_t Shards>
struct RedisStore {
    explicit RedisStore(Clock clock)
        : redis("presence", clock), store(std::make_unique<RedisPresenceStore>(*redis.engine, clock)) {
        redis.start();
    }

    testing::StartedRedisEngine<Shards> redis;
    std::unique_ptr<PresenceStore> store;
};

template <class Store>
class PresenceStoreContractTest : public ::testing::Test {
protected:
    PresenceStoreContractTest() : fixture([this] { return now.load(); }) {}

    PresenceStore& store() { return *fixture.store; }

    static PresenceEntry entry(const std::string& client, const std::string& user, std::string info = {}) {
        return PresenceEntry{client, user, "dev-" + client, "node-a", 1700000000000, std::move(info)};
    }
    std::vector<PresenceEntry> list(const std::string& channel, std::size_t limit = 1000) {
        std::promise<std::variant<std::vector<PresenceEntry>, BrokerError>> promise;
        store().list(channel, limit, [&](auto result) { promise.set_value(std::move(result)); });
        auto future = promise.get_future();
        EXPECT_EQ(future.wait_for(5s), std::future_status::ready);
        auto result = future.get();
        EXPECT_TRUE(std::holds_alternative<std::vector<PresenceEntry>>(result));
        auto* entries = std::get_if<std::vector<PresenceEntry>>(&result);
        return entries ? *entries : std::vector<PresenceEntry>{};
    }
    std::pair<std::uint64_t, std::uint64_t> stats(const std::string& channel) {
        std::promise<std::variant<PresenceStats, BrokerError>> promise;
        store().stats(channel, [&](auto result) { promise.set_value(std::move(result)); });
        auto future = promise.get_future();
        EXPECT_EQ(future.wait_for(5s), std::future_status::ready);
        auto result = future.get();
        EXPECT_TRUE(std::holds_alternative<PresenceStats>(result));
        auto* stats = std::get_if<PresenceStats>(&result);
        return stats ? std::pair{stats->clients, stats->users} : std::pair<std::uint64_t, std::uint64_t>{};
    }
    std::vector<bool> hasUsers(const std::string& channel, std::vector<std::string> users) {
        std::promise<std::variant<std::vector<bool>, BrokerError>> promise;
        store().hasUsers(channel, std::move(users), [&](auto result) { promise.set_value(std::move(result)); });
        auto future = promise.get_future();
        EXPECT_EQ(future.wait_for(5s), std::future_status::ready);
        auto result = future.get();
        EXPECT_TRUE(std::holds_alternative<std::vector<bool>>(result));
        auto* present = std::get_if<std::vector<bool>>(&result);
        return present ? *present : std::vector<bool>{};
    }
    std::variant<PresenceUserPage, BrokerError> users(const std::string& channel, std::string cursor,
                                                      std::size_t limit) {
        std::promise<std::variant<PresenceUserPage, BrokerError>> promise;
        store().users(channel, std::move(cursor), limit, [&](auto result) { promise.set_value(std::move(result)); });
        auto future = promise.get_future();
        EXPECT_EQ(future.wait_for(5s), std::future_status::ready);
        return future.get();
    }
    // Waits until `channel` has `clients` entries: a large add may be stored in parts.
    void settle(const std::string& channel, std::uint64_t clients) {
        auto deadline = std::chrono::steady_clock::now() + 5s;
        while (stats(channel).first != clients && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(5ms);
        ASSERT_EQ(stats(channel).first, clients);
    }
    static std::set<std::string> clientsOf(const std::vector<PresenceEntry>& entries) {
        std::set<std::string> clients;
        for (const auto& e : entries) clients.insert(e.client);
        return clients;
    }

    std::atomic<std::int64_t> now{1700000000000};
    Store fixture;
};

using Stores = ::testing::Types<MemoryStore, RedisStore<1>, RedisStore<2>>;
TYPED_TEST_SUITE(PresenceStoreContractTest, Stores);

TYPED_TEST(PresenceStoreContractTest, AChannelNobodyJoinedIsEmpty) {
    EXPECT_TRUE(this->list("nobody").empty());
    EXPECT_EQ(this->stats("nobody"), (std::pair<std::uint64_t, std::uint64_t>{0, 0}));
}

TYPED_TEST(PresenceStoreContractTest, EntriesComeBackAsAddedAndUsersAreCountedOnce) {
    std::vector<PresenceEntry> added{this->entry("c1", "alice", R"({"name":"Alice"})"), this->entry("c2", "alice"),
                                     this->entry("c3", "bob"), this->entry("c4", "")};
    this->store().add("room", added, 60s);
    auto listed = this->list("room");
    ASSERT_EQ(listed.size(), 4u);
    for (const auto& entry : added)
        EXPECT_NE(std::find(listed.begin(), listed.end(), entry), listed.end()) << entry.client;
    EXPECT_EQ(this->stats("room"), (std::pair<std::uint64_t, std::uint64_t>{4, 3})) << "alice, bob, anonymous";
    EXPECT_TRUE(this->list("other").empty()) << "channels do not mix";
}

TYPED_TEST(PresenceStoreContractTest, ARefreshIsNotASecondConnection) {
    for (int i = 0; i < 3; ++i) this->store().add("room", {this->entry("c1", "alice")}, 60s);
    EXPECT_EQ(this->stats("room"), (std::pair<std::uint64_t, std::uint64_t>{1, 1}));
}

TYPED_TEST(PresenceStoreContractTest, RemovingTheLastConnectionOfAUserRemovesTheUser) {
    this->store().add("room", {this->entry("c1", "alice"), this->entry("c2", "alice"), this->entry("c3", "bob")}, 60s);
    this->store().remove("room", {"c1", "unknown"});
    EXPECT_EQ(this->stats("room"), (std::pair<std::uint64_t, std::uint64_t>{2, 2}));
    this->store().remove("room", {"c2"});
    EXPECT_EQ(this->stats("room"), (std::pair<std::uint64_t, std::uint64_t>{1, 1}));
    EXPECT_EQ(this->clientsOf(this->list("room")), (std::set<std::string>{"c3"}));
}

TYPED_TEST(PresenceStoreContractTest, EntriesNotRefreshedExpireWithTheirTtl) {
    this->store().add("room", {this->entry("c1", "alice"), this->entry("c2", "bob")}, 10s);
    this->now += 6000;
    this->store().add("room", {this->entry("c2", "bob")}, 10s);  // bob's node is alive
    this->now += 6000;
    EXPECT_EQ(this->stats("room"), (std::pair<std::uint64_t, std::uint64_t>{1, 1})) << "alice's node died";
    EXPECT_EQ(this->clientsOf(this->list("room")), (std::set<std::string>{"c2"}));
}

TYPED_TEST(PresenceStoreContractTest, AListStopsAtItsLimit) {
    std::vector<PresenceEntry> added;
    for (int i = 0; i < 600; ++i) added.push_back(this->entry("c" + std::to_string(i), "u" + std::to_string(i % 7)));
    this->store().add("big", added, 60s);
    this->settle("big", 600);
    auto listed = this->list("big", 250);
    EXPECT_EQ(listed.size(), 250u);
    EXPECT_EQ(this->clientsOf(listed).size(), 250u) << "no entry twice";
    EXPECT_EQ(this->stats("big"), (std::pair<std::uint64_t, std::uint64_t>{600, 7}));
}

TYPED_TEST(PresenceStoreContractTest, HasUsersAnswersInTheOrderAsked) {
    this->store().add("online", {this->entry("c1", "alice"), this->entry("c2", "bob"), this->entry("c3", "")}, 10s);
    EXPECT_EQ(this->hasUsers("online", {"bob", "nobody", "alice", "bob"}),
              (std::vector<bool>{true, false, true, true}));
    EXPECT_EQ(this->hasUsers("empty", {"alice"}), (std::vector<bool>{false}));
    this->store().remove("online", {"c2"});
    EXPECT_EQ(this->hasUsers("online", {"bob"}), (std::vector<bool>{false}));
    this->now += 11000;
    EXPECT_EQ(this->hasUsers("online", {"alice"}), (std::vector<bool>{false})) << "expired with its node";
}

TYPED_TEST(PresenceStoreContractTest, UsersArePagedWithACursorAndEachAppearsOnce) {
    std::vector<PresenceEntry> added;
    std::set<std::string> expected;
    for (int i = 0; i < 300; ++i) {
        std::string user = "user" + std::to_string(i);
        added.push_back(this->entry("c" + std::to_string(i), user));
        added.push_back(this->entry("d" + std::to_string(i), user));  // a second connection: one user
        expected.insert(user);
    }
    added.push_back(this->entry("anon", ""));
    this->store().add("online", added, 60s);
    this->settle("online", 601);
    std::set<std::string> seen;
    std::string cursor;
    int pages = 0;
    do {
        auto result = this->users("online", cursor, 50);
        ASSERT_TRUE(std::holds_alternative<PresenceUserPage>(result));
        auto& page = std::get<PresenceUserPage>(result);
        for (const auto& user : page.users) EXPECT_TRUE(seen.insert(user).second) << user << " twice";
        cursor = page.cursor;
        ASSERT_LT(++pages, 300) << "the cursor must move on";
    } while (!cursor.empty());
    EXPECT_EQ(seen, expected) << "every user, anonymous left out";
    EXPECT_GT(pages, 2) << "more than one page";

    auto empty = this->users("nobody", "", 50);
    ASSERT_TRUE(std::holds_alternative<PresenceUserPage>(empty));
    EXPECT_TRUE(std::get<PresenceUserPage>(empty).users.empty());
    EXPECT_TRUE(std::get<PresenceUserPage>(empty).cursor.empty());
    auto bad = this->users("online", "not a cursor", 50);
    ASSERT_TRUE(std::holds_alternative<BrokerError>(bad));
    EXPECT_EQ(std::get<BrokerError>(bad).code, ApiErrorCode::WrongType);
}

}  // namespace
}  // namespace wspush
