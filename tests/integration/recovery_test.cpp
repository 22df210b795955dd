// Channel history and recovery through the real daemon: subscribe with `since` while publications
// stream at full speed, every case in which recovery is refused, and a subscribe/unsubscribe race
// across event loops that must leave the channel's stream intact.
#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "support/test_helpers.h"

namespace wspush::testing {
namespace {

using json = nlohmann::json;

// A daemon whose default namespace keeps history, plus namespaces for the refusal cases.
json historyConfig() {
    return json{{"channel_defaults", {{"history_size", 10000}, {"history_ttl", 300}, {"recovery_max", 10000}}},
                {"namespaces",
                 {{"plain", json::object()},
                  {"small", {{"history_size", 5}}},
                  {"brief", {{"history_size", 100}, {"history_ttl", 0.5}}},
                  {"capped", {{"history_size", 100}, {"recovery_max", 3}}}}}};
}

// Publishes `count` publications into `channel`; returns the last publish response.
json publishMany(HttpTestClient& api, const std::string& channel, int count, int qos = 0) {
    json last;
    for (int i = 0; i < count; ++i) {
        HttpResult result = api.postJson("/api/publish", {{"channel", channel}, {"data", {{"i", i}}}, {"qos", qos}});
        EXPECT_EQ(result.status, 200u) << result.body;
        last = result.json();
    }
    return last;
}

json subscribeSince(WsTestClient& client, const std::string& channel, std::uint64_t offset, const std::string& epoch) {
    auto reply = client.request(
        json{{"type", "subscribe"}, {"channel", channel}, {"since", {{"offset", offset}, {"epoch", epoch}}}});
    EXPECT_TRUE(reply) << "no reply to subscribe " << channel;
    return reply.value_or(json::object());
}

// Reads messages of `channel` until offset `last`; they must be exactly from+1 … last, in order.
::testing::AssertionResult receivesConsecutive(WsTestClient& client, const std::string& channel, std::uint64_t from,
                                               std::uint64_t last, Millis timeout = 10000ms) {
    std::uint64_t expected = from + 1;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (expected <= last) {
        auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return ::testing::AssertionFailure() << "timed out waiting for offset " << expected;
        auto message = client.waitFor([&](const json& m) { return m.value("channel", "") == channel; }, left);
        if (!message) return ::testing::AssertionFailure() << "no message; waiting for offset " << expected;
        if (typeOf(*message) != "message")
            return ::testing::AssertionFailure() << "expected offset " << expected << ", got " << message->dump();
        std::uint64_t offset = message->value("offset", std::uint64_t{0});
        if (offset != expected)
            return ::testing::AssertionFailure() << "expected offset " << expected << ", got " << offset
                                                 << (offset < expected ? " (a duplicate)" : " (a gap)");
        ++expected;
    }
    return ::testing::AssertionSuccess();
}

TEST(Recovery, TwentyClientsRecoverFromRandomOffsetsWhilePublishingRunsAtFullSpeed) {
    DaemonProcess daemon(historyConfig());
    HttpTestClient api(daemon.apiPort());
    json first = publishMany(api, "live", 200);
    const std::string epoch = first["epoch"];

    constexpr int kClients = 20;
    constexpr int kPublications = 3000;
    std::atomic<std::uint64_t> top{200};
    std::atomic<bool> publishing{true};
    std::thread publisher([&] {
        HttpTestClient http(daemon.apiPort());
        for (int i = 0; i < kPublications; ++i) {
            HttpResult result = http.postJson("/api/publish", {{"channel", "live"}, {"data", {{"n", i}}}});
            if (result.status != 200) break;
            top = result.json().value("offset", std::uint64_t{0});
        }
        publishing = false;
    });

    std::vector<std::thread> clients;
    std::vector<std::string> failures(kClients);
    for (int c = 0; c < kClients; ++c) {
        clients.emplace_back([&, c] {
            std::mt19937 random(c);
            std::this_thread::sleep_for(std::chrono::milliseconds(random() % 400));
            WsTestClient client;
            if (!client.connectProtocol(daemon.port())) return void(failures[c] = "connect: " + client.lastError());
            std::uint64_t since = random() % (top.load() + 1);
            json reply = subscribeSince(client, "live", since, epoch);
            if (typeOf(reply) != "subscribed" || reply.value("recovered", false) != true)
                return void(failures[c] = "subscribe since " + std::to_string(since) + ": " + reply.dump());
            // Wait for the end of the stream, then read everything up to the last offset.
            while (publishing) client.pumpFor(50ms);
            auto check = receivesConsecutive(client, "live", since, top.load(), 30000ms);
            if (!check) failures[c] = "since " + std::to_string(since) + ": " + check.message();
        });
    }
    for (auto& thread : clients) thread.join();
    publisher.join();
    EXPECT_EQ(top.load(), 200u + kPublications);
    for (int c = 0; c < kClients; ++c) EXPECT_EQ(failures[c], "") << "client " << c;
}

TEST(Recovery, RefusedInEveryDocumentedCaseAndNeverPartial) {
    DaemonProcess daemon(historyConfig());
    HttpTestClient api(daemon.apiPort());
    WsTestClient client;
    ASSERT_TRUE(client.connectProtocol(daemon.port())) << client.lastError();

    auto expectRefused = [&](const std::string& channel, std::uint64_t since, const std::string& epoch,
                             std::uint64_t top, const char* why) {
        json reply = subscribeSince(client, channel, since, epoch);
        EXPECT_EQ(typeOf(reply), "subscribed") << why << ": " << reply.dump();
        EXPECT_EQ(reply.value("recovered", true), false) << why << ": " << reply.dump();
        EXPECT_EQ(reply.value("offset", std::uint64_t{0}), top) << why;
        // Nothing of the past follows: the next message is the next publication.
        json next = publishMany(api, channel, 1);
        EXPECT_TRUE(receivesConsecutive(client, channel, top, top + 1)) << why;
        EXPECT_TRUE(client.request(json{{"type", "unsubscribe"}, {"channel", channel}}));
        return next;
    };

    std::string epoch = publishMany(api, "plain:a", 3)["epoch"];
    expectRefused("plain:a", 1, epoch, 3, "the namespace keeps no history");

    epoch = publishMany(api, "news", 3)["epoch"];
    expectRefused("news", 1, "another-epoch", 3, "another epoch");
    expectRefused("news", 99, epoch, 4, "since is above the top offset");

    epoch = publishMany(api, "small:a", 10)["epoch"];
    expectRefused("small:a", 2, epoch, 10, "offset 3 is no longer kept (history_size 5)");

    epoch = publishMany(api, "capped:a", 10)["epoch"];
    expectRefused("capped:a", 6, epoch, 10, "4 missed, recovery_max 3");

    epoch = publishMany(api, "brief:a", 3)["epoch"];
    std::this_thread::sleep_for(700ms);
    expectRefused("brief:a", 1, epoch, 3, "expired (history_ttl 0.5 s)");

    // The boundaries on the other side: all of it, or nothing missed.
    json reply = subscribeSince(client, "small:a", 6, epoch = publishMany(api, "small:b", 10)["epoch"]);
    EXPECT_EQ(reply.value("recovered", true), false) << "small:a has its own epoch: " << reply.dump();
    reply = subscribeSince(client, "small:b", 5, epoch);
    EXPECT_EQ(reply.value("recovered", false), true) << reply.dump();
    EXPECT_TRUE(receivesConsecutive(client, "small:b", 5, 10));
    std::string cappedEpoch = publishMany(api, "capped:b", 10)["epoch"];
    reply = subscribeSince(client, "capped:b", 7, cappedEpoch);
    EXPECT_EQ(reply.value("recovered", false), true) << "3 missed, recovery_max 3: " << reply.dump();
    EXPECT_TRUE(receivesConsecutive(client, "capped:b", 7, 10));
    std::string topEpoch = publishMany(api, "top", 4)["epoch"];
    reply = subscribeSince(client, "top", 4, topEpoch);
    EXPECT_EQ(reply.value("recovered", false), true) << "nothing missed: " << reply.dump();

    // Without `since` there is no `recovered` at all.
    auto plain = client.subscribe("plain:b");
    ASSERT_TRUE(plain);
    EXPECT_FALSE(plain->contains("recovered")) << plain->dump();
}

// A recovery larger than the connection's write queue (here 3,000 publications of 1 KB: 3 MB
// against 1 MiB) is paced by the queue draining, not mistaken for a slow consumer.
TEST(Recovery, ARecoveryLargerThanTheWriteQueueIsPacedNotClosed) {
    DaemonProcess daemon(historyConfig());
    HttpTestClient api(daemon.apiPort());
    std::string epoch = publishMany(api, "big", 1)["epoch"];
    WsTestClient client;
    ASSERT_TRUE(client.connectProtocol(daemon.port())) << client.lastError();
    std::string kilobyte(1000, 'x');
    for (int request = 0; request < 3; ++request) {
        json publications = json::array();
        for (int i = 0; i < 1000; ++i) publications.push_back({{"channel", "big"}, {"data", kilobyte}});
        ASSERT_EQ(api.postJson("/api/batch", {{"publications", publications}}).status, 200u);
    }
    json reply = subscribeSince(client, "big", 1, epoch);
    EXPECT_EQ(reply.value("recovered", false), true) << reply.dump();
    publishMany(api, "big", 1);  // a live one behind the recovery
    EXPECT_TRUE(receivesConsecutive(client, "big", 1, 3002, 20000ms));
    EXPECT_EQ(readMetric(daemon.apiPort(), "wspush_slow_consumer_closes_total"), 0);
}

TEST(Recovery, RecoveredPublicationsKeepTheirQos) {
    DaemonProcess daemon(historyConfig());
    HttpTestClient api(daemon.apiPort());
    std::string epoch = publishMany(api, "q", 1)["epoch"];
    publishMany(api, "q", 2, /*qos=*/1);
    WsTestClient client;
    ASSERT_TRUE(client.connectProtocol(daemon.port())) << client.lastError();
    json reply = subscribeSince(client, "q", 1, epoch);
    EXPECT_EQ(reply.value("recovered", false), true) << reply.dump();
    for (std::uint64_t offset = 2; offset <= 3; ++offset) {
        auto message = client.waitFor([](const json& m) { return typeOf(m) == "message"; });
        ASSERT_TRUE(message);
        EXPECT_EQ(message->value("offset", 0u), offset);
        EXPECT_EQ(message->value("qos", 0), 1) << message->dump();
        ASSERT_TRUE(message->contains("did")) << message->dump();
        EXPECT_TRUE(client.sendJson({{"type", "ack"}, {"did", (*message)["did"]}}));
    }
}

TEST(Recovery, AClientWhoseSessionIsGoneRecoversWithSince) {
    DaemonProcess daemon(json{{"channel_defaults", {{"history_size", 100}}}, {"sessions", {{"ttl", 0.2}}}});
    HttpTestClient api(daemon.apiPort());
    auto client = std::make_unique<WsTestClient>();
    auto connected = client->connectProtocol(daemon.port());
    ASSERT_TRUE(connected);
    auto subscribed = client->subscribe("feed");
    ASSERT_TRUE(subscribed);
    publishMany(api, "feed", 3);
    ASSERT_TRUE(receivesConsecutive(*client, "feed", 0, 3));
    std::string epoch = (*subscribed)["epoch"];
    client->drop();
    publishMany(api, "feed", 5);         // missed while away
    std::this_thread::sleep_for(500ms);  // the session expires

    client = std::make_unique<WsTestClient>();
    auto again =
        client->connectWith(daemon.port(), {{"session", (*connected)["session"]}, {"resume", (*connected)["resume"]}});
    ASSERT_TRUE(again);
    EXPECT_EQ(again->value("resumed", true), false) << again->dump();
    json reply = subscribeSince(*client, "feed", 3, epoch);
    EXPECT_EQ(reply.value("recovered", false), true) << reply.dump();
    EXPECT_TRUE(receivesConsecutive(*client, "feed", 3, 8));
}

// The last subscriber leaving on one loop while the first arrives on another must leave the
// engine subscribed exactly when the node has subscribers. Were it left unsubscribed, the stream
// would sit on the engine's idle list and be forgotten under the filler traffic below, and the
// channel would come back under a new epoch: the survivor would see no next message.
TEST(Recovery, SubscribeUnsubscribeRaceAcrossLoopsKeepsTheStream) {
    // Each churner subscribes and unsubscribes as fast as it can, far past the default command rate.
    DaemonProcess daemon(json{{"log", {{"level", "info"}}}, {"limits", {{"commands_per_second", 0}}}});
    std::atomic<bool> stop{false};
    std::thread publisher([&] {
        HttpTestClient http(daemon.apiPort());
        for (int i = 0; i < 5000 && !stop; ++i) http.postJson("/api/publish", {{"channel", "race"}, {"data", i}});
    });
    // Consecutive connections land on the two event loops in turn.
    std::vector<std::unique_ptr<WsTestClient>> churners;
    for (int i = 0; i < 2; ++i) {
        churners.push_back(std::make_unique<WsTestClient>());
        ASSERT_TRUE(churners.back()->connectProtocol(daemon.port()));
    }
    std::vector<std::string> failures(2);
    std::vector<std::thread> threads;
    for (int c = 0; c < 2; ++c)
        threads.emplace_back([&, c] {
            WsTestClient& client = *churners[c];
            for (int round = 0; round < 150 && failures[c].empty(); ++round) {
                auto subscribed = client.subscribe("race");
                if (!subscribed || typeOf(*subscribed) != "subscribed") return void(failures[c] = "subscribe failed");
                std::uint64_t expected = subscribed->value("offset", std::uint64_t{0}) + 1;
                if (c == 0 && round == 149) break;  // the survivor stays, subscribed as the race left it
                auto unsubscribed = client.request(json{{"type", "unsubscribe"}, {"channel", "race"}});
                if (!unsubscribed) return void(failures[c] = "unsubscribe failed");
                // Everything delivered during the subscription is consecutive from its position.
                while (auto message = client.nextMessage(0ms)) {
                    if (typeOf(*message) != "message") continue;
                    if (message->value("offset", std::uint64_t{0}) != expected)
                        return void(failures[c] = "gap or duplicate: " + message->dump());
                    ++expected;
                }
            }
        });
    for (auto& thread : threads) thread.join();
    stop = true;
    publisher.join();
    EXPECT_EQ(failures, (std::vector<std::string>{"", ""}));

    WsTestClient& survivor = *churners[0];
    HttpTestClient http(daemon.apiPort());
    json last = publishMany(http, "race", 1);
    std::uint64_t top = last.value("offset", std::uint64_t{0});
    bool reachedTop = false;  // what the survivor got before is checked above; read up to the top
    while (auto message = survivor.nextMessage(5000ms))
        if ((reachedTop = message->value("offset", std::uint64_t{0}) == top)) break;
    ASSERT_TRUE(reachedTop);
    // Enough fresh channels to push every idle stream out of the engine's memory.
    HttpTestClient api(daemon.apiPort());
    for (int request = 0; request < 140; ++request) {
        json publications = json::array();
        for (int i = 0; i < 1000; ++i)
            publications.push_back({{"channel", "filler-" + std::to_string(request * 1000 + i)}, {"data", 0}});
        ASSERT_EQ(api.postJson("/api/batch", {{"publications", publications}}).status, 200u);
    }
    json next = publishMany(api, "race", 1);
    EXPECT_EQ(next.value("offset", std::uint64_t{0}), top + 1) << "the stream kept its offsets";
    EXPECT_EQ(next.value("epoch", ""), last.value("epoch", "?")) << "and its epoch";
    EXPECT_TRUE(receivesConsecutive(survivor, "race", top, top + 1));
}

}  // namespace
}  // namespace wspush::testing
