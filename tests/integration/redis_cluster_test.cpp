// Several real wspushd nodes on a real redis-server (and, for the failover, a master, a replica and
// three Sentinels): fan-out across nodes, a node killed mid-stream, Redis paused and restarted
// mid-stream, recovery at full speed, idempotent publishing, delivery reports and disconnects
// across nodes. Each scenario runs once, bounded in count and time.
//
// The subscribers check every message as it arrives: one epoch, offsets gap-free and increasing.
// A gap or an epoch change is acceptable only when the server said so first (the "insufficient
// state" push, or `"recovered":false`); everything else is a silent gap and fails the test.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "support/qos_client.h"
#include "support/redis_sentinel_process.h"
#include "support/redis_server_process.h"
#include "support/test_helpers.h"

namespace wspush::testing {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// A node of the cluster: the Redis engine on `redis` (an address list or a Sentinel object), a
// namespace-wide history large enough for every scenario, 1 s Redis timeouts.
json nodeConfig(const std::string& name, const json& redis) {
    json config{{"node_name", name},
                {"engine", "redis"},
                {"redis", {{"prefix", "itest"}, {"connect_timeout", 1}, {"command_timeout", 1}}},
                {"channel_defaults", {{"history_size", 10000}, {"history_ttl", 300}, {"recovery_max", 10000}}}};
    config["redis"].merge_patch(redis);
    return config;
}

json onRedis(const RedisServerProcess& redis) {
    return json{{"addresses", {redis.address()}}};
}

// `count` nodes named n1, n2, … on the same Redis, each ready (/readyz 200: its engine reached
// Redis), as a load balancer would wait for before sending it clients. Before that, a node
// listens but refuses subscriptions with 115, which the scenarios count as errors.
std::vector<std::unique_ptr<DaemonProcess>> startNodes(int count, const json& redis) {
    std::vector<std::unique_ptr<DaemonProcess>> nodes;
    for (int i = 1; i <= count; ++i)
        nodes.push_back(std::make_unique<DaemonProcess>(nodeConfig("n" + std::to_string(i), redis)));
    for (auto& node : nodes)
        EXPECT_TRUE(eventually([&] { return httpGet(node->apiPort(), "/readyz").status == 200; }, 5000ms))
            << "a node never became ready";
    return nodes;
}

// What one subscriber saw of one channel, checked message by message.
struct ChannelWatch {
    bool subscribed = false;   // a `subscribed` reply came and no push ended it since
    bool subscribing = false;  // a subscribe is in flight
    std::string epoch;         // the position: the last offset handed over in `epoch`
    std::uint64_t offset = 0;
    std::map<std::pair<std::string, std::uint64_t>, json> received;  // (epoch, offset) → data
    std::set<std::string> toldEpochs;                                // epochs in which the server said state was lost
    // Per epoch, the offset a subscription started at (not recovered): what came before it was
    // published before this subscriber asked for the channel, and is not a loss.
    std::map<std::string, std::uint64_t> startedAt;
    std::vector<std::string> problems;  // silent gaps, duplicates, messages out of a subscription
    int subscribeErrors = 0;            // error replies to subscribe (115 while Redis is away)
};

// A WebSocket client that keeps its channels subscribed: after an "insufficient state" push, an
// error reply or a reconnect it subscribes again with `since` its position.
class Subscriber {
public:
    explicit Subscriber(std::string user = "") : user_(std::move(user)) {}

    // Connects to `port`, asking to resume the last session when there is one and `resume` is set;
    // the `connected` reply.
    std::optional<json> connect(unsigned short port, bool resume = true) {
        ws_ = std::make_unique<WsTestClient>();
        pending_.clear();
        json fields = json::object();
        if (!user_.empty()) fields["user"] = user_;
        if (resume && !session_.empty()) {
            fields["session"] = session_;
            fields["resume"] = resume_;
        }
        auto reply = ws_->connectWith(port, fields);
        if (!reply || typeOf(*reply) != "connected") return std::nullopt;
        session_ = reply->value("session", "");
        resume_ = reply->value("resume", "");
        for (auto& [channel, watch] : watches_) {
            watch.subscribing = false;
            if (!reply->value("resumed", false)) watch.subscribed = false;
        }
        return reply;
    }

    void subscribe(const std::string& channel) {
        watches_[channel];
        sendSubscribes();
    }

    // Reads for `duration`, handling every message; false when the connection is gone.
    bool pump(Millis duration) {
        auto deadline = Clock::now() + duration;
        sendSubscribes();
        while (ws_ && ws_->isOpen()) {
            auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
            if (left.count() <= 0) break;
            auto message = ws_->nextMessage(left);
            if (!message) break;
            handle(*message);
            sendSubscribes();
        }
        return isOpen();
    }

    bool pumpUntil(const std::function<bool()>& done, Millis timeout) {
        auto deadline = Clock::now() + timeout;
        while (!done() && Clock::now() < deadline)
            if (!pump(20ms)) return done();
        return done();
    }

    bool isOpen() const { return ws_ && ws_->isOpen(); }
    void drop() {
        if (ws_) ws_->drop();
    }
    WsTestClient& ws() { return *ws_; }
    ChannelWatch& watch(const std::string& channel) { return watches_[channel]; }

private:
    void sendSubscribes() {
        if (!isOpen()) return;
        auto now = Clock::now();
        for (auto& [channel, watch] : watches_) {
            if (watch.subscribed || watch.subscribing || now < retryAt_) continue;
            json command{{"id", nextId_}, {"type", "subscribe"}, {"channel", channel}};
            if (!watch.epoch.empty()) command["since"] = {{"offset", watch.offset}, {"epoch", watch.epoch}};
            if (!ws_->sendJson(command)) return;
            pending_[nextId_++] = {channel, command.value("since", json())};
            watch.subscribing = true;
        }
    }

    void handle(const json& message) {
        std::string type = typeOf(message);
        if (message.contains("id")) {
            auto it = pending_.find(message.value("id", std::uint64_t{0}));
            if (it == pending_.end()) return;
            auto [channel, since] = it->second;
            pending_.erase(it);
            ChannelWatch& watch = watches_[channel];
            watch.subscribing = false;
            if (type != "subscribed") {
                ++watch.subscribeErrors;
                retryAt_ = Clock::now() + 200ms;
                return;
            }
            watch.subscribed = true;
            if (since.is_object() && message.value("recovered", false)) return;  // since+1… follow
            if (since.is_object()) watch.toldEpochs.insert(since.value("epoch", ""));
            watch.epoch = message.value("epoch", "");
            watch.offset = message.value("offset", std::uint64_t{0});
            watch.startedAt[watch.epoch] = std::max(watch.startedAt[watch.epoch], watch.offset);
            return;
        }
        std::string channel = message.value("channel", "");
        if (type == "unsubscribed" && message.contains("reason")) {
            ChannelWatch& watch = watches_[channel];
            watch.toldEpochs.insert(watch.epoch);
            watch.subscribed = false;
            return;
        }
        if (type != "message") return;
        ChannelWatch& watch = watches_[channel];
        std::string epoch = message.value("epoch", "");
        std::uint64_t offset = message.value("offset", std::uint64_t{0});
        std::ostringstream problem;
        if (!watch.subscribed)
            problem << "a message while not subscribed: ";
        else if (epoch != watch.epoch)
            problem << "epoch " << watch.epoch << " → " << epoch << " without being told: ";
        else if (offset != watch.offset + 1)
            problem << (offset <= watch.offset ? "a duplicate" : "a gap") << " after " << watch.offset << ": ";
        if (!problem.str().empty()) watch.problems.push_back(problem.str() + message.dump());
        watch.epoch = epoch;
        watch.offset = offset;
        watch.received[{epoch, offset}] = message.value("data", json());
    }

    std::unique_ptr<WsTestClient> ws_;
    std::string user_;
    std::string session_;
    std::string resume_;
    std::map<std::string, ChannelWatch> watches_;
    std::map<std::uint64_t, std::pair<std::string, json>> pending_;  // subscribe id → channel, since
    std::uint64_t nextId_ = 1;
    Clock::time_point retryAt_{};
};

// One HTTP publish of a stream, and its answer.
struct PublishRecord {
    int n = 0;  // the publication's data is {"n": n}
    unsigned status = 0;
    int code = 0;  // the error code of a failure
    std::string epoch;
    std::uint64_t offset = 0;
    Millis took{0};
};

PublishRecord recordOf(int n, const HttpResult& result, Millis took = 0ms) {
    PublishRecord record;
    record.n = n;
    record.status = result.status;
    record.took = took;
    json body = result.json();
    if (result.status == 200) {
        record.epoch = body.value("epoch", "");
        record.offset = body.value("offset", std::uint64_t{0});
    } else if (body.is_object() && body.contains("error")) {
        record.code = body["error"].value("code", 0);
    }
    return record;
}

// POSTs {"channel":…,"data":{"n":0,1,2…}} on its own thread, taking `ports` in turn, with `pause`
// between publishes (0: as fast as it can), until stop().
class StreamPublisher {
public:
    StreamPublisher(std::vector<unsigned short> ports, std::string channel, Millis pause)
        : thread_([this, ports = std::move(ports), channel = std::move(channel), pause] {
              std::vector<std::unique_ptr<HttpTestClient>> clients;
              for (auto port : ports) clients.push_back(std::make_unique<HttpTestClient>(port));
              for (int n = 0; !stopping_; ++n) {
                  auto started = Clock::now();
                  HttpResult result = clients[static_cast<std::size_t>(n) % clients.size()]->postJson(
                      "/api/publish", json{{"channel", channel}, {"data", {{"n", n}}}});
                  PublishRecord record =
                      recordOf(n, result, std::chrono::duration_cast<Millis>(Clock::now() - started));
                  {
                      std::lock_guard lock(mutex_);
                      records_.push_back(record);
                  }
                  if (result.status == 200) ++ok_;
                  if (pause.count() > 0) std::this_thread::sleep_for(pause);
              }
          }) {}
    ~StreamPublisher() { stop(); }

    void stop() {
        stopping_ = true;
        if (thread_.joinable()) thread_.join();
    }
    std::uint64_t ok() const { return ok_.load(); }
    std::vector<PublishRecord> records() const {
        std::lock_guard lock(mutex_);
        return records_;
    }

private:
    std::atomic<bool> stopping_{false};
    std::atomic<std::uint64_t> ok_{0};
    mutable std::mutex mutex_;
    std::vector<PublishRecord> records_;
    std::thread thread_;  // last: starts once the rest is constructed
};

// Whether `record` is one `watch` need not have: published before its subscription started, or in
// an epoch the subscriber was told it lost state of.
bool excused(const ChannelWatch& watch, const PublishRecord& record, bool allowTold) {
    auto started = watch.startedAt.find(record.epoch);
    if (started != watch.startedAt.end() && record.offset <= started->second) return true;
    return allowTold && watch.toldEpochs.contains(record.epoch);
}

// Every 200 publication reached `watch` with its data, or the subscriber was told it lost the
// state of that publication's epoch; and nothing came silently out of order.
::testing::AssertionResult noSilentLoss(const ChannelWatch& watch, const std::vector<PublishRecord>& records,
                                        bool allowTold) {
    std::ostringstream failure;
    int missing = 0;
    for (const auto& record : records) {
        if (record.status != 200) continue;
        auto it = watch.received.find({record.epoch, record.offset});
        if (it != watch.received.end() && it->second == json{{"n", record.n}}) continue;
        if (excused(watch, record, allowTold)) continue;
        if (++missing <= 5)
            failure << "\n  publication " << record.n << " (" << record.epoch << "/" << record.offset << ") "
                    << (it == watch.received.end() ? "never arrived" : "arrived as " + it->second.dump());
    }
    if (missing > 0) failure << "\n  " << missing << " acknowledged publications missing";
    for (std::size_t i = 0; i < watch.problems.size() && i < 5; ++i) failure << "\n  " << watch.problems[i];
    if (!allowTold && !watch.toldEpochs.empty()) failure << "\n  told it lost state, nothing was lost";
    if (failure.str().empty()) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << failure.str();
}

// Whether `watch` has every 200 publication of `records` (or was told it lost its epoch).
bool hasAll(const ChannelWatch& watch, const std::vector<PublishRecord>& records) {
    return std::all_of(records.begin(), records.end(), [&](const PublishRecord& record) {
        return record.status != 200 || watch.received.contains({record.epoch, record.offset}) ||
               excused(watch, record, /*allowTold=*/true);
    });
}

std::set<std::string> nodeNames(unsigned short apiPort) {
    std::set<std::string> names;
    HttpResult nodes = httpGet(apiPort, "/api/nodes");
    if (nodes.status != 200) return names;
    for (const auto& node : nodes.json().value("nodes", json::array())) names.insert(node.value("name", ""));
    return names;
}

TEST(RedisCluster, ThreeNodesDeliverEveryPublicationInOffsetOrder) {
    RedisServerProcess redis;
    auto nodes = startNodes(3, onRedis(redis));
    std::vector<std::unique_ptr<Subscriber>> subscribers;
    for (auto& node : nodes) {
        for (int i = 0; i < 2; ++i) {
            auto& subscriber = subscribers.emplace_back(std::make_unique<Subscriber>());
            ASSERT_TRUE(subscriber->connect(node->port()));
            subscriber->subscribe("room");
            ASSERT_TRUE(subscriber->pumpUntil([&] { return subscriber->watch("room").subscribed; }, 3000ms));
        }
    }
    std::vector<std::unique_ptr<HttpTestClient>> apis;
    for (auto& node : nodes) apis.push_back(std::make_unique<HttpTestClient>(node->apiPort()));
    constexpr int kPublications = 300;
    std::vector<PublishRecord> records;
    for (int n = 0; n < kPublications; ++n) {
        HttpResult result = apis[n % 3]->postJson("/api/publish", json{{"channel", "room"}, {"data", {{"n", n}}}});
        ASSERT_EQ(result.status, 200u) << result.body;
        records.push_back(recordOf(n, result));
        ASSERT_EQ(records.back().offset, static_cast<std::uint64_t>(n + 1)) << "offsets in publish order";
    }
    for (auto& subscriber : subscribers) {
        ChannelWatch& watch = subscriber->watch("room");
        EXPECT_TRUE(subscriber->pumpUntil([&] { return watch.offset >= kPublications; }, 10000ms));
        EXPECT_EQ(watch.received.size(), static_cast<std::size_t>(kPublications));
        EXPECT_TRUE(noSilentLoss(watch, records, /*allowTold=*/false));
    }
    // Heartbeats every 5 s; the first lands as each node reaches Redis (retried until it does),
    // not 5 s later: other nodes take over the webhook events of a node they do not know.
    std::set<std::string> all{"n1", "n2", "n3"};
    for (auto& node : nodes)
        EXPECT_TRUE(eventually([&] { return nodeNames(node->apiPort()) == all; }, 6000ms))
            << httpGet(node->apiPort(), "/api/nodes").body;
}

TEST(RedisCluster, ANodeIsKnownToTheOthersAsSoonAsItIsReady) {
    RedisServerProcess redis;
    auto nodes = startNodes(1, onRedis(redis));
    DaemonProcess late(nodeConfig("late", onRedis(redis)));
    ASSERT_TRUE(eventually([&] { return httpGet(late.apiPort(), "/readyz").status == 200; }, 5000ms));
    EXPECT_TRUE(eventually([&] { return nodeNames(nodes[0]->apiPort()).contains("late"); }, 1500ms))
        << httpGet(nodes[0]->apiPort(), "/api/nodes").body;
}

TEST(RedisCluster, ClientsOfAKilledNodeRecoverEverythingOnAnother) {
    RedisServerProcess redis;
    auto nodes = startNodes(3, onRedis(redis));
    std::vector<std::unique_ptr<Subscriber>> subscribers;
    for (int i = 0; i < 3; ++i) {
        auto& subscriber = subscribers.emplace_back(std::make_unique<Subscriber>());
        ASSERT_TRUE(subscriber->connect(nodes[2]->port()));
        subscriber->subscribe("live");
        ASSERT_TRUE(subscriber->pumpUntil([&] { return subscriber->watch("live").subscribed; }, 3000ms));
    }
    StreamPublisher publisher({nodes[0]->apiPort(), nodes[1]->apiPort()}, "live", 2ms);
    auto pumpAll = [&](Millis duration) {
        for (auto& subscriber : subscribers) subscriber->pump(duration);
    };
    ASSERT_TRUE(eventually([&] { return publisher.ok() >= 100; }, 5000ms));
    pumpAll(100ms);
    ASSERT_TRUE(nodes[2]->terminate(SIGKILL));
    ASSERT_TRUE(nodes[2]->waitExit(2000ms).has_value());

    for (std::size_t i = 0; i < subscribers.size(); ++i) {
        Subscriber& subscriber = *subscribers[i];
        EXPECT_TRUE(subscriber.pumpUntil([&] { return !subscriber.isOpen(); }, 2000ms));
        EXPECT_GT(subscriber.watch("live").offset, 0u) << "saw part of the stream before the kill";
        auto connected = subscriber.connect(nodes[i % 2]->port());
        ASSERT_TRUE(connected);
        EXPECT_EQ(connected->value("resumed", true), false) << "sessions live on the node that died";
        EXPECT_TRUE(subscriber.pumpUntil([&] { return subscriber.watch("live").subscribed; }, 3000ms));
    }
    pumpAll(500ms);
    publisher.stop();
    auto records = publisher.records();
    for (const auto& record : records) ASSERT_EQ(record.status, 200u) << "publication " << record.n;
    for (auto& subscriber : subscribers) {
        ChannelWatch& watch = subscriber->watch("live");
        EXPECT_TRUE(subscriber->pumpUntil([&] { return hasAll(watch, records); }, 10000ms));
        EXPECT_EQ(watch.received.size(), records.size());
        EXPECT_TRUE(noSilentLoss(watch, records, /*allowTold=*/false));
        EXPECT_EQ(watch.subscribeErrors, 0);
    }
}

TEST(RedisCluster, RedisPausedMidStreamAnswers503AndLosesNothingAcknowledged) {
    RedisServerProcess redis;
    auto nodes = startNodes(2, onRedis(redis));
    Subscriber onPublisher, onOther;
    for (std::size_t node = 0; node < 2; ++node) {
        Subscriber* subscriber = node == 0 ? &onPublisher : &onOther;
        ASSERT_TRUE(subscriber->connect(nodes[node]->port()));
        subscriber->subscribe("pause");
        ASSERT_TRUE(subscriber->pumpUntil([&] { return subscriber->watch("pause").subscribed; }, 3000ms));
    }
    StreamPublisher publisher({nodes[0]->apiPort()}, "pause", 10ms);
    ASSERT_TRUE(eventually([&] { return publisher.ok() >= 50; }, 5000ms));

    redis.pause();
    auto pausedAt = Clock::now();
    // The publishing node is the one checked: the other learns of the outage only from its next
    // liveness probe (every 5 s), which may come after the outage.
    HttpTestClient api(nodes[0]->apiPort()), other(nodes[1]->apiPort());
    bool notReady = false, degraded = false;
    while (Clock::now() - pausedAt < 5000ms) {
        onPublisher.pump(50ms);
        onOther.pump(50ms);
        HttpResult ready = api.get("/readyz");
        HttpResult health = api.get("/healthz");
        if (ready.status == 503) notReady = true;
        if (health.status == 200 && health.json().value("status", "") == "degraded") degraded = true;
    }
    EXPECT_TRUE(notReady) << "/readyz answered 200 all through the outage";
    EXPECT_TRUE(degraded) << "/healthz never said degraded";
    EXPECT_TRUE(onPublisher.isOpen() && onOther.isOpen()) << "clients stay connected";
    std::uint64_t okBeforeResume = publisher.ok();
    redis.resume();

    EXPECT_TRUE(eventually([&] { return api.get("/readyz").status == 200; }, 8000ms));
    EXPECT_TRUE(eventually([&] { return other.get("/readyz").status == 200; }, 8000ms));
    EXPECT_EQ(api.get("/healthz").json(), (json{{"status", "ok"}}));
    EXPECT_TRUE(eventually([&] { return publisher.ok() >= okBeforeResume + 50; }, 8000ms));
    publisher.stop();

    auto records = publisher.records();
    int unavailable = 0;
    for (const auto& record : records) {
        if (record.status == 200) continue;
        EXPECT_EQ(record.status, 503u) << "publication " << record.n;
        EXPECT_EQ(record.code, 50301) << "publication " << record.n;
        EXPECT_LT(record.took.count(), 2000) << "a 503 comes within redis.command_timeout (1 s)";
        ++unavailable;
    }
    EXPECT_GT(unavailable, 0);
    for (Subscriber* subscriber : {&onPublisher, &onOther}) {
        ChannelWatch& watch = subscriber->watch("pause");
        EXPECT_TRUE(subscriber->pumpUntil([&] { return hasAll(watch, records); }, 10000ms));
        EXPECT_TRUE(subscriber->isOpen());
        EXPECT_TRUE(noSilentLoss(watch, records, /*allowTold=*/false));
    }
}

// A node whose pub/sub connection comes back after the first publications of a new epoch (the
// other node published right after Redis restarted without its data) finds the new epoch in its
// position check and hands over what it holds, so its subscribers are told at once.
TEST(RedisCluster, ARedisRestartWithoutPersistenceIsReportedAsANewEpoch) {
    RedisServerProcess redis;  // --save "" --appendonly no: a restart loses everything
    auto nodes = startNodes(2, onRedis(redis));
    Subscriber subscriber;
    ASSERT_TRUE(subscriber.connect(nodes[1]->port()));
    subscriber.subscribe("restart");
    ChannelWatch& watch = subscriber.watch("restart");
    ASSERT_TRUE(subscriber.pumpUntil([&] { return watch.subscribed; }, 3000ms));
    HttpTestClient api(nodes[0]->apiPort());
    std::vector<PublishRecord> records;
    auto publish = [&](int n) {
        HttpResult result = api.postJson("/api/publish", json{{"channel", "restart"}, {"data", {{"n", n}}}});
        records.push_back(recordOf(n, result));
        return result.status;
    };
    for (int n = 0; n < 5; ++n) ASSERT_EQ(publish(n), 200u);
    ASSERT_TRUE(subscriber.pumpUntil([&] { return watch.offset == 5; }, 3000ms));
    const std::string oldEpoch = watch.epoch;

    redis.stop();
    redis.start();
    int n = 5;
    ASSERT_TRUE(eventually([&] { return publish(n++) == 200; }, 10000ms));
    for (int i = 0; i < 3; ++i) ASSERT_EQ(publish(n++), 200u);
    EXPECT_NE(records.back().epoch, oldEpoch) << "Redis lost the channel: a new epoch";
    EXPECT_TRUE(subscriber.pumpUntil([&] { return hasAll(watch, records) && watch.subscribed; }, 10000ms));
    EXPECT_TRUE(watch.toldEpochs.contains(oldEpoch)) << "the subscriber must be told, not shown a silent gap";
    EXPECT_EQ(watch.epoch, records.back().epoch);
    EXPECT_TRUE(noSilentLoss(watch, records, /*allowTold=*/true));
}

TEST(RedisCluster, ReconnectingWithSinceWhilePublishingAtFullSpeedSeesNoGapNorDuplicate) {
    RedisServerProcess redis;
    auto nodes = startNodes(2, onRedis(redis));
    Subscriber subscriber;
    ASSERT_TRUE(subscriber.connect(nodes[1]->port()));
    subscriber.subscribe("fast");
    ChannelWatch& watch = subscriber.watch("fast");
    ASSERT_TRUE(subscriber.pumpUntil([&] { return watch.subscribed; }, 3000ms));

    StreamPublisher publisher({nodes[0]->apiPort()}, "fast", 0ms);
    auto started = Clock::now();
    int reconnects = 0;
    while (Clock::now() - started < 2000ms) {
        subscriber.pump(150ms);
        subscriber.drop();
        std::this_thread::sleep_for(50ms);
        // A new session each time: a resumed one would not get back the QoS 0 publications of its
        // absence (protocol.md, "Sessions"); recovery is what this test is about.
        ASSERT_TRUE(subscriber.connect(nodes[reconnects % 2]->port(), /*resume=*/false));
        ++reconnects;
    }
    publisher.stop();
    auto records = publisher.records();
    for (const auto& record : records) ASSERT_EQ(record.status, 200u) << "publication " << record.n;
    EXPECT_GE(reconnects, 5);
    EXPECT_TRUE(subscriber.pumpUntil([&] { return hasAll(watch, records); }, 10000ms));
    EXPECT_EQ(watch.received.size(), records.size());
    EXPECT_TRUE(noSilentLoss(watch, records, /*allowTold=*/false));
    EXPECT_EQ(watch.subscribeErrors, 0);
}

TEST(RedisCluster, AnIdempotentPublishRetriedOnAnotherNodePublishesOnce) {
    RedisServerProcess redis;
    auto nodes = startNodes(2, onRedis(redis));
    Subscriber subscriber;
    ASSERT_TRUE(subscriber.connect(nodes[1]->port()));
    subscriber.subscribe("once");
    ChannelWatch& watch = subscriber.watch("once");
    ASSERT_TRUE(subscriber.pumpUntil([&] { return watch.subscribed; }, 3000ms));

    json body{{"channel", "once"}, {"data", {{"n", 0}}}};
    HttpResult first = httpPostJson(nodes[0]->apiPort(), "/api/publish", body, {{"Idempotency-Key", "k-0"}});
    HttpResult retry = httpPostJson(nodes[1]->apiPort(), "/api/publish", body, {{"Idempotency-Key", "k-0"}});
    ASSERT_EQ(first.status, 200u) << first.body;
    ASSERT_EQ(retry.status, 200u) << retry.body;
    EXPECT_EQ(retry.json()["offset"], first.json()["offset"]);
    EXPECT_EQ(retry.json()["epoch"], first.json()["epoch"]);
    EXPECT_EQ(retry.json()["mid"], first.json()["mid"]);

    // The same key sent to both nodes at the same moment, 20 times over.
    constexpr int kKeys = 20;
    std::vector<HttpResult> onFirst(kKeys), onSecond(kKeys);
    auto sendAll = [&](unsigned short port, std::vector<HttpResult>& results) {
        HttpTestClient api(port);
        for (int k = 1; k <= kKeys; ++k)
            results[k - 1] = api.postJson("/api/publish", json{{"channel", "once"}, {"data", {{"n", k}}}},
                                          {{"Idempotency-Key", "k-" + std::to_string(k)}});
    };
    std::thread other([&] { sendAll(nodes[1]->apiPort(), onSecond); });
    sendAll(nodes[0]->apiPort(), onFirst);
    other.join();
    for (int k = 0; k < kKeys; ++k) {
        ASSERT_EQ(onFirst[k].status, 200u) << onFirst[k].body;
        ASSERT_EQ(onSecond[k].status, 200u) << onSecond[k].body;
        EXPECT_EQ(onFirst[k].json()["offset"], onSecond[k].json()["offset"]) << "key " << k + 1;
        EXPECT_EQ(onFirst[k].json()["mid"], onSecond[k].json()["mid"]) << "key " << k + 1;
    }
    HttpResult last = httpPostJson(nodes[0]->apiPort(), "/api/publish", json{{"channel", "once"}, {"data", "end"}});
    ASSERT_EQ(last.status, 200u);
    EXPECT_EQ(last.json().value("offset", 0), kKeys + 2) << "one offset per key, and one for this";
    EXPECT_TRUE(subscriber.pumpUntil([&] { return watch.offset >= kKeys + 2u; }, 5000ms));
    EXPECT_EQ(watch.received.size(), kKeys + 2u);
    EXPECT_TRUE(watch.problems.empty()) << watch.problems.front();
}

TEST(RedisCluster, DeliveryReportsCountEveryNode) {
    RedisServerProcess redis;
    auto nodes = startNodes(3, onRedis(redis));
    ResumingClient first, second;
    ASSERT_TRUE(first.connect(nodes[0]->port()) && second.connect(nodes[1]->port()));
    ASSERT_TRUE(first.subscribe({"report"}) && second.subscribe({"report"}));

    auto answer = std::async(std::launch::async, [&] {
        return httpPostJson(
            nodes[2]->apiPort(), "/api/publish",
            json{{"channel", "report"}, {"data", "x"}, {"qos", 1}, {"wait", {{"acks", 2}, {"timeout_ms", 3000}}}});
    });
    auto deadline = Clock::now() + 5000ms;
    while (answer.wait_for(0ms) != std::future_status::ready && Clock::now() < deadline) {
        first.pump(10ms);
        second.pump(10ms);
    }
    ASSERT_EQ(answer.wait_for(0ms), std::future_status::ready);
    HttpResult report = answer.get();
    ASSERT_EQ(report.status, 200u) << report.body;
    EXPECT_EQ(report.json().value("reached", 0), 2) << report.body;
    EXPECT_EQ(report.json().value("acked", 0), 2) << report.body;
    EXPECT_EQ(first.app.log("report").delivered.size(), 1u);
    EXPECT_EQ(second.app.log("report").delivered.size(), 1u);

    // `connected` comes once the node joined the user's channel: a send right after it reaches
    // both nodes.
    WsTestClient userOnFirst, userOnSecond;
    ASSERT_TRUE(userOnFirst.connectProtocol(nodes[0]->port(), "u6"));
    ASSERT_TRUE(userOnSecond.connectProtocol(nodes[1]->port(), "u6"));
    HttpResult sent = httpPostJson(nodes[2]->apiPort(), "/api/send", json{{"user", "u6"}, {"data", "hi"}});
    ASSERT_EQ(sent.status, 200u) << sent.body;
    EXPECT_EQ(sent.json().value("reached", 0), 2) << sent.body;
    for (WsTestClient* client : {&userOnFirst, &userOnSecond})
        EXPECT_TRUE(client->waitFor([](const json& m) { return typeOf(m) == "message"; }));
}

TEST(RedisCluster, AUserConnectingWhileRedisIsDownIsToldToComeBackAndReachedOnceItIs) {
    RedisServerProcess redis;
    auto nodes = startNodes(2, onRedis(redis));
    redis.stop();
    WsTestClient refused;
    auto reply = refused.connectWith(nodes[0]->port(), json{{"user", "u9"}});
    ASSERT_TRUE(reply);
    EXPECT_EQ(typeOf(*reply), "error") << reply->dump();
    EXPECT_EQ(reply->value("code", 0), 115) << reply->dump();
    auto ending = refused.waitClose();
    ASSERT_TRUE(ending);
    EXPECT_EQ(ending->closeCode, 4008);
    EXPECT_EQ(readMetric(nodes[0]->apiPort(), "wspush_sessions"), 0) << "no session was left behind";

    redis.start();
    for (auto& node : nodes)
        EXPECT_TRUE(eventually([&] { return httpGet(node->apiPort(), "/readyz").status == 200; }, 8000ms));
    WsTestClient user;
    ASSERT_TRUE(user.connectProtocol(nodes[0]->port(), "u9"));
    HttpResult sent = httpPostJson(nodes[1]->apiPort(), "/api/send", json{{"user", "u9"}, {"data", "back"}});
    ASSERT_EQ(sent.status, 200u) << sent.body;
    EXPECT_EQ(sent.json().value("reached", 0), 1) << sent.body;
    EXPECT_TRUE(user.waitFor([](const json& m) { return typeOf(m) == "message"; }));
}

TEST(RedisCluster, PresenceCountsEveryNodeAndANodeKilledLeavesWithinPresenceTtl) {
    RedisServerProcess redis;
    json withPresence = onRedis(redis);
    std::vector<std::unique_ptr<DaemonProcess>> nodes;
    for (int i = 1; i <= 3; ++i) {
        json config = nodeConfig("n" + std::to_string(i), withPresence);
        config["presence_ttl"] = 3;
        config["channel_defaults"]["presence"] = true;
        nodes.push_back(std::make_unique<DaemonProcess>(config));
    }
    for (auto& node : nodes)
        ASSERT_TRUE(eventually([&] { return httpGet(node->apiPort(), "/readyz").status == 200; }, 5000ms));
    std::vector<std::unique_ptr<WsTestClient>> clients;
    for (int i = 0; i < 6; ++i) {
        auto& client = clients.emplace_back(std::make_unique<WsTestClient>());
        ASSERT_TRUE(client->connectProtocol(nodes[i % 3]->port(), "u" + std::to_string(i % 4)));
        ASSERT_TRUE(client->subscribe("lobby"));
    }
    auto stats = [&](std::size_t node) {
        return httpGet(nodes[node]->apiPort(), "/api/presence/stats?channel=lobby").json();
    };
    // Each node stores its entries as its replies go out, on its own Redis connection: another
    // node sees them once Redis ran them, a moment later.
    for (std::size_t node = 0; node < 3; ++node) {
        EXPECT_TRUE(eventually([&] { return stats(node).value("clients", 0) == 6; }, 2000ms))
            << "every node answers for all: " << stats(node).dump();
        EXPECT_EQ(stats(node).value("users", 0), 4);
    }
    std::map<std::string, int> perNode;
    json listed = httpGet(nodes[1]->apiPort(), "/api/presence?channel=lobby").json();
    for (const auto& entry : listed["clients"]) ++perNode[entry.value("node", "")];
    EXPECT_EQ(perNode, (std::map<std::string, int>{{"n1", 2}, {"n2", 2}, {"n3", 2}}));

    // Users online, cluster-wide. Client i is on node i % 3 as user u(i % 4).
    HttpTestClient api(nodes[0]->apiPort());
    auto status = [&] {
        return api.postJson("/api/users/status", {{"users", {"u0", "u1", "u2", "u3", "nobody"}}}).body;
    };
    EXPECT_EQ(status(), R"({"users":{"u0":true,"u1":true,"u2":true,"u3":true,"nobody":false}})");
    auto nodesOf = [&](const std::string& user) {
        std::multiset<std::string> names;
        HttpResult found = api.get("/api/users/" + user);
        EXPECT_EQ(found.status, 200u) << found.body;
        json body = found.json();  // kept: a range-for over a temporary's member would dangle
        for (const auto& connection : body["connections"]) names.insert(connection.value("node", ""));
        return names;
    };
    EXPECT_EQ(nodesOf("u1"), (std::multiset<std::string>{"n2", "n3"}));
    auto onlineUsers = [&](unsigned short port) {
        std::set<std::string> users;
        json body = httpGet(port, "/api/online").json();
        for (const auto& user : body["users"]) users.insert(user.get<std::string>());
        return users;
    };
    EXPECT_EQ(onlineUsers(nodes[1]->apiPort()), (std::set<std::string>{"u0", "u1", "u2", "u3"}));

    // Past presence_ttl, the living nodes' entries are still there: refreshed every second.
    std::this_thread::sleep_for(4500ms);
    EXPECT_EQ(stats(0).value("clients", 0), 6);

    ASSERT_TRUE(nodes[2]->terminate(SIGKILL));
    ASSERT_TRUE(nodes[2]->waitExit(2000ms).has_value());
    auto killedAt = Clock::now();
    EXPECT_TRUE(eventually([&] { return stats(0).value("clients", 0) == 4; }, 5000ms)) << stats(0).dump();
    EXPECT_LE(Clock::now() - killedAt, 4000ms) << "gone within presence_ttl (3 s) and a refresh";
    // Client i is on node i % 3 as user u(i % 4): n3 took u2's only connection and one of u1's.
    EXPECT_EQ(stats(1).value("users", 0), 3);
    EXPECT_EQ(status(), R"({"users":{"u0":true,"u1":true,"u2":false,"u3":true,"nobody":false}})");
    EXPECT_EQ(nodesOf("u1"), (std::multiset<std::string>{"n2"}));
    EXPECT_EQ(onlineUsers(nodes[0]->apiPort()), (std::set<std::string>{"u0", "u1", "u3"}));
    clients[0]->close();  // u0 on n1: u0 keeps its connection on n2
    EXPECT_TRUE(eventually([&] { return stats(1).value("clients", 0) == 3; }, 3000ms));
    EXPECT_EQ(stats(1).value("users", 0), 3);
}

TEST(RedisCluster, JoinAndLeaveReachSubscribersOnEveryNode) {
    RedisServerProcess redis;
    json base = onRedis(redis);
    std::vector<std::unique_ptr<DaemonProcess>> nodes;
    for (int i = 1; i <= 2; ++i) {
        json config = nodeConfig("n" + std::to_string(i), base);
        config["namespaces"]["room"] = json{{"presence", true}, {"join_leave", true}};
        config["client"] = json{{"allow_anonymous", true}, {"trust_client_user", true}, {"user_status", true}};
        nodes.push_back(std::make_unique<DaemonProcess>(config));
    }
    for (auto& node : nodes)
        ASSERT_TRUE(eventually([&] { return httpGet(node->apiPort(), "/readyz").status == 200; }, 5000ms));
    auto isType = [](const json& m, const char* type) { return m.value("type", "") == type; };
    WsTestClient watcher, guest;
    ASSERT_TRUE(watcher.connectProtocol(nodes[0]->port(), "watcher"));
    ASSERT_TRUE(watcher.subscribe("room:1"));
    auto connected = guest.connectWith(nodes[1]->port(), json{{"user", "guest"}, {"device", "d2"}});
    ASSERT_TRUE(connected);
    std::string guestId = connected->value("client", "");
    ASSERT_TRUE(guest.subscribe("room:1"));
    auto joined =
        watcher.waitFor([&](const json& m) { return isType(m, "join") && m.value("client", "") == guestId; }, 3000ms);
    ASSERT_TRUE(joined) << "a join made on n2 reaches a subscriber on n1";
    EXPECT_EQ(joined->value("user", ""), "guest");
    EXPECT_EQ(joined->value("device", ""), "d2");
    // A client on n2 asks for the status of a user connected to n1.
    auto status = guest.request({{"type", "status"}, {"users", {"watcher", "nobody"}}});
    ASSERT_TRUE(status);
    EXPECT_EQ((*status)["users"], (json{{"watcher", true}, {"nobody", false}})) << status->dump();
    guest.close();
    EXPECT_TRUE(
        watcher.waitFor([&](const json& m) { return isType(m, "leave") && m.value("client", "") == guestId; }, 3000ms));
}

TEST(RedisCluster, EachDeviceGetsItsInboxOnWhicheverNodeItComesBack) {
    RedisServerProcess redis;
    json base = onRedis(redis);
    std::vector<std::unique_ptr<DaemonProcess>> nodes;
    for (int i = 1; i <= 2; ++i) {
        json config = nodeConfig("n" + std::to_string(i), base);
        config["client"] = json{{"allow_anonymous", true}, {"trust_client_user", true}};
        config["inbox"] = json{{"max_messages", 1000}};
        nodes.push_back(std::make_unique<DaemonProcess>(config));
    }
    for (auto& node : nodes)
        ASSERT_TRUE(eventually([&] { return httpGet(node->apiPort(), "/readyz").status == 200; }, 5000ms));
    auto connect = [&](WsTestClient& client, std::size_t node, const std::string& device) {
        auto connected = client.connectWith(nodes[node]->port(), json{{"user", "carol"}, {"device", device}});
        EXPECT_TRUE(connected && connected->value("type", "") == "connected") << (connected ? connected->dump() : "");
        return connected.value_or(json::object());
    };
    auto receiveAll = [](WsTestClient& client, std::size_t count) {
        std::vector<int> received;
        while (received.size() < count) {
            auto message = client.waitFor([](const json& m) { return m.value("type", "") == "message"; });
            if (!message) break;
            if (message->contains("did")) client.sendJson({{"type", "ack"}, {"did", (*message)["did"]}});
            received.push_back((*message)["data"].value("n", 0));
        }
        return received;
    };
    for (auto [node, device] : {std::pair{0, "phone"}, std::pair{1, "laptop"}}) {
        WsTestClient client;
        connect(client, node, device);  // a first connect: the device is remembered from now on
        client.close();
    }
    HttpTestClient api(nodes[0]->apiPort());
    std::vector<int> expected;
    for (int i = 1; i <= 1000; ++i) {
        HttpResult sent = api.postJson("/api/send", json{{"user", "carol"}, {"data", {{"n", i}}}, {"qos", 1}});
        ASSERT_EQ(sent.status, 200u) << sent.body;
        expected.push_back(i);
    }
    // Each device on the other node than the one it first used; both get all of it, once, in order.
    for (auto [node, device] : {std::pair{1, "phone"}, std::pair{0, "laptop"}}) {
        WsTestClient client;
        auto started = Clock::now();
        json connected = connect(client, node, device);
        EXPECT_EQ(connected["inbox"], (json{{"pending", 1000}, {"dropped", 0}})) << device << ": " << connected.dump();
        EXPECT_EQ(receiveAll(client, 1000), expected) << device;
        std::cout << "[ inbox    ] 1,000 messages to " << device << " on Redis, connect to last: "
                  << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count() << " ms\n";
        EXPECT_FALSE(client.waitFor([](const json& m) { return m.value("type", "") == "message"; }, 200ms));
        client.close();
    }
    // Both finished everything: the inbox is trimmed on Redis, whichever node asks.
    EXPECT_TRUE(eventually(
        [&] { return httpGet(nodes[1]->apiPort(), "/api/users/carol/inbox").json()["messages"].empty(); }, 5000ms));
    json inbox = httpGet(nodes[1]->apiPort(), "/api/users/carol/inbox").json();
    std::set<std::string> devices;
    for (const auto& device : inbox["devices"])
        devices.insert(device.value("device", "") + "@" + std::to_string(device.value("cursor", 0)));
    EXPECT_EQ(devices, (std::set<std::string>{"phone@1000", "laptop@1000"}));
}

TEST(RedisCluster, DisconnectOnOneNodeClosesTheUsersConnectionsOnOthers) {
    RedisServerProcess redis;
    auto nodes = startNodes(3, onRedis(redis));
    WsTestClient onSecond, onThird, bystander;
    ASSERT_TRUE(onSecond.connectProtocol(nodes[1]->port(), "u7"));
    ASSERT_TRUE(onThird.connectProtocol(nodes[2]->port(), "u7"));
    ASSERT_TRUE(bystander.connectProtocol(nodes[2]->port(), "someone-else"));

    HttpResult sent = httpPostJson(nodes[0]->apiPort(), "/api/disconnect", json{{"user", "u7"}});
    EXPECT_EQ(sent.status, 202u) << sent.body;
    for (WsTestClient* client : {&onSecond, &onThird}) {
        auto ending = client->waitClose(3000ms);
        ASSERT_TRUE(ending.has_value()) << "still open";
        EXPECT_EQ(ending->closeCode, 4503);
    }
    EXPECT_TRUE(bystander.pumpFor(200ms));
    EXPECT_TRUE(bystander.isOpen());
}

// A master, a replica and three Sentinels (quorum 2) that have found each other.
struct SentinelSetup {
    RedisServerProcess master;
    RedisServerProcess replica;
    std::vector<std::unique_ptr<RedisSentinelProcess>> sentinels;

    SentinelSetup() : replica({"--replicaof", "127.0.0.1", std::to_string(master.port())}) {
        for (int i = 0; i < 3; ++i) sentinels.push_back(std::make_unique<RedisSentinelProcess>("m", master.port(), 2));
    }

    // The replica is in sync and every Sentinel knows the replica and the two other Sentinels:
    // without that, the Sentinels could not agree on a failover.
    bool ready() const {
        RedisReply info = replica.command({"INFO", "replication"});
        if (info.asString().value_or("").find("master_link_status:up") == std::string_view::npos) return false;
        return std::all_of(sentinels.begin(), sentinels.end(), [](const auto& sentinel) {
            return sentinel->masterField("m", "num-slaves") == "1" &&
                   sentinel->masterField("m", "num-other-sentinels") == "2";
        });
    }

    json daemonRedis() const {
        json addresses = json::array();
        for (const auto& sentinel : sentinels) addresses.push_back(sentinel->address());
        return json{{"sentinel", {{"addresses", addresses}, {"master_names", {"m"}}}}};
    }
};

TEST(RedisCluster, NodesFollowASentinelFailoverMidStream) {
    SentinelSetup redis;
    ASSERT_TRUE(eventually([&] { return redis.ready(); }, 15000ms)) << redis.sentinels[0]->logText();
    auto nodes = startNodes(2, redis.daemonRedis());
    Subscriber onPublisher, onOther;
    for (std::size_t node = 0; node < 2; ++node) {
        Subscriber* subscriber = node == 0 ? &onPublisher : &onOther;
        ASSERT_TRUE(subscriber->connect(nodes[node]->port()));
        subscriber->subscribe("failover");
        ASSERT_TRUE(subscriber->pumpUntil([&] { return subscriber->watch("failover").subscribed; }, 3000ms));
    }
    StreamPublisher publisher({nodes[0]->apiPort()}, "failover", 10ms);
    auto pumpBoth = [&](Millis duration) {
        onPublisher.pump(duration);
        onOther.pump(duration);
    };
    ASSERT_TRUE(eventually([&] { return publisher.ok() >= 50; }, 5000ms));
    pumpBoth(100ms);

    redis.master.kill();
    auto killedAt = Clock::now();
    bool promoted = false;
    while (Clock::now() - killedAt < 15000ms && !promoted) {
        pumpBoth(100ms);
        promoted = redis.sentinels[0]->masterPort("m") == redis.replica.port();
    }
    ASSERT_TRUE(promoted) << "no failover within 15 s:\n" << redis.sentinels[0]->logText();
    std::uint64_t okAtPromotion = publisher.ok();
    auto followed = [&] { return publisher.ok() >= okAtPromotion + 50; };
    while (Clock::now() - killedAt < 30000ms && !followed()) pumpBoth(100ms);
    EXPECT_TRUE(followed()) << "publishes did not come back after the failover";
    publisher.stop();
    std::cout << "[          ] failover: publishes back "
              << std::chrono::duration_cast<Millis>(Clock::now() - killedAt).count() << " ms after the kill\n";

    auto records = publisher.records();
    int unavailable = 0;
    for (const auto& record : records) {
        if (record.status == 200) continue;
        EXPECT_EQ(record.status, 503u) << "publication " << record.n;
        EXPECT_EQ(record.code, 50301) << "publication " << record.n;
        ++unavailable;
    }
    EXPECT_GT(unavailable, 0) << "the master was gone for a while";
    for (Subscriber* subscriber : {&onPublisher, &onOther}) {
        ChannelWatch& watch = subscriber->watch("failover");
        EXPECT_TRUE(subscriber->pumpUntil([&] { return hasAll(watch, records); }, 10000ms));
        EXPECT_TRUE(subscriber->isOpen());
        EXPECT_TRUE(noSilentLoss(watch, records, /*allowTold=*/true));
    }
}

}  // namespace
}  // namespace wspush::testing
