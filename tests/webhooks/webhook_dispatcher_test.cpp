// The dispatcher against real receivers on 127.0.0.1 (tests/support/webhook_receiver.h), over
// HTTP and HTTPS. Waits are on conditions with deadlines; timing is asserted only as a lower bound.
#include "webhooks/webhook_dispatcher.h"

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/engine_loop.h"
#include "support/webhook_receiver.h"

namespace wspush {
namespace {

using namespace std::chrono_literals;
using testing::WebhookAnswer;
using testing::WebhookReceiver;

constexpr const char* kSecret = "test-secret";

bool waitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 3000ms) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!condition()) {
        if (std::chrono::steady_clock::now() >= deadline) return condition();
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

WebhookEvent userOnline(const std::string& user) {
    WebhookEvent event;
    event.kind = WebhookEventKind::UserOnline;
    event.timeMs = 1700000000000;
    event.user = user;
    event.node = "node-a";
    return event;
}

WebhookEvent eventOf(WebhookEventKind kind) {
    WebhookEvent event;
    event.kind = kind;
    event.timeMs = 1700000000000;
    return event;
}

// The events of every request the receiver got, in order: one list of ids per request.
std::vector<std::vector<std::string>> idsPerRequest(const WebhookReceiver& receiver) {
    std::vector<std::vector<std::string>> ids;
    for (const auto& request : receiver.requests()) {
        auto& batch = ids.emplace_back();
        auto body = nlohmann::json::parse(request.body);
        for (const auto& event : body["events"]) batch.push_back(event["id"]);
    }
    return ids;
}

WebhookEndpointConfig endpointFor(const std::string& url, std::vector<std::string> events = {"user_online"}) {
    return {url, std::move(events), kSecret};
}

class WebhookDispatcherTest : public ::testing::Test {
protected:
    void TearDown() override {
        if (dispatcher_) dispatcher_->stop();
    }

    // Short backoff, so that retries take milliseconds.
    static WebhookDispatcherOptions optionsFor(std::vector<WebhookEndpointConfig> endpoints) {
        WebhookDispatcherOptions options;
        options.endpoints = std::move(endpoints);
        options.timeout = 2s;
        options.backoffBase = 10ms;
        options.backoffCap = 40ms;
        return options;
    }

    WebhookDispatcher& start(WebhookDispatcherOptions options) {
        dispatcher_ = WebhookDispatcher::create(loop_.context(), std::move(options));
        return *dispatcher_;
    }

    // enqueue() with a `done` that records its answer: -1 until it runs, then 1 (delivered) or 0.
    void enqueue(std::vector<WebhookEvent> events, std::atomic<int>& outcome) {
        dispatcher_->enqueue(std::move(events), [&outcome](bool delivered) { outcome = delivered ? 1 : 0; });
    }

    WebhookStats stats() const { return dispatcher_->stats(); }

    testing::EngineLoop loop_;  // before the dispatcher: its handlers go with the loop
    std::shared_ptr<WebhookDispatcher> dispatcher_;
};

TEST_F(WebhookDispatcherTest, DeliversSignedBatchesInOrderOnOneConnection) {
    WebhookReceiver receiver(kSecret);
    auto options = optionsFor({endpointFor(receiver.url())});
    options.maxBatch = 3;
    start(std::move(options));

    std::vector<WebhookEvent> events;
    for (int i = 0; i < 7; ++i) events.push_back(userOnline("u" + std::to_string(i)));
    std::atomic<int> outcome{-1};
    enqueue(events, outcome);

    ASSERT_TRUE(waitFor([&] { return outcome != -1; }));
    EXPECT_EQ(outcome, 1);
    EXPECT_EQ(stats().eventsSent, 7u);
    EXPECT_EQ(stats().requests, 3u);
    EXPECT_EQ(stats().requestsFailed, 0u);
    EXPECT_EQ(stats().queued, 0u);

    // Queued in one turn, so sent as 3 + 3 + 1, in order.
    EXPECT_EQ(
        idsPerRequest(receiver),
        (std::vector<std::vector<std::string>>{
            {events[0].id, events[1].id, events[2].id}, {events[3].id, events[4].id, events[5].id}, {events[6].id}}));
    for (const auto& request : receiver.requests()) {
        EXPECT_TRUE(request.signatureValid) << request.signature;
        EXPECT_EQ(request.signature.substr(0, 7), "sha256=");
        EXPECT_EQ(request.contentType, "application/json");
        EXPECT_EQ(request.target, "/hook");
        EXPECT_EQ(request.connection, 1u);  // kept alive
        auto body = nlohmann::json::parse(request.body);
        EXPECT_TRUE(body["time_ms"].is_number_integer());
    }
    auto first = nlohmann::json::parse(receiver.requests()[0].body)["events"][0];
    EXPECT_EQ(first["name"], "user_online");
    EXPECT_EQ(first["user"], "u0");
    EXPECT_EQ(first["node"], "node-a");
    EXPECT_EQ(first["time_ms"], 1700000000000);
}

TEST_F(WebhookDispatcherTest, OnlySubscribedEventsReachAnEndpoint) {
    WebhookReceiver receiver(kSecret);
    start(optionsFor({endpointFor(receiver.url("/online"), {"user_online"}),
                      endpointFor(receiver.url("/channels"), {"channel_occupied", "member_added"})}));
    EXPECT_TRUE(dispatcher_->wants(WebhookEventKind::UserOnline));
    EXPECT_TRUE(dispatcher_->wants(WebhookEventKind::MemberAdded));
    EXPECT_FALSE(dispatcher_->wants(WebhookEventKind::MessageUnacked));

    std::atomic<int> outcome{-1};
    enqueue({eventOf(WebhookEventKind::UserOnline), eventOf(WebhookEventKind::MemberAdded),
             eventOf(WebhookEventKind::MessageUnacked), eventOf(WebhookEventKind::UserOffline),
             eventOf(WebhookEventKind::ChannelOccupied), eventOf(WebhookEventKind::UserOnline)},
            outcome);

    ASSERT_TRUE(waitFor([&] { return outcome != -1; }));
    EXPECT_EQ(outcome, 1);
    EXPECT_EQ(stats().eventsSent, 4u);
    std::map<std::string, std::vector<std::string>> namesByTarget;
    for (const auto& request : receiver.requests()) {
        auto body = nlohmann::json::parse(request.body);
        for (const auto& event : body["events"]) namesByTarget[request.target].push_back(event["name"]);
    }
    EXPECT_EQ(namesByTarget["/online"], (std::vector<std::string>{"user_online", "user_online"}));
    EXPECT_EQ(namesByTarget["/channels"], (std::vector<std::string>{"member_added", "channel_occupied"}));
    EXPECT_EQ(namesByTarget.size(), 2u);
}

TEST_F(WebhookDispatcherTest, EventsNobodyWantsCompleteAtOnce) {
    WebhookReceiver receiver(kSecret);
    start(optionsFor({endpointFor(receiver.url(), {"user_online"})}));
    std::atomic<int> outcome{-1};
    enqueue({eventOf(WebhookEventKind::ChannelVacated)}, outcome);
    ASSERT_TRUE(waitFor([&] { return outcome != -1; }));
    EXPECT_EQ(outcome, 1);
    EXPECT_EQ(stats().requests, 0u);
}

TEST_F(WebhookDispatcherTest, AReceiverFailingAtFirstGetsTheEventsLater) {
    WebhookReceiver receiver(kSecret);
    receiver.respondWith([](std::size_t index) { return WebhookAnswer{index < 3 ? 500u : 204u}; });
    start(optionsFor({endpointFor(receiver.url())}));

    std::vector<WebhookEvent> events{userOnline("a"), userOnline("b")};
    std::atomic<int> outcome{-1};
    enqueue(events, outcome);

    ASSERT_TRUE(waitFor([&] { return outcome != -1; }));
    EXPECT_EQ(outcome, 1);
    EXPECT_EQ(stats().eventsSent, 2u);
    EXPECT_EQ(stats().requests, 4u);
    EXPECT_EQ(stats().requestsFailed, 3u);
    EXPECT_EQ(stats().droppedRetryExpired, 0u);
    // The same batch each time: the receiver deduplicates by id.
    std::vector<std::string> batch{events[0].id, events[1].id};
    EXPECT_EQ(idsPerRequest(receiver), (std::vector<std::vector<std::string>>(4, batch)));
}

TEST_F(WebhookDispatcherTest, ABatchIsDroppedAndCountedOnceRetryForHasPassed) {
    WebhookReceiver receiver(kSecret);
    receiver.respondWith([](std::size_t) { return WebhookAnswer{503}; });
    auto options = optionsFor({endpointFor(receiver.url())});
    options.retryFor = 300ms;
    start(std::move(options));

    auto began = std::chrono::steady_clock::now();
    std::atomic<int> outcome{-1};
    enqueue({userOnline("a"), userOnline("b"), userOnline("c")}, outcome);

    ASSERT_TRUE(waitFor([&] { return outcome != -1; }));
    EXPECT_GE(std::chrono::steady_clock::now() - began, 300ms);
    EXPECT_EQ(outcome, 0);
    EXPECT_EQ(stats().droppedRetryExpired, 3u);
    EXPECT_EQ(stats().eventsSent, 0u);
    EXPECT_EQ(stats().queued, 0u);
    EXPECT_GE(stats().requestsFailed, 2u);
    EXPECT_EQ(stats().requestsFailed, stats().requests);
    EXPECT_EQ(receiver.requestCount(), stats().requests);
}

TEST_F(WebhookDispatcherTest, ATimedOutRequestIsRetried) {
    WebhookReceiver receiver(kSecret);
    receiver.respondWith([](std::size_t index) { return WebhookAnswer{200, /*hang=*/index == 0}; });
    auto options = optionsFor({endpointFor(receiver.url())});
    options.timeout = 200ms;
    start(std::move(options));

    WebhookEvent event = userOnline("a");
    std::atomic<int> outcome{-1};
    enqueue({event}, outcome);

    ASSERT_TRUE(waitFor([&] { return outcome != -1; }));
    EXPECT_EQ(outcome, 1);
    EXPECT_EQ(stats().eventsSent, 1u);
    EXPECT_EQ(stats().requestsFailed, 1u);
    // The unanswered request went out again on a new connection: at least once.
    auto requests = receiver.requests();
    ASSERT_EQ(requests.size(), 2u);
    EXPECT_EQ(requests[0].body.find(event.id) != std::string::npos, true);
    EXPECT_EQ(requests[1].body.find(event.id) != std::string::npos, true);
    EXPECT_NE(requests[0].connection, requests[1].connection);
}

TEST_F(WebhookDispatcherTest, AFullQueueDropsTheNewestEventsAndCountsThem) {
    WebhookReceiver receiver(kSecret);
    receiver.respondWith([](std::size_t) { return WebhookAnswer{200, /*hang=*/true}; });
    auto options = optionsFor({endpointFor(receiver.url())});
    options.maxQueue = 3;
    options.maxBatch = 1;
    start(std::move(options));

    std::vector<WebhookEvent> events;
    for (int i = 0; i < 5; ++i) events.push_back(userOnline("u" + std::to_string(i)));
    std::atomic<int> outcome{-1};
    enqueue(events, outcome);

    ASSERT_TRUE(waitFor([&] { return stats().droppedQueueFull == 2 && receiver.requestCount() == 1; }));
    EXPECT_EQ(stats().queued, 3u);
    EXPECT_EQ(idsPerRequest(receiver), (std::vector<std::vector<std::string>>{{events[0].id}}));  // oldest first

    dispatcher_->stop();
    ASSERT_TRUE(waitFor([&] { return stats().queued == 0; }));
    EXPECT_EQ(outcome, -1);  // neither delivered nor given up: a durable queue would keep them
}

TEST_F(WebhookDispatcherTest, AConnectionTheReceiverClosedWhileIdleIsReplacedWithoutAFailure) {
    WebhookReceiver receiver(kSecret);
    receiver.respondWith([](std::size_t) { return WebhookAnswer{200, false, /*closeAfter=*/true}; });
    start(optionsFor({endpointFor(receiver.url())}));

    for (int i = 0; i < 3; ++i) {
        std::atomic<int> outcome{-1};
        enqueue({userOnline("u")}, outcome);
        ASSERT_TRUE(waitFor([&] { return outcome != -1; }));
        EXPECT_EQ(outcome, 1);
    }
    EXPECT_EQ(stats().requestsFailed, 0u);
    EXPECT_EQ(stats().eventsSent, 3u);
    EXPECT_EQ(receiver.connections(), 3u);
}

TEST_F(WebhookDispatcherTest, AnUnreachableEndpointCountsFailedAttempts) {
    unsigned short closedPort;
    {
        WebhookReceiver gone(kSecret);
        closedPort = gone.port();
    }
    auto options = optionsFor({endpointFor("http://127.0.0.1:" + std::to_string(closedPort) + "/hook")});
    options.retryFor = 100ms;
    start(std::move(options));
    std::atomic<int> outcome{-1};
    enqueue({userOnline("a")}, outcome);
    ASSERT_TRUE(waitFor([&] { return outcome != -1; }));
    EXPECT_EQ(outcome, 0);
    EXPECT_GE(stats().requestsFailed, 1u);
    EXPECT_EQ(stats().droppedRetryExpired, 1u);
}

// --- https ---------------------------------------------------------------------------------------

class WebhookDispatcherTlsTest : public WebhookDispatcherTest {
protected:
    static const testing::TestCertificate& localhostCertificate() {
        static const testing::TestCertificate certificate = testing::makeSelfSignedCertificate("DNS:localhost");
        return certificate;
    }
};

TEST_F(WebhookDispatcherTlsTest, WithoutVerificationASelfSignedReceiverGetsTheEvents) {
    WebhookReceiver receiver(kSecret, localhostCertificate());
    auto options = optionsFor({endpointFor(receiver.url())});
    options.tlsVerify = false;
    start(std::move(options));

    std::atomic<int> outcome{-1};
    enqueue({userOnline("a"), userOnline("b")}, outcome);
    ASSERT_TRUE(waitFor([&] { return outcome != -1; }));
    EXPECT_EQ(outcome, 1);
    EXPECT_EQ(stats().eventsSent, 2u);
    ASSERT_EQ(receiver.requestCount(), 1u);
    EXPECT_TRUE(receiver.requests()[0].signatureValid);
}

TEST_F(WebhookDispatcherTlsTest, WithVerificationASelfSignedReceiverIsAFailure) {
    WebhookReceiver receiver(kSecret, localhostCertificate());
    auto options = optionsFor({endpointFor(receiver.url("/hook", "localhost"))});
    options.retryFor = 200ms;
    start(std::move(options));  // tlsVerify is on by default: the system CA store

    std::atomic<int> outcome{-1};
    enqueue({userOnline("a")}, outcome);
    ASSERT_TRUE(waitFor([&] { return outcome != -1; }));
    EXPECT_EQ(outcome, 0);
    EXPECT_GE(stats().requestsFailed, 1u);
    EXPECT_EQ(stats().droppedRetryExpired, 1u);
    EXPECT_EQ(receiver.requestCount(), 0u);  // nothing was sent over the unverified connection
}

TEST_F(WebhookDispatcherTlsTest, VerificationPassesForATrustedCertificateNamingTheHost) {
    WebhookReceiver receiver(kSecret, localhostCertificate());
    auto options = optionsFor({endpointFor(receiver.url("/hook", "localhost"))});
    options.trustedCertificatePem = localhostCertificate().certificatePem;
    start(std::move(options));

    std::atomic<int> outcome{-1};
    enqueue({userOnline("a")}, outcome);
    ASSERT_TRUE(waitFor([&] { return outcome != -1; }));
    EXPECT_EQ(outcome, 1);
    EXPECT_EQ(stats().requestsFailed, 0u);
    EXPECT_EQ(receiver.requestCount(), 1u);
}

TEST_F(WebhookDispatcherTlsTest, VerificationFailsWhenTheCertificateNamesAnotherHost) {
    WebhookReceiver receiver(kSecret, localhostCertificate());
    // Trusted, but made for "localhost", not for 127.0.0.1.
    auto options = optionsFor({endpointFor(receiver.url("/hook", "127.0.0.1"))});
    options.trustedCertificatePem = localhostCertificate().certificatePem;
    options.retryFor = 100ms;
    start(std::move(options));

    std::atomic<int> outcome{-1};
    enqueue({userOnline("a")}, outcome);
    ASSERT_TRUE(waitFor([&] { return outcome != -1; }));
    EXPECT_EQ(outcome, 0);
    EXPECT_GE(stats().requestsFailed, 1u);
    EXPECT_EQ(receiver.requestCount(), 0u);
}

}  // namespace
}  // namespace wspush
