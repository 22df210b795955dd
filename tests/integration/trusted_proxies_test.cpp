// proxy.trusted through the real daemon: from a trusted proxy the per-address limits count the
// address X-Forwarded-For names, from anyone else the header is ignored, and the API's loopback
// rule (no api.keys) looks at the forwarded client too. The parsing itself is unit-tested in
// tests/transport/client_address_test.cpp; nginx in front for real is nginx_test.cpp.
//
// Clients choose their TCP address among the loopback addresses (127.0.0.0/8 all reaches the
// daemon on 127.0.0.1): 127.0.0.1 plays the trusted proxy, 127.0.0.31 an untrusted host.
#include <gtest/gtest.h>

#include "support/test_helpers.h"

namespace wspush::testing {
namespace {

using json = nlohmann::json;

constexpr const char* kProxy = "127.0.0.1";
constexpr const char* kStranger = "127.0.0.31";

json oneConnectionPerAddressBehind(const json& trusted) {
    return json{{"limits", {{"connections_per_ip", 1}}}, {"proxy", {{"trusted", trusted}}}};
}

// An upgrade from `localAddress` carrying `forwardedFor` (none when empty).
WsConnectOptions from(const std::string& localAddress, const std::string& forwardedFor = "") {
    WsConnectOptions options;
    options.localAddress = localAddress;
    if (!forwardedFor.empty()) options.headers["X-Forwarded-For"] = forwardedFor;
    return options;
}

::testing::AssertionResult refusedForItsAddress(const WsTestClient& client) {
    if (client.handshakeStatus() != 429)
        return ::testing::AssertionFailure() << "status " << client.handshakeStatus() << ": " << client.lastError();
    json body = json::parse(client.handshakeBody(), nullptr, false);
    if (!body.is_object() || body["error"].value("code", 0) != 42901)
        return ::testing::AssertionFailure() << "body " << client.handshakeBody();
    return ::testing::AssertionSuccess();
}

TEST(TrustedProxies, FromATrustedProxyTheForwardedAddressIsCounted) {
    DaemonProcess daemon(oneConnectionPerAddressBehind({kProxy}));
    WsTestClient first, second, again;
    ASSERT_TRUE(first.connectProtocol(daemon.port(), "", from(kProxy, "198.51.100.1"))) << first.lastError();
    EXPECT_TRUE(second.connectProtocol(daemon.port(), "", from(kProxy, "198.51.100.2")))
        << "another client behind the same proxy: " << second.lastError();

    EXPECT_FALSE(again.connect(daemon.port(), from(kProxy, "198.51.100.1")));
    EXPECT_TRUE(refusedForItsAddress(again));
    // Only what the proxy appended counts: the client's own claim, left of it, does not.
    WsTestClient spoofing;
    EXPECT_FALSE(spoofing.connect(daemon.port(), from(kProxy, "198.51.100.7, 198.51.100.1")));
    EXPECT_TRUE(refusedForItsAddress(spoofing));
    // The logs name the client, and the proxy it came through.
    EXPECT_NE(daemon.logText().find("websocket client 198.51.100.2 via proxy 127.0.0.1"), std::string::npos);
    EXPECT_NE(daemon.logText().find("http request from 198.51.100.1 (via proxy 127.0.0.1) refused"), std::string::npos);

    first.close();
    EXPECT_TRUE(eventually([&] {
        return again.connectProtocol(daemon.port(), "", from(kProxy, "198.51.100.1")).has_value();
    })) << "the forwarded address's place is given back when its connection closes: "
        << again.lastError();
}

TEST(TrustedProxies, FromAnUntrustedPeerTheHeaderIsIgnored) {
    DaemonProcess daemon(oneConnectionPerAddressBehind({kProxy}));
    WsTestClient first, second;
    ASSERT_TRUE(first.connectProtocol(daemon.port(), "", from(kStranger, "198.51.100.1"))) << first.lastError();
    EXPECT_FALSE(second.connect(daemon.port(), from(kStranger, "198.51.100.2")))
        << "a host that is no proxy cannot pose as several clients";
    EXPECT_TRUE(refusedForItsAddress(second));
    EXPECT_NE(daemon.logText().find("http request from 127.0.0.31 refused"), std::string::npos);
}

TEST(TrustedProxies, WithoutTrustedProxiesEveryoneIsItsPeer) {
    DaemonProcess daemon(json{{"limits", {{"connections_per_ip", 1}}}});
    WsTestClient first, second;
    ASSERT_TRUE(first.connectProtocol(daemon.port(), "", from(kProxy, "198.51.100.1"))) << first.lastError();
    EXPECT_FALSE(second.connect(daemon.port(), from(kProxy, "198.51.100.2")));
    EXPECT_TRUE(refusedForItsAddress(second));
}

TEST(TrustedProxies, TrustedNetworksInCidrNotation) {
    DaemonProcess daemon(oneConnectionPerAddressBehind({"10.0.0.0/8", "127.0.0.0/30"}));
    WsTestClient first, second, third;
    // 127.0.0.2 is inside 127.0.0.0/30, so it is a proxy; 10.1.2.3 a second proxy in the chain.
    ASSERT_TRUE(first.connectProtocol(daemon.port(), "", from("127.0.0.2", "198.51.100.1, 10.1.2.3")))
        << first.lastError();
    EXPECT_TRUE(second.connectProtocol(daemon.port(), "", from("127.0.0.2", "198.51.100.2, 10.1.2.3")))
        << second.lastError();
    // 127.0.0.4 is outside the /30: its header is ignored, and it counts as itself.
    EXPECT_TRUE(third.connectProtocol(daemon.port(), "", from("127.0.0.4", "198.51.100.1"))) << third.lastError();
    WsTestClient fourth;
    EXPECT_FALSE(fourth.connect(daemon.port(), from("127.0.0.4", "198.51.100.9")));
    EXPECT_TRUE(refusedForItsAddress(fourth));
}

TEST(TrustedProxies, TheApiLoopbackRuleLooksAtTheForwardedClient) {
    // No api.keys: the API answers loopback clients only. A request a local proxy forwards for a
    // remote client is not a loopback client's.
    DaemonProcess daemon(json{{"proxy", {{"trusted", {kProxy}}}}});
    json publication{{"channel", "news"}, {"data", 1}};
    EXPECT_EQ(httpPostJson(daemon.port(), "/api/publish", publication).status, 200u);
    HttpResult forwarded = httpPostJson(daemon.port(), "/api/publish", publication, {{"X-Forwarded-For", "192.0.2.7"}});
    EXPECT_EQ(forwarded.status, 403u) << forwarded.body;
    EXPECT_EQ(httpPostJson(daemon.port(), "/api/publish", publication, {{"X-Forwarded-For", "127.0.0.1"}}).status, 200u)
        << "a loopback client behind the proxy";
}

TEST(TrustedProxies, AnInvalidNetworkStopsStartupNamingTheKey) {
    auto result = runDaemonCommand({"--check-config"}, {{"WSPUSH_PROXY_TRUSTED", R"(["10.0.0.0/33"])"}});
    ASSERT_TRUE(result.exitCode.has_value());
    EXPECT_EQ(*result.exitCode, 2);
    EXPECT_NE(result.err.find("proxy.trusted[0]"), std::string::npos) << result.err;
    EXPECT_NE(result.err.find("10.0.0.0/33"), std::string::npos) << result.err;
}

}  // namespace
}  // namespace wspush::testing
