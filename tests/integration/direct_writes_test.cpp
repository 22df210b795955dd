// On a plain connection without permessage-deflate the daemon writes messages to the socket
// itself (DirectWriteSocket), while Beast still writes pongs, pings and the close frame on the
// same socket. These tests make the two writers meet: a client that does not read, so that the
// daemon's writes stay half done for a long time, and pings sent meanwhile, whose pongs Beast
// must hold back until the message under way is out. The client's Beast parses every frame
// strictly: a pong inside a message, or a message cut short, fails the connection.
#include <string>
#include <vector>

#include <gtest/gtest.h>

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
    constexpr int kPingEvery = 100;
    const std::string padding(4000, 'x');
    std::vector<std::string> pings;
    HttpTestClient api(daemon.apiPort());
    for (int seq = 1; seq <= kMessages; ++seq) {
        HttpResult result =
            api.postJson("/api/publish", {{"channel", "bulk"}, {"data", {{"seq", seq}, {"pad", padding}}}});
        ASSERT_EQ(result.status, 200u) << result.body << result.error;
        if (seq % kPingEvery == 0) {
            pings.push_back("ping-" + std::to_string(seq));
            ASSERT_TRUE(client.sendRaw(clientFrame(0x80 | kPing, pings.back()))) << client.lastError();
        }
    }

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
    for (int seq = 1; seq <= kMessages; ++seq) {
        HttpResult result =
            api.postJson("/api/publish", {{"channel", "bulk"}, {"data", {{"seq", seq}, {"pad", padding}}}});
        ASSERT_EQ(result.status, 200u) << result.body << result.error;
    }
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

}  // namespace
}  // namespace wspush::testing
