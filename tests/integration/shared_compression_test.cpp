// permessage-deflate without context takeover, the default (websocket.compression.context_takeover
// false): the daemon compresses a publication once for every subscriber of an event loop and
// writes the result itself; the client's compressed messages reach Beast through the daemon's
// InboundDeflateFilter. The client here is Beast's, which inflates and checks every frame.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/client_frames.h"
#include "support/test_helpers.h"

namespace wspush::testing {
namespace {

using json = nlohmann::json;

std::string compressible(std::size_t size) {
    std::string text;
    for (int i = 0; text.size() < size; ++i) text += "row " + std::to_string(i) + " of a compressible payload; ";
    text.resize(size);
    return text;
}

WsConnectOptions offeringDeflate() {
    WsConnectOptions options;
    options.offerDeflate = true;
    return options;
}

json compressionOn(bool contextTakeover = false) {
    return json{{"threads", 1},
                {"websocket", {{"compression", {{"enabled", true}, {"context_takeover", contextTakeover}}}}}};
}

TEST(SharedCompression, APublicationIsCompressedOnceForAllItsSubscribers) {
    DaemonProcess daemon(compressionOn());
    std::vector<WsTestClient> compressed(6);
    for (WsTestClient& client : compressed) {
        ASSERT_TRUE(client.connectProtocol(daemon.port(), "", offeringDeflate())) << client.lastError();
        ASSERT_TRUE(client.deflateNegotiated());
        EXPECT_NE(client.handshakeExtensions().find("server_no_context_takeover"), std::string::npos)
            << client.handshakeExtensions();
        EXPECT_NE(client.handshakeExtensions().find("client_no_context_takeover"), std::string::npos);
        ASSERT_TRUE(subscribeOk(client, "news"));
    }
    WsTestClient plain;
    ASSERT_TRUE(plain.connectProtocol(daemon.port())) << plain.lastError();
    ASSERT_TRUE(subscribeOk(plain, "news"));

    double before = readMetric(daemon.apiPort(), "wspush_deflate_compressions_total");
    ASSERT_GE(before, 0);
    std::vector<std::string> payloads{compressible(2000), compressible(300), "below the threshold",
                                      compressible(50000)};
    HttpTestClient api(daemon.apiPort());
    for (const std::string& payload : payloads) {
        ASSERT_EQ(api.postJson("/api/publish", {{"channel", "news"}, {"data", payload}}).status, 200u);
        // One at a time, so that no two are joined into one batch.
        for (WsTestClient& client : compressed) {
            auto message = client.nextMessage();
            ASSERT_TRUE(message) << client.lastError();
            EXPECT_EQ((*message)["data"], payload);
        }
        auto message = plain.nextMessage();
        ASSERT_TRUE(message) << plain.lastError();
        EXPECT_EQ((*message)["data"], payload);
    }
    EXPECT_EQ(readMetric(daemon.apiPort(), "wspush_deflate_compressions_total") - before, 3)
        << "once per publication over the threshold, not once per subscriber";
}

TEST(SharedCompression, AQosMessageSharesThePublicationsCompressionAndKeepsItsOwnDid) {
    DaemonProcess daemon(compressionOn());
    std::vector<WsTestClient> clients(4);
    for (WsTestClient& client : clients) {
        ASSERT_TRUE(client.connectProtocol(daemon.port(), "", offeringDeflate())) << client.lastError();
        ASSERT_TRUE(subscribeOk(client, "orders"));
    }
    double before = readMetric(daemon.apiPort(), "wspush_deflate_compressions_total");
    ASSERT_GE(before, 0);
    for (int i = 0; i < 2; ++i) {
        std::string payload = compressible(1500 + i);
        ASSERT_EQ(httpPostJson(daemon.apiPort(), "/api/publish", {{"channel", "orders"}, {"data", payload}, {"qos", 1}})
                      .status,
                  200u);
        for (WsTestClient& client : clients) {
            auto message = client.nextMessage();
            ASSERT_TRUE(message) << client.lastError();
            EXPECT_EQ((*message)["data"], payload);
            EXPECT_EQ((*message)["qos"], 1) << message->dump().substr(0, 200);
            EXPECT_TRUE(message->contains("did") && (*message)["did"].is_number_unsigned())
                << message->dump().substr(0, 200);
        }
    }
    EXPECT_EQ(readMetric(daemon.apiPort(), "wspush_deflate_compressions_total") - before, 2)
        << "the payload once per publication; each session's did follows it uncompressed";
}

TEST(SharedCompression, CompressedCommandsAreReadWholeWithControlFramesBetweenTheirFragments) {
    DaemonProcess daemon(compressionOn());
    WsTestClient client;
    ASSERT_TRUE(client.connectProtocol(daemon.port(), "", offeringDeflate())) << client.lastError();
    ASSERT_TRUE(client.deflateNegotiated());

    // Through the client's own deflate (Beast, without context takeover as agreed).
    auto pong = client.request({{"type", "ping"}, {"padding", compressible(6000)}});
    ASSERT_TRUE(pong) << client.lastError();
    EXPECT_EQ(typeOf(*pong), "pong");

    // By hand: a subscribe compressed and cut in three fragments, a ping between two of them.
    std::string command =
        json{{"type", "subscribe"}, {"channel", "fragments"}, {"id", 77}, {"padding", compressible(3000)}}.dump();
    std::string packed = deflatedMessage(command);
    ASSERT_FALSE(packed.empty());
    std::size_t third = packed.size() / 3;
    std::string frames = clientFrame(0x41, packed.substr(0, third)) + clientFrame(0x89, "between") +
                         clientFrame(0x00, packed.substr(third, third)) + clientFrame(0x80, packed.substr(2 * third));
    ASSERT_TRUE(client.sendRaw(frames)) << client.lastError();
    auto reply = client.waitFor([](const json& m) { return m.value("id", 0) == 77; });
    ASSERT_TRUE(reply) << client.lastError();
    EXPECT_EQ(typeOf(*reply), "subscribed") << reply->dump();
    EXPECT_EQ((*reply)["channel"], "fragments");
    ASSERT_EQ(client.pongs(), std::vector<std::string>{"between"});

    // And a publication still reaches it afterwards: the connection is in step.
    ASSERT_TRUE(subscribeOk(client, "after"));
    ASSERT_EQ(
        httpPostJson(daemon.apiPort(), "/api/publish", {{"channel", "after"}, {"data", compressible(1000)}}).status,
        200u);
    auto message = client.waitFor([](const json& m) { return m.value("type", "") == "message"; });
    ASSERT_TRUE(message) << client.lastError();
    EXPECT_EQ((*message)["data"], compressible(1000));
}

TEST(SharedCompression, CorruptCompressedDataClosesWith1002AndNobodyElseNotices) {
    DaemonProcess daemon(compressionOn());
    WsTestClient witness, broken;
    ASSERT_TRUE(witness.connectProtocol(daemon.port(), "", offeringDeflate())) << witness.lastError();
    ASSERT_TRUE(subscribeOk(witness, "calm"));
    ASSERT_TRUE(broken.connectProtocol(daemon.port(), "", offeringDeflate())) << broken.lastError();
    ASSERT_TRUE(broken.sendRaw(clientFrame(0xC1, "\xff\xff\xff\xff\xff\xff"))) << broken.lastError();
    auto ending = broken.waitClose();
    ASSERT_TRUE(ending) << "not closed";
    EXPECT_EQ(ending->closeCode, 1002);

    ASSERT_EQ(httpPostJson(daemon.apiPort(), "/api/publish", {{"channel", "calm"}, {"data", compressible(700)}}).status,
              200u);
    auto message = witness.nextMessage();
    ASSERT_TRUE(message) << witness.lastError();
    EXPECT_EQ((*message)["data"], compressible(700));
}

TEST(SharedCompression, ContextTakeoverLeavesCompressionToEachConnection) {
    DaemonProcess daemon(compressionOn(true));
    WsTestClient client;
    ASSERT_TRUE(client.connectProtocol(daemon.port(), "", offeringDeflate())) << client.lastError();
    ASSERT_TRUE(client.deflateNegotiated());
    EXPECT_EQ(client.handshakeExtensions().find("no_context_takeover"), std::string::npos)
        << client.handshakeExtensions();
    ASSERT_TRUE(subscribeOk(client, "news"));
    for (int i = 0; i < 3; ++i) {
        ASSERT_EQ(
            httpPostJson(daemon.apiPort(), "/api/publish", {{"channel", "news"}, {"data", compressible(2000)}}).status,
            200u);
        auto message = client.nextMessage();
        ASSERT_TRUE(message) << client.lastError();
        EXPECT_EQ((*message)["data"], compressible(2000));
    }
    auto pong = client.request({{"type", "ping"}, {"padding", compressible(6000)}});
    ASSERT_TRUE(pong) << client.lastError();
    EXPECT_EQ(readMetric(daemon.apiPort(), "wspush_deflate_compressions_total"), 0) << "Beast compressed them";
}

}  // namespace
}  // namespace wspush::testing
