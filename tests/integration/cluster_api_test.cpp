// The cluster routes of the HTTP API through the real daemon on the memory engine (a cluster of
// one): POST /api/disconnect, /readyz, /api/nodes, and the "scope" of /api/channels and /api/info.
#include <gtest/gtest.h>

#include "support/test_helpers.h"

namespace wspush::testing {
namespace {

using json = nlohmann::json;

bool isDisconnect(const json& message) {
    return message.value("type", "") == "disconnect";
}

TEST(ClusterApi, DisconnectClosesEveryConnectionOfTheUserAndEndsTheirSessions) {
    DaemonProcess daemon;
    HttpTestClient http(daemon.apiPort());
    WsTestClient alice1, alice2, bob;
    auto connected1 = alice1.connectProtocol(daemon.port(), "alice");
    auto connected2 = alice2.connectProtocol(daemon.port(), "alice");
    ASSERT_TRUE(connected1 && connected2 && bob.connectProtocol(daemon.port(), "bob"));

    HttpResult sent = http.postJson("/api/disconnect", json{{"user", "alice"}});
    EXPECT_EQ(sent.status, 202u) << sent.body;
    EXPECT_EQ(sent.json(), (json{{"status", "sent"}, {"scope", "cluster"}}));

    for (WsTestClient* client : {&alice1, &alice2}) {
        auto ending = client->waitClose();
        ASSERT_TRUE(ending.has_value());
        EXPECT_EQ(ending->closeCode, 4503);
        EXPECT_EQ(ending->closeReason, "disconnected");
        ASSERT_FALSE(ending->messages.empty());
        EXPECT_TRUE(isDisconnect(ending->messages.back())) << ending->messages.back().dump();
        EXPECT_EQ(ending->messages.back().value("code", 0), 4503);
        EXPECT_EQ(ending->messages.back().value("reconnect", true), false);
    }
    // Bob stays: he still gets what is sent to him.
    EXPECT_TRUE(bob.isOpen());
    HttpResult toBob = http.postJson("/api/send", json{{"user", "bob"}, {"data", {{"hi", 1}}}});
    EXPECT_EQ(toBob.json().value("reached", 0), 1) << toBob.body;
    EXPECT_TRUE(bob.waitFor([](const json& m) { return m.value("type", "") == "message"; }).has_value());

    // A disconnected session cannot be resumed: the client gets a new one.
    WsTestClient again;
    auto resumed = again.connectWith(
        daemon.port(),
        json{{"user", "alice"}, {"session", (*connected1)["session"]}, {"resume", (*connected1)["resume"]}});
    ASSERT_TRUE(resumed.has_value());
    EXPECT_EQ(resumed->value("type", ""), "connected");
    EXPECT_EQ(resumed->value("resumed", true), false);
    EXPECT_NE(resumed->value("session", ""), (*connected1)["session"]);
}

TEST(ClusterApi, DisconnectOfOneConnectionWithReconnect) {
    DaemonProcess daemon;
    HttpTestClient http(daemon.apiPort());
    WsTestClient first, second;
    auto connected = first.connectProtocol(daemon.port(), "carol");
    ASSERT_TRUE(connected && second.connectProtocol(daemon.port(), "carol"));

    HttpResult sent = http.postJson("/api/disconnect", json{{"client", (*connected)["client"]}, {"reconnect", true}});
    EXPECT_EQ(sent.status, 202u) << sent.body;
    auto ending = first.waitClose();
    ASSERT_TRUE(ending.has_value());
    EXPECT_EQ(ending->closeCode, 4007);
    ASSERT_FALSE(ending->messages.empty());
    EXPECT_EQ(ending->messages.back().value("reconnect", false), true);
    EXPECT_TRUE(second.pumpFor(std::chrono::milliseconds(200)));
    EXPECT_TRUE(second.isOpen()) << "only the named connection";

    HttpResult bad = http.postJson("/api/disconnect", json{{"user", "carol"}, {"client", "x"}});
    EXPECT_EQ(bad.status, 400u);
    EXPECT_EQ(bad.json()["error"]["code"], 40003);
    bad = http.postJson("/api/disconnect", json::object());
    EXPECT_EQ(bad.status, 400u);
    EXPECT_EQ(bad.json()["error"]["code"], 40002);
}

TEST(ClusterApi, ReadyzNodesAndScopes) {
    DaemonProcess daemon;
    HttpTestClient http(daemon.apiPort());
    HttpResult ready = http.get("/readyz");
    EXPECT_EQ(ready.status, 200u);
    EXPECT_EQ(ready.json(), (json{{"status", "ready"}}));
    EXPECT_EQ(http.get("/healthz").json(), (json{{"status", "ok"}}));

    WsTestClient client;
    ASSERT_TRUE(client.connectProtocol(daemon.port(), "dave"));
    ASSERT_TRUE(client.subscribe("news"));
    // The first heartbeat is sent as the server starts; it is refreshed every 5 s.
    HttpResult nodes = http.get("/api/nodes");
    EXPECT_EQ(nodes.status, 200u) << nodes.body;
    json list = nodes.json()["nodes"];
    ASSERT_EQ(list.size(), 1u) << nodes.body;
    EXPECT_TRUE(list[0]["name"].is_string());
    EXPECT_EQ(list[0]["address"], "127.0.0.1:" + std::to_string(daemon.port()));
    EXPECT_TRUE(list[0]["version"].is_string());
    for (const char* key : {"connections", "subscriptions", "uptime_s"})
        EXPECT_TRUE(list[0][key].is_number_unsigned()) << key << " in " << nodes.body;

    EXPECT_EQ(http.get("/api/channels").json().value("scope", ""), "node");
    EXPECT_EQ(http.get("/api/info").json().value("scope", ""), "node");
}

}  // namespace
}  // namespace wspush::testing
