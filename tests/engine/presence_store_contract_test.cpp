// The presence contract (include/wspush/presence_store.h), one typed suite that every store must
// pass: the in-memory one and the Redis engine's, against a real redis-server (one shard and two).
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <ostream>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "engine/memory/memory_presence_store.h"
#include "engine/redis/redis_broker.h"
#include "engine/redis/redis_presence_store.h"
#include "support/started_redis_engine.h"
#include "wspush/presence_store.h"

namespace wspush {

// For failures' messages.
static void PrintTo(const PresenceTransition& transition, std::ostream* out) {
    static constexpr const char* kKinds[] = {"MemberAdded",    "MemberRemoved", "ChannelOccupied",
                                             "ChannelVacated", "UserOnline",    "UserOffline"};
    *out << kKinds[static_cast<int>(transition.kind)] << "(" << transition.channel << ", " << transition.entry.client
         << " of \"" << transition.entry.user << "\", \"" << transition.reason << "\", " << transition.timeMs << ")";
}

namespace {

using namespace std::chrono_literals;
using Clock = std::function<std::int64_t()>;
using Kind = PresenceTransitionKind;

// A store and what it needs to run: nothing for memory; a Redis engine on its loop for Redis.
// `peer()` is the store of another node of the same cluster, and `kReportsWithin` how long a
// reply's transitions may take to reach the handler after the call that made them returned.
struct MemoryStore {
    explicit MemoryStore(Clock clock) : store(std::make_unique<MemoryPresenceStore>(std::move(clock))) {}
    // The memory engine is one node: its other node is itself, called from another thread.
    PresenceStore& peer() { return *store; }
    static constexpr auto kReportsWithin = 0ms;
    std::unique_ptr<PresenceStore> store;
};

template <std::size_t Shards>
struct RedisStore {
    explicit RedisStore(Clock clock)
        : clock(clock), redis("presence", clock), store(std::make_unique<RedisPresenceStore>(*redis.engine, clock)) {
        redis.start();
    }
    // The stores' replies run on the engines' loops: those stop before the stores go.
    ~RedisStore() {
        if (peerNode) peerNode->redis.engine->stop();
        redis.engine->stop();
    }

    PresenceStore& peer() {
        if (!peerNode) peerNode = std::make_unique<Peer>(redis, clock);
        return *peerNode->store;
    }
    static constexpr auto kReportsWithin = 100ms;

    struct Peer {
        Peer(const testing::StartedRedisEngine<Shards>& cluster, Clock clock)
            : redis(cluster, "b", clock), store(std::make_unique<RedisPresenceStore>(*redis.engine, clock)) {
            redis.start();
        }
        testing::StartedRedisEngine<Shards> redis;
        std::unique_ptr<PresenceStore> store;
    };

    Clock clock;
    testing::StartedRedisEngine<Shards> redis;
    std::unique_ptr<PresenceStore> store;
    std::unique_ptr<Peer> peerNode;
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

    // Reporting as a node does: every channel but "quiet", users' status in "$online".
    PresenceTransitionOptions reporting() {
        return PresenceTransitionOptions{[this](std::vector<PresenceTransition> transitions) {
                                             std::lock_guard lock(reportedMutex);
                                             for (auto& transition : transitions)
                                                 reported.push_back(std::move(transition));
                                         },
                                         [](std::string_view channel) { return channel != "quiet"; }, "$online", 5s};
    }
    PresenceTransition transition(PresenceTransitionKind kind, const std::string& channel, PresenceEntry entry,
                                  std::string reason = {}) const {
        return PresenceTransition{kind, channel, std::move(entry), std::move(reason), now.load()};
    }
    std::vector<PresenceTransition> takeReported() {
        std::lock_guard lock(reportedMutex);
        return std::exchange(reported, {});
    }
    // What was reported up to a read of `channel` made now, the read's own included.
    std::vector<PresenceTransition> reportedBy(const std::string& channel) {
        stats(channel);
        return takeReported();
    }
    // What the stores' sweeps reported: waits for `expected` transitions, then for any more.
    std::vector<PresenceTransition> swept(std::size_t expected) {
        auto deadline = std::chrono::steady_clock::now() + 5s;
        auto count = [&] {
            std::lock_guard lock(reportedMutex);
            return reported.size();
        };
        while (count() < expected && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
        std::this_thread::sleep_for(Store::kReportsWithin);
        return takeReported();
    }

    std::atomic<std::int64_t> now{1700000000000};
    std::mutex reportedMutex;
    std::vector<PresenceTransition> reported;
    Store fixture;  // last: its engines stop before what their handlers use goes
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
    this->store().remove("room", {"c1", "unknown"}, "unsubscribed");
    EXPECT_EQ(this->stats("room"), (std::pair<std::uint64_t, std::uint64_t>{2, 2}));
    this->store().remove("room", {"c2"}, "unsubscribed");
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
    this->store().remove("online", {"c2"}, "disconnected");
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

// ---- transitions ----------------------------------------------------------------------------

TYPED_TEST(PresenceStoreContractTest, AnAddReportsItsNewMembersAndTheChannelOccupiedOnce) {
    this->store().reportTransitions(this->reporting());
    auto alice = this->entry("c1", "alice"), bob = this->entry("c2", "bob"), carol = this->entry("c3", "carol");
    this->store().add("room", {alice, bob}, 60s);
    EXPECT_EQ(this->reportedBy("room"), (std::vector{this->transition(Kind::MemberAdded, "room", alice),
                                                     this->transition(Kind::ChannelOccupied, "room", alice),
                                                     this->transition(Kind::MemberAdded, "room", bob)}));
    this->now += 1000;
    this->store().add("room", {alice, bob, carol}, 60s);
    EXPECT_EQ(this->reportedBy("room"), (std::vector{this->transition(Kind::MemberAdded, "room", carol)}))
        << "a refresh reports nothing";
    this->store().add("room", {alice}, 60s);
    EXPECT_TRUE(this->reportedBy("room").empty());
}

TYPED_TEST(PresenceStoreContractTest, ARemoveReportsItsReasonAndTheLastEntryVacatesTheChannel) {
    this->store().reportTransitions(this->reporting());
    auto alice = this->entry("c1", "alice"), bob = this->entry("c2", "bob"), carol = this->entry("c3", "carol");
    this->store().add("room", {alice, bob, carol}, 60s);
    this->reportedBy("room");
    this->now += 1000;
    this->store().remove("room", {"c1", "unknown"}, "unsubscribed");
    EXPECT_EQ(this->reportedBy("room"),
              (std::vector{this->transition(Kind::MemberRemoved, "room", alice, "unsubscribed")}));
    this->store().remove("room", {"c2", "c3"}, "disconnected");
    EXPECT_EQ(this->reportedBy("room"),
              (std::vector{this->transition(Kind::MemberRemoved, "room", bob, "disconnected"),
                           this->transition(Kind::MemberRemoved, "room", carol, "disconnected"),
                           this->transition(Kind::ChannelVacated, "room", carol, "disconnected")}));
    this->store().remove("room", {"c1"}, "unsubscribed");
    EXPECT_TRUE(this->reportedBy("room").empty()) << "gone already";
    this->store().add("room", {alice}, 60s);
    EXPECT_EQ(this->reportedBy("room"), (std::vector{this->transition(Kind::MemberAdded, "room", alice),
                                                     this->transition(Kind::ChannelOccupied, "room", alice)}))
        << "occupied again";
}

TYPED_TEST(PresenceStoreContractTest, EntriesThatExpiredAreReportedByTheCallThatFindsThem) {
    this->store().reportTransitions(this->reporting());
    auto alice = this->entry("c1", "alice"), bob = this->entry("c2", "bob");
    this->store().add("room", {alice, bob}, 10s);
    this->reportedBy("room");
    this->now += 6000;
    this->store().add("room", {bob}, 10s);  // bob's node is alive
    this->now += 6000;
    EXPECT_EQ(this->list("room"), (std::vector{bob}));
    EXPECT_EQ(this->takeReported(), (std::vector{this->transition(Kind::MemberRemoved, "room", alice, "expired")}))
        << "found by the list";
    this->now += 11000;
    EXPECT_EQ(this->hasUsers("room", {"bob"}), (std::vector<bool>{false}));
    EXPECT_EQ(this->takeReported(), (std::vector{this->transition(Kind::MemberRemoved, "room", bob, "expired"),
                                                 this->transition(Kind::ChannelVacated, "room", bob, "expired")}));
    EXPECT_TRUE(this->reportedBy("room").empty()) << "reported once";
}

TYPED_TEST(PresenceStoreContractTest, ASweepReportsAChannelThatExpiredWholeOnceWhateverTheNodesSweeping) {
    this->store().reportTransitions(this->reporting());
    PresenceStore& peer = this->fixture.peer();
    if (&peer != &this->store()) peer.reportTransitions(this->reporting());
    auto alice = this->entry("c1", "alice"), bob = this->entry("c2", "bob");
    this->store().add("dead", {alice, bob}, 10s);  // a node that dies right after
    this->store().add("alive", {this->entry("c3", "carol")}, 60s);
    this->reportedBy("dead");
    this->reportedBy("alive");
    this->now += 5000;
    this->store().sweep();
    EXPECT_TRUE(this->swept(0).empty()) << "nothing expired yet";

    this->now += 6000;
    std::thread otherNode([&] { peer.sweep(); });
    this->store().sweep();
    otherNode.join();
    EXPECT_EQ(this->swept(3), (std::vector{this->transition(Kind::MemberRemoved, "dead", alice, "expired"),
                                           this->transition(Kind::MemberRemoved, "dead", bob, "expired"),
                                           this->transition(Kind::ChannelVacated, "dead", bob, "expired")}));
    this->store().sweep();
    peer.sweep();
    EXPECT_TRUE(this->swept(0).empty()) << "swept once";
    EXPECT_EQ(this->stats("alive"), (std::pair<std::uint64_t, std::uint64_t>{1, 1}));
}

TYPED_TEST(PresenceStoreContractTest, AUserIsOnlineOnceAndOfflineOnlyAfterTheGrace) {
    this->store().reportTransitions(this->reporting());
    auto first = this->entry("c1", "alice"), second = this->entry("c2", "alice");
    this->store().add("$online", {first}, 60s);
    EXPECT_EQ(this->reportedBy("$online"), (std::vector{this->transition(Kind::MemberAdded, "$online", first),
                                                        this->transition(Kind::ChannelOccupied, "$online", first),
                                                        this->transition(Kind::UserOnline, "$online", first)}));
    this->store().add("$online", {second}, 60s);
    EXPECT_EQ(this->reportedBy("$online"), (std::vector{this->transition(Kind::MemberAdded, "$online", second)}))
        << "a second connection of alice";
    this->store().remove("$online", {"c1"}, "disconnected");
    this->store().remove("$online", {"c2"}, "unsubscribed");
    EXPECT_EQ(this->reportedBy("$online"),
              (std::vector{this->transition(Kind::MemberRemoved, "$online", first, "disconnected"),
                           this->transition(Kind::MemberRemoved, "$online", second, "unsubscribed"),
                           this->transition(Kind::ChannelVacated, "$online", second, "unsubscribed")}));

    this->now += 4000;
    this->store().sweep();
    EXPECT_TRUE(this->swept(0).empty()) << "within the grace";
    this->now += 1000;
    this->store().sweep();
    EXPECT_EQ(this->swept(1), (std::vector{this->transition(Kind::UserOffline, "$online", second, "unsubscribed")}))
        << "the entry that left last, and why";
    this->now += 1000;
    this->store().sweep();
    EXPECT_TRUE(this->swept(0).empty()) << "offline once";
}

TYPED_TEST(PresenceStoreContractTest, AUserBackWithinTheGraceIsNeitherOfflineNorOnlineAgain) {
    this->store().reportTransitions(this->reporting());
    auto before = this->entry("c1", "alice"), after = this->entry("c2", "alice");
    this->store().add("$online", {before}, 60s);
    this->store().remove("$online", {"c1"}, "disconnected");
    this->reportedBy("$online");
    this->now += 3000;  // the page reloads
    this->store().add("$online", {after}, 60s);
    EXPECT_EQ(this->reportedBy("$online"), (std::vector{this->transition(Kind::MemberAdded, "$online", after),
                                                        this->transition(Kind::ChannelOccupied, "$online", after)}));
    this->now += 10000;
    this->store().sweep();
    EXPECT_TRUE(this->swept(0).empty());
    EXPECT_TRUE(this->reportedBy("$online").empty());
}

TYPED_TEST(PresenceStoreContractTest, AUserWhoseEntriesExpiredGoesOfflineWhenACallNoticesTheGraceEnded) {
    this->store().reportTransitions(this->reporting());
    auto alice = this->entry("c1", "alice");
    this->store().add("$online", {alice}, 10s);
    this->reportedBy("$online");
    this->now += 10000;
    EXPECT_EQ(this->reportedBy("$online"),
              (std::vector{this->transition(Kind::MemberRemoved, "$online", alice, "expired"),
                           this->transition(Kind::ChannelVacated, "$online", alice, "expired")}));
    this->now += 5000;
    EXPECT_EQ(this->hasUsers("$online", {"alice"}), (std::vector<bool>{false}));
    EXPECT_EQ(this->takeReported(), (std::vector{this->transition(Kind::UserOffline, "$online", alice, "expired")}));
}

TYPED_TEST(PresenceStoreContractTest, AnonymousConnectionsHaveNoUserStatus) {
    this->store().reportTransitions(this->reporting());
    auto anonymous = this->entry("c1", "");
    this->store().add("$online", {anonymous}, 60s);
    EXPECT_EQ(this->reportedBy("$online"),
              (std::vector{this->transition(Kind::MemberAdded, "$online", anonymous),
                           this->transition(Kind::ChannelOccupied, "$online", anonymous)}));
    this->store().remove("$online", {"c1"}, "disconnected");
    this->reportedBy("$online");
    this->now += 6000;
    this->store().sweep();
    EXPECT_TRUE(this->swept(0).empty());
}

TYPED_TEST(PresenceStoreContractTest, AChannelNotReportedReportsNothing) {
    this->store().reportTransitions(this->reporting());
    this->store().add("quiet", {this->entry("c1", "alice"), this->entry("c2", "bob")}, 10s);
    this->store().remove("quiet", {"c1"}, "unsubscribed");
    EXPECT_TRUE(this->reportedBy("quiet").empty());
    this->now += 11000;
    this->store().sweep();
    EXPECT_TRUE(this->swept(0).empty());
    EXPECT_EQ(this->stats("quiet"), (std::pair<std::uint64_t, std::uint64_t>{0, 0})) << "expired all the same";
    EXPECT_TRUE(this->takeReported().empty());
}

TYPED_TEST(PresenceStoreContractTest, WithoutReportTransitionsNothingIsReportedOrKept) {
    this->store().add("$online", {this->entry("c1", "alice")}, 10s);
    this->store().add("room", {this->entry("c2", "bob")}, 10s);
    this->store().remove("$online", {"c1"}, "disconnected");
    this->now += 11000;
    this->store().sweep();
    EXPECT_EQ(this->stats("room"), (std::pair<std::uint64_t, std::uint64_t>{0, 0}));
    EXPECT_EQ(this->stats("$online"), (std::pair<std::uint64_t, std::uint64_t>{0, 0}));
    EXPECT_TRUE(this->swept(0).empty());
}

}  // namespace
}  // namespace wspush
