// Publish/subscribe through the real daemon: HTTP publish and broadcast, client publish,
// unsubscribe, fan-out to many subscribers, and the introspection endpoints.
#include <sys/resource.h>

#include <atomic>
#include <future>
#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "support/test_helpers.h"

namespace wspush::testing {
namespace {

using json = nlohmann::json;

TEST(PubSub, PublishedMessagesArriveInOffsetOrderWithTheSubscribedEpoch) {
    DaemonProcess daemon;
    WsTestClient subscriber;
    ASSERT_TRUE(subscriber.connectProtocol(daemon.port(), "alice")) << subscriber.lastError();
    auto subscribed = subscriber.subscribe("news");
    ASSERT_TRUE(subscribed);
    ASSERT_EQ(typeOf(*subscribed), "subscribed") << subscribed->dump();
    EXPECT_EQ(subscribed->value("channel", ""), "news");
    EXPECT_EQ(subscribed->value("offset", -1), 0) << "nothing was published yet";
    ASSERT_TRUE((*subscribed)["epoch"].is_string());
    std::string epoch = (*subscribed)["epoch"];
    EXPECT_FALSE(epoch.empty());

    HttpTestClient api(daemon.apiPort());
    std::vector<json> publishReplies;
    for (int i = 1; i <= 3; ++i) {
        HttpResult published =
            api.postJson("/api/publish", {{"channel", "news"}, {"data", {{"n", i}, {"text", "hello"}}}});
        ASSERT_EQ(published.status, 200u) << published.body;
        publishReplies.push_back(published.json());
        EXPECT_EQ(publishReplies.back().value("channel", ""), "news");
        EXPECT_EQ(publishReplies.back().value("offset", -1), i);
        EXPECT_EQ(publishReplies.back().value("epoch", ""), epoch);
        EXPECT_FALSE(publishReplies.back().value("mid", "").empty());
    }

    for (int i = 1; i <= 3; ++i) {
        auto message = subscriber.nextMessage();
        ASSERT_TRUE(message) << "publication " << i << " did not arrive";
        EXPECT_EQ(typeOf(*message), "message");
        EXPECT_EQ(message->value("channel", ""), "news");
        EXPECT_EQ(message->value("offset", -1), i);
        EXPECT_EQ(message->value("epoch", ""), epoch);
        EXPECT_EQ(message->value("mid", ""), publishReplies[i - 1].value("mid", "?"));
        EXPECT_TRUE(message->contains("ts") && (*message)["ts"].is_number_integer());
        EXPECT_EQ((*message)["data"], (json{{"n", i}, {"text", "hello"}}));
    }

    // A later subscriber starts at the channel's top offset.
    WsTestClient late;
    ASSERT_TRUE(late.connectProtocol(daemon.port())) << late.lastError();
    auto lateSubscribed = late.subscribe("news");
    ASSERT_TRUE(lateSubscribed);
    EXPECT_EQ(lateSubscribed->value("offset", -1), 3);
    EXPECT_EQ(lateSubscribed->value("epoch", ""), epoch);
}

TEST(PubSub, BroadcastReachesTheSubscribersOfEveryChannelAndReportsEachChannel) {
    DaemonProcess daemon;
    const std::vector<std::string> channels{"sports", "weather", "markets"};
    std::vector<std::unique_ptr<WsTestClient>> subscribers;
    for (const auto& channel : channels) {
        subscribers.push_back(std::make_unique<WsTestClient>());
        ASSERT_TRUE(subscribers.back()->connectProtocol(daemon.port())) << subscribers.back()->lastError();
        ASSERT_TRUE(subscribeOk(*subscribers.back(), channel));
    }

    HttpResult response = httpPostJson(
        daemon.apiPort(), "/api/broadcast",
        {{"channels", {"sports", "weather", "markets", "not a channel", "nowhere:x"}}, {"data", {{"alert", true}}}});
    ASSERT_EQ(response.status, 200u) << response.body;
    json results = response.json()["results"];
    ASSERT_TRUE(results.is_array()) << response.body;
    ASSERT_EQ(results.size(), 5u) << response.body;
    for (std::size_t i = 0; i < channels.size(); ++i) {
        EXPECT_EQ(results[i].value("channel", ""), channels[i]) << "results keep the request's order";
        EXPECT_EQ(results[i].value("offset", -1), 1) << results[i].dump();
        EXPECT_FALSE(results[i].value("mid", "").empty()) << results[i].dump();
        EXPECT_FALSE(results[i].contains("error")) << results[i].dump();
    }
    EXPECT_EQ(results[3].value("channel", ""), "not a channel");
    EXPECT_EQ(results[3]["error"].value("code", 0), 40004) << results[3].dump();
    EXPECT_FALSE(results[3].contains("offset"));
    EXPECT_EQ(results[4]["error"].value("code", 0), 40005) << results[4].dump();

    for (std::size_t i = 0; i < channels.size(); ++i) {
        auto message = subscribers[i]->nextMessage();
        ASSERT_TRUE(message) << channels[i] << " got nothing";
        EXPECT_EQ(message->value("channel", ""), channels[i]);
        EXPECT_EQ((*message)["data"], (json{{"alert", true}}));
        EXPECT_EQ(message->value("mid", ""), results[i].value("mid", "?"));
        // Each subscriber gets its own channel's copy only.
        EXPECT_FALSE(subscribers[i]->nextMessage(std::chrono::milliseconds(100)));
    }
}

TEST(PubSub, UnsubscribeStopsDeliveryToThatConnectionOnly) {
    DaemonProcess daemon;
    WsTestClient leaving, staying;
    ASSERT_TRUE(leaving.connectProtocol(daemon.port())) << leaving.lastError();
    ASSERT_TRUE(staying.connectProtocol(daemon.port())) << staying.lastError();
    ASSERT_TRUE(subscribeOk(leaving, "news"));
    ASSERT_TRUE(subscribeOk(staying, "news"));

    HttpTestClient api(daemon.apiPort());
    ASSERT_EQ(api.postJson("/api/publish", {{"channel", "news"}, {"data", "before"}}).status, 200u);
    auto before = leaving.nextMessage();
    ASSERT_TRUE(before);
    EXPECT_EQ((*before)["data"], "before");

    auto unsubscribed = leaving.request({{"type", "unsubscribe"}, {"channel", "news"}});
    ASSERT_TRUE(unsubscribed);
    EXPECT_EQ(typeOf(*unsubscribed), "unsubscribed") << unsubscribed->dump();
    EXPECT_EQ(unsubscribed->value("channel", ""), "news");

    ASSERT_EQ(api.postJson("/api/publish", {{"channel", "news"}, {"data", "after"}}).status, 200u);
    auto stayingFirst = staying.nextMessage();
    auto stayingSecond = staying.nextMessage();
    ASSERT_TRUE(stayingFirst && stayingSecond);
    EXPECT_EQ((*stayingSecond)["data"], "after");
    auto leaked = leaving.nextMessage(std::chrono::milliseconds(300));
    EXPECT_FALSE(leaked) << "delivered after unsubscribe: " << leaked->dump();
    EXPECT_TRUE(leaving.isOpen());
}

TEST(PubSub, ClientPublishIsAllowedOnlyInNamespacesThatAllowIt) {
    DaemonProcess daemon(json{{"namespaces", {{"chat", {{"client_publish", true}}}}}});
    WsTestClient listener, talker;
    ASSERT_TRUE(listener.connectProtocol(daemon.port())) << listener.lastError();
    ASSERT_TRUE(talker.connectProtocol(daemon.port(), "bob")) << talker.lastError();
    ASSERT_TRUE(subscribeOk(listener, "chat:x"));

    auto published = talker.request({{"type", "publish"}, {"channel", "chat:x"}, {"data", {{"text", "hi"}}}});
    ASSERT_TRUE(published);
    EXPECT_EQ(typeOf(*published), "published") << published->dump();
    EXPECT_EQ(published->value("channel", ""), "chat:x");
    EXPECT_EQ(published->value("offset", -1), 1);
    EXPECT_FALSE(published->value("mid", "").empty());

    auto message = listener.nextMessage();
    ASSERT_TRUE(message);
    EXPECT_EQ(message->value("channel", ""), "chat:x");
    EXPECT_EQ((*message)["data"], (json{{"text", "hi"}}));
    EXPECT_EQ(message->value("mid", ""), published->value("mid", "?"));

    // The default namespace keeps client_publish false.
    EXPECT_EQ(errorCodeOf(talker.request({{"type", "publish"}, {"channel", "news"}, {"data", 1}})), 103);
    EXPECT_EQ(errorCodeOf(talker.request({{"type", "publish"}, {"channel", "nowhere:x"}, {"data", 1}})), 102);
    EXPECT_FALSE(listener.nextMessage(std::chrono::milliseconds(100))) << "a refused publish must not be delivered";
}

TEST(PubSub, PublicationsFromSeveralApiConnectionsArriveInOffsetOrder) {
    // Each HTTP connection is served by one event loop, so alternating between connections makes
    // consecutive publications originate on different threads; their delivery to a subscriber on
    // either loop must still follow the offsets the broker assigned.
    constexpr int kPublications = 2000;
    constexpr int kConnections = 3;
    DaemonProcess daemon(json{{"log", {{"level", "info"}}}});
    WsTestClient subscriber;
    ASSERT_TRUE(subscriber.connectProtocol(daemon.port())) << subscriber.lastError();
    ASSERT_TRUE(subscribeOk(subscriber, "ordered"));

    std::vector<std::unique_ptr<HttpTestClient>> publishers;
    for (int i = 0; i < kConnections; ++i) publishers.push_back(std::make_unique<HttpTestClient>(daemon.apiPort()));
    for (int i = 1; i <= kPublications; ++i) {
        HttpResult published =
            publishers[i % kConnections]->postJson("/api/publish", {{"channel", "ordered"}, {"data", i}});
        ASSERT_EQ(published.status, 200u) << published.body << published.error;
        ASSERT_EQ(published.json().value("offset", -1), i);
    }

    // ~200 KB in all: it waits in socket buffers and the write queue until read here.
    std::vector<int> outOfOrder;
    for (int i = 1; i <= kPublications; ++i) {
        auto message = subscriber.nextMessage();
        ASSERT_TRUE(message) << "publication " << i << " never arrived";
        if (message->value("offset", -1) != i) outOfOrder.push_back(i);
    }
    EXPECT_TRUE(outOfOrder.empty()) << outOfOrder.size() << " of " << kPublications
                                    << " messages arrived out of offset order, the first at position "
                                    << outOfOrder.front();
}

TEST(PubSub, SubscribingWhilePublicationsFlowDeliversEverythingAfterTheSubscribedOffset) {
    // The subscribed reply's offset is the promise: every later offset arrives, none earlier, even
    // when publications race with the subscription.
    constexpr int kPublications = 3000;
    constexpr int kLateSubscribers = 10;
    DaemonProcess daemon(json{{"log", {{"level", "info"}}}});

    std::atomic<int> published{0};
    auto publisher = std::async(std::launch::async, [&] {
        HttpTestClient api(daemon.apiPort());
        for (int i = 1; i <= kPublications; ++i) {
            if (api.postJson("/api/publish", {{"channel", "flowing"}, {"data", i}}).status != 200) return false;
            published = i;
        }
        return true;
    });

    std::vector<std::unique_ptr<WsTestClient>> subscribers;
    std::vector<int> subscribedAt;
    for (int i = 0; i < kLateSubscribers; ++i) {
        // Spread the subscriptions over the publishing.
        eventually([&] { return published.load() >= i * kPublications / (kLateSubscribers + 1); });
        auto client = std::make_unique<WsTestClient>();
        ASSERT_TRUE(client->connectProtocol(daemon.port())) << client->lastError();
        auto reply = client->subscribe("flowing");
        ASSERT_TRUE(reply && typeOf(*reply) == "subscribed") << (reply ? reply->dump() : client->lastError());
        subscribedAt.push_back(reply->value("offset", -1));
        subscribers.push_back(std::move(client));
    }
    ASSERT_TRUE(publisher.get()) << "a publish failed";

    for (int c = 0; c < kLateSubscribers; ++c) {
        for (int offset = subscribedAt[c] + 1; offset <= kPublications; ++offset) {
            auto message = subscribers[c]->nextMessage();
            ASSERT_TRUE(message) << "subscriber " << c << " (subscribed at " << subscribedAt[c] << ") is missing "
                                 << offset;
            ASSERT_EQ(message->value("offset", -1), offset)
                << "subscriber " << c << " subscribed at " << subscribedAt[c];
        }
        EXPECT_FALSE(subscribers[c]->nextMessage(std::chrono::milliseconds(20))) << "more than was published";
    }
}

// Opening a thousand clients needs about four descriptors each in this process (socket, epoll,
// eventfd, timerfd of its io_context); the daemon inherits the raised limit.
void raiseDescriptorLimit(rlim_t wanted) {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= wanted) return;
    limit.rlim_cur = std::min(wanted, limit.rlim_max);
    setrlimit(RLIMIT_NOFILE, &limit);
}

TEST(PubSub, AThousandSubscribersEachReceiveEveryPublicationInOrder) {
    constexpr int kSubscribers = 1000;
    constexpr int kPublications = 100;
    raiseDescriptorLimit(8192);
    rlimit limit{};
    getrlimit(RLIMIT_NOFILE, &limit);
    if (limit.rlim_cur < 6000) GTEST_SKIP() << "needs ~6000 file descriptors, RLIMIT_NOFILE is " << limit.rlim_cur;

    DaemonProcess daemon(json{{"log", {{"level", "info"}}}});  // debug logs a line per connection
    std::vector<std::unique_ptr<WsTestClient>> clients;
    clients.reserve(kSubscribers);
    for (int i = 0; i < kSubscribers; ++i) {
        auto client = std::make_unique<WsTestClient>();
        ASSERT_TRUE(client->connectProtocol(daemon.port())) << "client " << i << ": " << client->lastError();
        ASSERT_TRUE(subscribeOk(*client, "crowd")) << "client " << i;
        clients.push_back(std::move(client));
    }
    HttpResult channels = httpGet(daemon.apiPort(), "/api/channels");
    ASSERT_EQ(channels.status, 200u);
    EXPECT_EQ(channels.json()["channels"], (json::array({{{"channel", "crowd"}, {"subscribers", kSubscribers}}})));

    HttpTestClient api(daemon.apiPort());
    for (int i = 1; i <= kPublications; ++i) {
        HttpResult published = api.postJson("/api/publish", {{"channel", "crowd"}, {"data", {{"seq", i}}}});
        ASSERT_EQ(published.status, 200u) << published.body;
    }

    // The messages wait in each client's socket buffer (~15 KB each), so reading the clients one
    // after the other loses nothing.
    for (int c = 0; c < kSubscribers; ++c) {
        for (int i = 1; i <= kPublications; ++i) {
            auto message = clients[c]->nextMessage();
            ASSERT_TRUE(message) << "client " << c << " is missing publication " << i;
            ASSERT_EQ(message->value("offset", -1), i) << "client " << c;
            ASSERT_EQ((*message)["data"]["seq"], i) << "client " << c;
        }
    }
}

TEST(PubSub, ChannelsAndInfoDescribeTheLiveSubscriptions) {
    DaemonProcess daemon;
    WsTestClient first, second;
    ASSERT_TRUE(first.connectProtocol(daemon.port())) << first.lastError();
    ASSERT_TRUE(second.connectProtocol(daemon.port())) << second.lastError();
    ASSERT_TRUE(subscribeOk(first, "lobby"));
    ASSERT_TRUE(subscribeOk(second, "lobby"));
    ASSERT_TRUE(subscribeOk(second, "chat-room"));

    HttpResult channels = httpGet(daemon.apiPort(), "/api/channels");
    ASSERT_EQ(channels.status, 200u) << channels.body;
    EXPECT_EQ(
        channels.json()["channels"],
        (json::array({{{"channel", "chat-room"}, {"subscribers", 1}}, {{"channel", "lobby"}, {"subscribers", 2}}})))
        << channels.body;

    HttpResult info = httpGet(daemon.apiPort(), "/api/info");
    ASSERT_EQ(info.status, 200u) << info.body;
    EXPECT_EQ(info.json().value("connections", -1), 2) << info.body;
    EXPECT_EQ(info.json().value("channels", -1), 2) << info.body;
    EXPECT_EQ(info.json().value("threads", -1), 2) << info.body;

    // Leaving shows up too, once the server noticed the close.
    second.close();
    EXPECT_TRUE(
        eventually([&] { return httpGet(daemon.apiPort(), "/api/info").json().value("connections", -1) == 1; }));
    EXPECT_TRUE(eventually([&] {
        return httpGet(daemon.apiPort(), "/api/channels").json()["channels"] ==
               json::array({{{"channel", "lobby"}, {"subscribers", 1}}});
    })) << httpGet(daemon.apiPort(), "/api/channels").body;
}

}  // namespace
}  // namespace wspush::testing

namespace wspush::testing {
namespace {

// docs/protocol.md, Framing: a burst for one connection leaves as one frame, messages joined by '\n'.
TEST(PubSub, ABatchOfPublicationsReachesASubscriberInOneFrameInOrder) {
    // One loop: the batch is handed over in one handler, before that loop's turn of deliveries.
    DaemonProcess daemon(json{{"threads", 1}, {"websocket", {{"write_delay", 0}}}});
    WsTestClient subscriber;
    ASSERT_TRUE(subscriber.connectProtocol(daemon.port())) << subscriber.lastError();
    ASSERT_TRUE(subscribeOk(subscriber, "news"));

    json publications = json::array();
    for (int i = 1; i <= 16; ++i) publications.push_back(json{{"channel", "news"}, {"data", {{"n", i}}}});
    HttpResult response = httpPostJson(daemon.apiPort(), "/api/batch", {{"publications", publications}});
    ASSERT_EQ(response.status, 200u) << response.body;
    ASSERT_EQ(response.json()["results"].size(), 16u) << response.body;

    auto frame = subscriber.nextFrame();
    ASSERT_TRUE(frame) << subscriber.lastError();
    std::vector<json> messages;
    std::string_view rest = frame->payload;
    while (!rest.empty()) {
        auto newline = rest.find('\n');
        messages.push_back(json::parse(rest.substr(0, newline)));
        rest = newline == std::string_view::npos ? std::string_view() : rest.substr(newline + 1);
    }
    ASSERT_EQ(messages.size(), 16u) << frame->payload;
    for (int i = 0; i < 16; ++i) {
        EXPECT_EQ(messages[i]["data"]["n"], i + 1);
        EXPECT_EQ(messages[i]["offset"], i + 1);
    }
}

}  // namespace
}  // namespace wspush::testing
