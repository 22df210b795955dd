// Idempotent HTTP publishing through the real daemon (docs/http-api.md, "Idempotent publishing"):
// concurrent duplicates publish once, replays carry Idempotency-Replayed, other bodies get 409.
#include <latch>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "support/test_helpers.h"

namespace wspush::testing {
namespace {

using json = nlohmann::json;

int apiErrorCode(const HttpResult& result) {
    json body = result.json();
    if (!body.is_object() || !body.contains("error") || !body["error"].is_object()) return 0;
    return body["error"].value("code", 0);
}

// Reads the subscriber for `duration` and returns the `message`s it received.
std::vector<json> deliveries(WsTestClient& subscriber, Millis duration) {
    EXPECT_TRUE(subscriber.pumpFor(duration)) << "the subscriber was closed";
    std::vector<json> messages;
    while (auto message = subscriber.nextMessage(0ms))
        if (typeOf(*message) == "message") messages.push_back(*message);
    return messages;
}

TEST(Idempotency, ConcurrentDuplicatesPublishOnceAndAllGetTheSameResponse) {
    DaemonProcess daemon;
    WsTestClient subscriber;
    ASSERT_TRUE(subscriber.connectProtocol(daemon.port(), "alice")) << subscriber.lastError();
    ASSERT_TRUE(subscribeOk(subscriber, "orders"));

    constexpr int kRequests = 10;
    const std::string body = json{{"channel", "orders"}, {"data", {{"order", 17}, {"state", "paid"}}}}.dump();
    const Headers headers{{"Idempotency-Key", "order-17-paid"}};

    // Each thread has its own TCP connection, opened before the start line so that the POSTs
    // leave as close together as possible.
    std::vector<std::unique_ptr<HttpTestClient>> clients;
    for (int i = 0; i < kRequests; ++i) {
        clients.push_back(std::make_unique<HttpTestClient>(daemon.apiPort()));
        ASSERT_EQ(clients.back()->get("/healthz").status, 200u);
    }
    std::vector<HttpResult> results(kRequests);
    std::latch start(kRequests);
    std::vector<std::thread> threads;
    for (int i = 0; i < kRequests; ++i) {
        threads.emplace_back([&, i] {
            start.arrive_and_wait();
            results[i] = clients[i]->post("/api/publish", body, "application/json", headers);
        });
    }
    for (auto& thread : threads) thread.join();

    int replayed = 0;
    std::set<std::string> bodies;
    for (int i = 0; i < kRequests; ++i) {
        const HttpResult& result = results[i];
        ASSERT_EQ(result.status, 200u) << i << ": " << result.body << result.error;
        bodies.insert(result.body);
        std::string header = result.header("Idempotency-Replayed");
        if (header == "true")
            ++replayed;
        else
            EXPECT_EQ(header, "") << "the header is either absent or \"true\"";
    }
    EXPECT_EQ(replayed, kRequests - 1) << "exactly one request published";
    ASSERT_EQ(bodies.size(), 1u) << "every response is the same, byte for byte";
    json response = json::parse(*bodies.begin());
    EXPECT_EQ(response.value("offset", -1), 1);
    EXPECT_FALSE(response.value("mid", "").empty());

    std::vector<json> received = deliveries(subscriber, 500ms);
    ASSERT_EQ(received.size(), 1u) << "the subscriber got the publication exactly once";
    EXPECT_EQ(received[0].value("offset", -1), 1);
    EXPECT_EQ(received[0].value("mid", ""), response.value("mid", "?"));

    // The channel's offset did not advance for the duplicates.
    HttpResult next = clients[0]->post("/api/publish", json{{"channel", "orders"}, {"data", 2}}.dump());
    ASSERT_EQ(next.status, 200u) << next.body;
    EXPECT_EQ(next.json().value("offset", -1), 2);
    EXPECT_EQ(next.header("Idempotency-Replayed"), "");
}

TEST(Idempotency, SameKeyDifferentBodyIs409AndPublishesNothing) {
    DaemonProcess daemon;
    WsTestClient subscriber;
    ASSERT_TRUE(subscriber.connectProtocol(daemon.port(), "alice")) << subscriber.lastError();
    ASSERT_TRUE(subscribeOk(subscriber, "orders"));
    HttpTestClient http(daemon.apiPort());
    const Headers key{{"Idempotency-Key", "k-1"}};

    HttpResult first = http.postJson("/api/publish", {{"channel", "orders"}, {"data", 1}}, key);
    ASSERT_EQ(first.status, 200u) << first.body;
    EXPECT_EQ(first.header("Idempotency-Replayed"), "");

    HttpResult conflict = http.postJson("/api/publish", {{"channel", "orders"}, {"data", 2}}, key);
    EXPECT_EQ(conflict.status, 409u) << conflict.body;
    EXPECT_EQ(apiErrorCode(conflict), 40901);
    EXPECT_EQ(conflict.header("Content-Type"), "application/json");
    EXPECT_EQ(conflict.header("Idempotency-Replayed"), "");

    HttpResult replay = http.postJson("/api/publish", {{"channel", "orders"}, {"data", 1}}, key);
    EXPECT_EQ(replay.status, 200u) << replay.body;
    EXPECT_EQ(replay.header("Idempotency-Replayed"), "true");
    EXPECT_EQ(replay.body, first.body);

    // The key of a publish is not the key of a broadcast.
    HttpResult broadcast = http.postJson("/api/broadcast", {{"channels", {"orders"}}, {"data", 3}}, key);
    EXPECT_EQ(broadcast.status, 200u) << broadcast.body;
    EXPECT_EQ(broadcast.header("Idempotency-Replayed"), "");

    std::vector<json> received = deliveries(subscriber, 300ms);
    ASSERT_EQ(received.size(), 2u);
    EXPECT_EQ(received[0]["data"], 1);
    EXPECT_EQ(received[1]["data"], 3);
}

TEST(Idempotency, BodyMidIsTheKeyAndInvalidKeysAre400) {
    DaemonProcess daemon;
    HttpTestClient http(daemon.apiPort());
    const json body{{"channel", "orders"}, {"data", 1}, {"mid", "backend-7"}};

    HttpResult first = http.postJson("/api/publish", body);
    ASSERT_EQ(first.status, 200u) << first.body;
    HttpResult again = http.postJson("/api/publish", body);
    EXPECT_EQ(again.status, 200u);
    EXPECT_EQ(again.header("Idempotency-Replayed"), "true");
    EXPECT_EQ(again.body, first.body);

    HttpResult tooLong = http.postJson("/api/publish", {{"channel", "orders"}, {"data", 1}},
                                       {{"Idempotency-Key", std::string(129, 'k')}});
    EXPECT_EQ(tooLong.status, 400u) << tooLong.body;
    EXPECT_EQ(apiErrorCode(tooLong), 40006);
    HttpResult notString = http.postJson("/api/publish", {{"channel", "orders"}, {"data", 1}, {"mid", 7}});
    EXPECT_EQ(notString.status, 400u) << notString.body;
    EXPECT_EQ(apiErrorCode(notString), 40006);

    HttpResult next = http.postJson("/api/publish", {{"channel", "orders"}, {"data", 1}});
    EXPECT_EQ(next.json().value("offset", -1), 2) << "only the first keyed request published";
}

}  // namespace
}  // namespace wspush::testing
