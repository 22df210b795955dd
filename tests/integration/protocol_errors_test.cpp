// Protocol v1 error handling through the real daemon (docs/protocol.md, "Error codes"): every
// refused command gets its code and keeps the connection, except the fatal ones, and one
// misbehaving client never disturbs another.
#include <gtest/gtest.h>

#include "support/test_helpers.h"

namespace wspush::testing {
namespace {

using json = nlohmann::json;

TEST(ProtocolErrors, CommandsBeforeConnectAreRefusedWith108) {
    DaemonProcess daemon;
    WsTestClient client;
    ASSERT_TRUE(client.connect(daemon.port())) << client.lastError();

    auto ping = client.request({{"id", 7}, {"type", "ping"}});
    EXPECT_EQ(errorCodeOf(ping), 108) << (ping ? ping->dump() : "no reply");
    EXPECT_EQ(errorCodeOf(client.subscribe("news")), 108);

    // The refusal is not fatal: connect still works afterwards.
    auto connected = client.request({{"type", "connect"}});
    ASSERT_TRUE(connected);
    EXPECT_EQ(typeOf(*connected), "connected") << connected->dump();
    EXPECT_EQ(connected->value("user", "?"), "");
    EXPECT_FALSE(connected->value("client", "").empty());
    EXPECT_TRUE(connected->contains("ping_interval") && connected->contains("pong_timeout"));
    EXPECT_EQ(errorCodeOf(client.request({{"type", "connect"}})), 109) << "a second connect";
}

TEST(ProtocolErrors, EachRefusedCommandGetsItsCodeAndTheConnectionStaysUsable) {
    DaemonProcess daemon;
    WsTestClient client;
    ASSERT_TRUE(client.connectProtocol(daemon.port())) << client.lastError();

    auto unknown = client.request({{"id", 11}, {"type", "teleport"}});
    EXPECT_EQ(errorCodeOf(unknown), 104);
    ASSERT_TRUE(unknown);
    EXPECT_EQ(unknown->value("id", 0), 11) << "errors echo the command's id";
    EXPECT_EQ(errorCodeOf(client.request({{"type", "subscribe"}})), 107) << "missing channel";
    EXPECT_EQ(errorCodeOf(client.request({{"type", "subscribe"}, {"channel", 42}})), 107) << "channel not a string";
    EXPECT_EQ(errorCodeOf(client.subscribe("bad channel!")), 110);
    EXPECT_EQ(errorCodeOf(client.subscribe("")), 110);
    EXPECT_EQ(errorCodeOf(client.subscribe("nowhere:room")), 102);
    ASSERT_TRUE(subscribeOk(client, "news"));
    EXPECT_EQ(errorCodeOf(client.subscribe("news")), 105);
    EXPECT_EQ(errorCodeOf(client.request({{"type", "unsubscribe"}, {"channel", "sports"}})), 111);

    auto pong = client.request({{"id", 99}, {"type", "ping"}});
    ASSERT_TRUE(pong);
    EXPECT_EQ(typeOf(*pong), "pong");
    EXPECT_EQ(pong->value("id", 0), 99);

    // An error without an id is still answered, uncorrelated.
    ASSERT_TRUE(client.sendJson({{"type", "teleport"}}));
    auto uncorrelated = client.nextMessage();
    ASSERT_TRUE(uncorrelated);
    EXPECT_EQ(uncorrelated->value("code", 0), 104);
    EXPECT_FALSE(uncorrelated->contains("id"));

    // After all of that the subscription still delivers.
    ASSERT_EQ(httpPostJson(daemon.apiPort(), "/api/publish", {{"channel", "news"}, {"data", "still here"}}).status,
              200u);
    auto message = client.waitFor([](const json& m) { return typeOf(m) == "message"; });
    ASSERT_TRUE(message);
    EXPECT_EQ((*message)["data"], "still here");
}

TEST(ProtocolErrors, SeveralCommandsInOneFrameAreAllAnsweredInOrder) {
    DaemonProcess daemon;
    WsTestClient client;
    ASSERT_TRUE(client.connect(daemon.port())) << client.lastError();
    ASSERT_TRUE(client.sendText(R"({"id":1,"type":"connect"})"
                                "\n"
                                R"({"id":2,"type":"ping"})"
                                "\n"
                                R"({"id":3,"type":"subscribe","channel":"multi"})"
                                "\n"
                                R"({"id":4,"type":"teleport"})"
                                "\n"));
    const std::vector<std::pair<int, std::string>> expected{
        {1, "connected"}, {2, "pong"}, {3, "subscribed"}, {4, "error"}};
    for (const auto& [id, type] : expected) {
        auto reply = client.nextMessage();
        ASSERT_TRUE(reply) << "no reply for id " << id;
        EXPECT_EQ(reply->value("id", 0), id) << reply->dump();
        EXPECT_EQ(typeOf(*reply), type) << reply->dump();
    }
}

TEST(ProtocolErrors, MalformedJsonIsAnsweredWith112ThenTheConnectionIsClosedWith4500) {
    DaemonProcess daemon;
    WsTestClient bystander, offender;
    ASSERT_TRUE(bystander.connectProtocol(daemon.port())) << bystander.lastError();
    ASSERT_TRUE(subscribeOk(bystander, "news"));
    ASSERT_TRUE(offender.connectProtocol(daemon.port())) << offender.lastError();
    ASSERT_TRUE(subscribeOk(offender, "news"));

    HttpTestClient api(daemon.apiPort());
    ASSERT_EQ(api.postJson("/api/publish", {{"channel", "news"}, {"data", 1}}).status, 200u);
    auto beforeOffence = offender.nextMessage();
    ASSERT_TRUE(beforeOffence && typeOf(*beforeOffence) == "message");
    // Pieces after the malformed one in the same frame are not processed.
    ASSERT_TRUE(offender.sendText("{nope\n{\"id\":5,\"type\":\"ping\"}"));

    auto ending = offender.waitClose();
    ASSERT_TRUE(ending) << "the server did not close the connection";
    EXPECT_EQ(ending->closeCode, 4500);
    ASSERT_EQ(ending->messages.size(), 2u);
    const json& error = ending->messages[0];
    EXPECT_EQ(typeOf(error), "error");
    EXPECT_EQ(error.value("code", 0), 112);
    // Exactly two messages: the ping after the bad piece was not answered.
    const json& disconnect = ending->messages[1];
    EXPECT_EQ(disconnect,
              (json{{"type", "disconnect"}, {"code", 4500}, {"reason", "bad request"}, {"reconnect", false}}));

    // The other subscriber of the channel is unaffected.
    ASSERT_EQ(api.postJson("/api/publish", {{"channel", "news"}, {"data", 2}}).status, 200u);
    for (int expected : {1, 2}) {
        auto message = bystander.nextMessage();
        ASSERT_TRUE(message) << "bystander missed publication " << expected;
        EXPECT_EQ((*message)["data"], expected);
    }
}

TEST(ProtocolErrors, APieceThatIsNotAnObjectIsMalformedToo) {
    DaemonProcess daemon;
    WsTestClient client;
    ASSERT_TRUE(client.connectProtocol(daemon.port())) << client.lastError();
    ASSERT_TRUE(client.sendText("[1,2,3]"));
    auto ending = client.waitClose();
    ASSERT_TRUE(ending);
    EXPECT_EQ(ending->closeCode, 4500);
    ASSERT_FALSE(ending->messages.empty());
    EXPECT_EQ(ending->messages.front().value("code", 0), 112);
}

TEST(ProtocolErrors, DataNestedTooDeepIsAnsweredWith107AndTheConnectionStaysUsable) {
    // Room for a 200 KB message, so that the nesting limit, not the size limit, refuses it.
    DaemonProcess daemon(json{{"websocket", {{"max_message_size", 256 * 1024}}},
                              {"namespaces", {{"chat", {{"client_publish", true}}}}}});
    WsTestClient client;
    ASSERT_TRUE(client.connectProtocol(daemon.port())) << client.lastError();
    ASSERT_TRUE(subscribeOk(client, "chat:room"));

    // 100,000 nested arrays: re-serializing `data` recursively used to exhaust the daemon's stack.
    std::string deep = std::string(100'000, '[') + std::string(100'000, ']');
    ASSERT_TRUE(client.sendText(R"({"id":5,"type":"publish","channel":"chat:room","data":)" + deep + "}"));
    auto refused = client.nextMessage();
    ASSERT_TRUE(refused) << client.lastError();
    EXPECT_EQ(errorCodeOf(refused), 107) << refused->dump();
    EXPECT_NE(refused->value("message", "").find("64 levels"), std::string::npos) << refused->dump();

    // The connection stays open and the daemon keeps serving it.
    auto pong = client.request({{"id", 6}, {"type", "ping"}});
    ASSERT_TRUE(pong) << client.lastError();
    EXPECT_EQ(typeOf(*pong), "pong");
    auto published = client.request({{"id", 7}, {"type", "publish"}, {"channel", "chat:room"}, {"data", "fine"}});
    ASSERT_TRUE(published) << client.lastError();
    EXPECT_EQ(typeOf(*published), "published") << published->dump();
    auto message = client.waitFor([](const json& m) { return typeOf(m) == "message"; });
    ASSERT_TRUE(message);
    EXPECT_EQ((*message)["data"], "fine");
    EXPECT_EQ(httpPostJson(daemon.apiPort(), "/api/publish", {{"channel", "chat:room"}, {"data", 2}}).status, 200u);
}

TEST(ProtocolErrors, AnonymousConnectIsRefusedWith101WhenNotAllowed) {
    DaemonProcess daemon(json{{"client", {{"allow_anonymous", false}}}});
    WsTestClient client;
    ASSERT_TRUE(client.connect(daemon.port())) << client.lastError();
    ASSERT_TRUE(client.sendJson({{"id", 1}, {"type", "connect"}}));
    auto ending = client.waitClose();
    ASSERT_TRUE(ending);
    EXPECT_EQ(ending->closeCode, 4501);
    ASSERT_EQ(ending->messages.size(), 2u);
    EXPECT_EQ(ending->messages[0].value("code", 0), 101);
    EXPECT_EQ(ending->messages[0].value("id", 0), 1);
    EXPECT_EQ(ending->messages[1],
              (json{{"type", "disconnect"}, {"code", 4501}, {"reason", "unauthorized"}, {"reconnect", false}}));
}

TEST(ProtocolErrors, ClientSuppliedUserIsRefusedWith103WhenNotTrusted) {
    DaemonProcess daemon(json{{"client", {{"trust_client_user", false}}}});
    WsTestClient client;
    ASSERT_TRUE(client.connect(daemon.port())) << client.lastError();
    ASSERT_TRUE(client.sendJson({{"id", 1}, {"type", "connect"}, {"user", "mallory"}}));
    auto ending = client.waitClose();
    ASSERT_TRUE(ending);
    EXPECT_EQ(ending->closeCode, 4501);
    ASSERT_FALSE(ending->messages.empty());
    EXPECT_EQ(ending->messages[0].value("code", 0), 103);

    // Without a user the same server lets the client in.
    WsTestClient anonymous;
    EXPECT_TRUE(anonymous.connectProtocol(daemon.port())) << anonymous.lastError();
}

}  // namespace
}  // namespace wspush::testing
