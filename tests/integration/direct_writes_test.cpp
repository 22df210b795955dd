// On a plain connection without permessage-deflate the daemon writes messages to the socket
// itself (DirectWriteSocket), while Beast still writes pongs, pings and the close frame on the
// same socket. These tests make the two writers meet: a client that does not read, so that the
// daemon's writes stay half done for a long time, and pings sent meanwhile, whose pongs Beast
// must hold back until the message under way is out. The client's Beast parses every frame
// strictly: a pong inside a message, or a message cut short, fails the connection.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/batched_sends.h"
#include "support/client_frames.h"
#include "support/test_helpers.h"

namespace wspush::testing {
namespace {

using json = nlohmann::json;

constexpr unsigned char kPing = 0x9;

// Reads `count` messages of `channel`, in order, and checks each one's sequence and padding.
::testing::AssertionResult receivesInOrder(WsTestClient& client, int count, const std::string& padding) {
    for (int seq = 1; seq <= count; ++seq) {
        auto message = client.waitFor([](const json& m) { return m.value("type", "") == "message"; }, 10000ms);
        if (!message)
            return ::testing::AssertionFailure() << "message " << seq << " never came: " << client.lastError();
        if ((*message)["data"]["seq"] != seq)
            return ::testing::AssertionFailure() << "message " << seq << " was " << message->dump().substr(0, 200);
        if ((*message)["data"]["pad"] != padding)
            return ::testing::AssertionFailure() << "message " << seq << " has its padding changed";
    }
    return ::testing::AssertionSuccess();
}

// Publishes `count` messages {seq, pad} to `channel`; `pinger` (if any) pings after every
// `pingEvery` of them. Returns the pings' payloads, in order.
std::vector<std::string> publishBulk(HttpTestClient& api, const std::string& channel, int count,
                                     const std::string& padding, WsTestClient* pinger = nullptr, int pingEvery = 100) {
    std::vector<std::string> pings;
    for (int seq = 1; seq <= count; ++seq) {
        HttpResult result =
            api.postJson("/api/publish", {{"channel", channel}, {"data", {{"seq", seq}, {"pad", padding}}}});
        EXPECT_EQ(result.status, 200u) << result.body << result.error;
        if (pinger != nullptr && seq % pingEvery == 0) {
            pings.push_back("ping-" + std::to_string(seq));
            EXPECT_TRUE(pinger->sendRaw(clientFrame(0x80 | kPing, pings.back()))) << pinger->lastError();
        }
    }
    return pings;
}

bool ioUringAvailable() {
    std::string why;
    return BatchedSends::open(8, why) != nullptr;
}

TEST(DirectWrites, PongsAnsweredWhileMessagesAreHalfWrittenComeOutWholeBetweenThem) {
    DaemonProcess daemon(
        json{{"websocket", {{"write_queue_max_bytes", 64 << 20}, {"write_queue_max_frames", 100000}}}});
    WsConnectOptions tinyWindow;
    tinyWindow.receiveBufferSize = 4096;  // the daemon's writes stop part way as soon as loopback's buffers fill
    WsTestClient client;
    ASSERT_TRUE(client.connectProtocol(daemon.port(), "", tinyWindow)) << client.lastError();
    ASSERT_TRUE(subscribeOk(client, "bulk"));

    // 6 MB, more than the kernel buffers for one loopback connection, published while the client
    // reads nothing but what a ping's send lets it read; a ping after every 100 messages.
    constexpr int kMessages = 1500;
    const std::string padding(4000, 'x');
    HttpTestClient api(daemon.apiPort());
    std::vector<std::string> pings = publishBulk(api, "bulk", kMessages, padding, &client);

    EXPECT_TRUE(receivesInOrder(client, kMessages, padding));
    EXPECT_TRUE(eventually(
        [&] {
            client.pumpFor(50ms);
            return client.pongs().size() >= pings.size();
        },
        5000ms));
    EXPECT_EQ(client.pongs(), pings);
    EXPECT_TRUE(client.isOpen());
}

TEST(DirectWrites, TheCloseFrameFollowsTheLastHalfWrittenMessage) {
    // A disconnect while megabytes wait: the `disconnect` message, then the close frame, after
    // everything queued before them, and nothing after.
    DaemonProcess daemon(json{{"websocket", {{"write_queue_max_bytes", 64 << 20}, {"write_queue_max_frames", 100000}}},
                              {"client", {{"allow_anonymous", true}, {"trust_client_user", true}}}});
    WsConnectOptions tinyWindow;
    tinyWindow.receiveBufferSize = 4096;
    WsTestClient client;
    ASSERT_TRUE(client.connectProtocol(daemon.port(), "dora", tinyWindow)) << client.lastError();
    ASSERT_TRUE(subscribeOk(client, "bulk"));
    constexpr int kMessages = 1000;
    const std::string padding(4000, 'y');
    HttpTestClient api(daemon.apiPort());
    publishBulk(api, "bulk", kMessages, padding);
    // A busy loop lets publications wait a moment to join the next turn (EventLoop::deliverSoon),
    // and the disconnect does not wait for them: it is sent once all are in the connection's queue.
    ASSERT_TRUE(eventually(
        [&] { return readMetric(daemon.apiPort(), "wspush_deliveries_total{qos=\"0\"}") >= kMessages; }, 10000ms));
    HttpResult disconnect = api.postJson("/api/disconnect", {{"user", "dora"}, {"reconnect", false}});
    ASSERT_EQ(disconnect.status, 202u) << disconnect.body;

    auto ending = client.waitClose(20000ms);
    ASSERT_TRUE(ending) << "still open";
    std::vector<json> messages;
    for (const json& m : ending->messages)
        if (m.value("type", "") == "message") messages.push_back(m);
    ASSERT_EQ(messages.size(), static_cast<std::size_t>(kMessages));
    for (int seq = 1; seq <= kMessages; ++seq) {
        ASSERT_EQ(messages[seq - 1]["data"]["seq"], seq);
        ASSERT_EQ(messages[seq - 1]["data"]["pad"], padding);
    }
    ASSERT_FALSE(ending->messages.empty());
    EXPECT_EQ(ending->messages.back().value("type", ""), "disconnect") << ending->messages.back().dump();
    EXPECT_NE(ending->closeCode, kAbnormalClosure) << "a close frame ends it";
}

// After a turn of deliveries the connections' writes go out together, one io_uring submission for
// many sockets (BatchedSends), where the kernel allows io_uring; else one send() each. Either way
// the clients must see the same; wspush_batched_sends_total tells which way it went, and stays 0
// where io_uring is unavailable.
TEST(DirectWrites, EachSubscriberOfAPublicationIsWrittenInOneSubmission) {
    DaemonProcess daemon(json{{"threads", 1}});
    constexpr int kSubscribers = 20;
    constexpr int kPublications = 10;
    std::vector<WsTestClient> clients(kSubscribers);
    for (WsTestClient& client : clients) {
        ASSERT_TRUE(client.connectProtocol(daemon.port())) << client.lastError();
        ASSERT_TRUE(subscribeOk(client, "news"));
    }
    double before = readMetric(daemon.apiPort(), "wspush_batched_sends_total");
    ASSERT_GE(before, 0);
    HttpTestClient api(daemon.apiPort());
    for (int seq = 1; seq <= kPublications; ++seq) {
        ASSERT_EQ(api.postJson("/api/publish", {{"channel", "news"}, {"data", {{"seq", seq}}}}).status, 200u);
        // One at a time: each publication is a turn of its own, with a write to every subscriber.
        for (WsTestClient& client : clients) {
            auto message = client.waitFor([](const json& m) { return m.value("type", "") == "message"; }, 5000ms);
            ASSERT_TRUE(message) << client.lastError();
            ASSERT_EQ((*message)["data"]["seq"], seq);
        }
    }
    double expected = ioUringAvailable() ? kSubscribers * kPublications : 0;
    EXPECT_EQ(readMetric(daemon.apiPort(), "wspush_batched_sends_total") - before, expected);
}

TEST(DirectWrites, BatchedWritesToClientsThatStopReadingComeOutWholeWithPongsBetweenThem) {
    // Two subscribers with small receive windows that read nothing for a while: their sockets
    // fill, the batched sends come back short or with EAGAIN, and the rest of each message goes
    // out asynchronously, with the pongs Beast answers meanwhile held back until it is out.
    DaemonProcess daemon(
        json{{"threads", 1}, {"websocket", {{"write_queue_max_bytes", 64 << 20}, {"write_queue_max_frames", 100000}}}});
    WsConnectOptions tinyWindow;
    tinyWindow.receiveBufferSize = 4096;
    std::vector<WsTestClient> clients(2);
    for (WsTestClient& client : clients) {
        ASSERT_TRUE(client.connectProtocol(daemon.port(), "", tinyWindow)) << client.lastError();
        ASSERT_TRUE(subscribeOk(client, "bulk"));
    }
    double before = readMetric(daemon.apiPort(), "wspush_batched_sends_total");
    constexpr int kMessages = 1000;
    const std::string padding(4000, 'z');  // under WireFrameCache::kMaxPayloadBytes: batched
    HttpTestClient api(daemon.apiPort());
    std::vector<std::string> pings = publishBulk(api, "bulk", kMessages, padding, &clients[0]);
    for (WsTestClient& client : clients) EXPECT_TRUE(receivesInOrder(client, kMessages, padding));
    EXPECT_TRUE(eventually(
        [&] {
            clients[0].pumpFor(50ms);
            return clients[0].pongs().size() >= pings.size();
        },
        5000ms));
    EXPECT_EQ(clients[0].pongs(), pings);
    for (WsTestClient& client : clients) EXPECT_TRUE(client.isOpen());
    if (ioUringAvailable()) {
        EXPECT_GT(readMetric(daemon.apiPort(), "wspush_batched_sends_total") - before, 0);
    }
}

}  // namespace
}  // namespace wspush::testing
