// Presence through the real daemon (memory engine): who is subscribed, by connection, through the
// WebSocket `presence` / `presence_stats` commands and GET /api/presence(/stats); a resumed
// session's connection is present again; every refusal. Across nodes on Redis:
// redis_cluster_test.cpp.
#include <set>

#include <gtest/gtest.h>

#include "support/test_helpers.h"

namespace wspush::testing {
namespace {

using json = nlohmann::json;

json presenceConfig() {
    return json{{"node_name", "p1"},
                {"channel_defaults", {{"presence", true}, {"client_presence", true}}},
                {"namespaces",
                 {{"room", {{"presence", true}, {"client_presence", true}, {"presence_max_members", 2}}},
                  {"quiet", {{"presence", true}}},
                  {"plain", json::object()}}}};
}

std::set<std::string> clientsIn(const json& presence) {
    std::set<std::string> clients;
    for (const auto& entry : presence.value("clients", json::array())) clients.insert(entry.value("client", ""));
    return clients;
}

class Presence : public ::testing::Test {
protected:
    Presence() : daemon(presenceConfig()), api(daemon.apiPort()) {}

    // Connects a client as `user` subscribed to `channels`; its connection id.
    std::string join(WsTestClient& client, const std::string& user, const std::vector<std::string>& channels) {
        auto connected = client.connectProtocol(daemon.port(), user);
        EXPECT_TRUE(connected) << client.lastError();
        for (const auto& channel : channels) {
            auto reply = client.subscribe(channel);
            EXPECT_TRUE(reply && typeOf(*reply) == "subscribed") << (reply ? reply->dump() : "no reply");
        }
        return connected ? connected->value("client", "") : "";
    }
    json stats(const std::string& channel) { return api.get("/api/presence/stats?channel=" + channel).json(); }

    DaemonProcess daemon;
    HttpTestClient api;
};

TEST_F(Presence, SubscribedConnectionsArePresentWithTheirUserAndNode) {
    WsTestClient a1, a2, b;
    std::string idA1 = join(a1, "alice", {"news"}), idA2 = join(a2, "alice", {"news"}), idB = join(b, "bob", {"news"});
    HttpResult listed = api.get("/api/presence?channel=news");
    ASSERT_EQ(listed.status, 200u) << listed.body;
    EXPECT_EQ(listed.json().value("channel", ""), "news");
    EXPECT_EQ(clientsIn(listed.json()), (std::set<std::string>{idA1, idA2, idB}));
    json body = listed.json();
    for (const auto& entry : body["clients"]) {
        EXPECT_EQ(entry.value("node", ""), "p1");
        EXPECT_EQ(entry.value("user", ""), entry.value("client", "") == idB ? "bob" : "alice");
        EXPECT_GT(entry.value("connected_at", std::int64_t{0}), 1700000000000);
    }
    EXPECT_EQ(stats("news"), (json{{"channel", "news"}, {"clients", 3}, {"users", 2}}));

    // The same through the WebSocket commands, from a client that is not subscribed itself.
    WsTestClient asker;
    join(asker, "carol", {});
    auto reply = asker.request({{"type", "presence_stats"}, {"channel", "news"}});
    ASSERT_TRUE(reply);
    EXPECT_EQ(typeOf(*reply), "presence_stats") << reply->dump();
    EXPECT_EQ(reply->value("clients", 0), 3);
    EXPECT_EQ(reply->value("users", 0), 2);
    reply = asker.request({{"type", "presence"}, {"channel", "news"}});
    ASSERT_TRUE(reply);
    EXPECT_EQ(clientsIn(*reply), (std::set<std::string>{idA1, idA2, idB})) << reply->dump();
}

TEST_F(Presence, UnsubscribingOrDisconnectingLeaves) {
    WsTestClient a1, a2, b;
    join(a1, "alice", {"news"});
    std::string idA2 = join(a2, "alice", {"news"});
    join(b, "bob", {"news"});
    auto left = a1.request({{"type", "unsubscribe"}, {"channel", "news"}});
    ASSERT_TRUE(left && typeOf(*left) == "unsubscribed");
    EXPECT_EQ(stats("news").value("clients", 0), 2);
    EXPECT_EQ(stats("news").value("users", 0), 2) << "alice still has a2";
    b.close();
    EXPECT_TRUE(eventually([&] { return stats("news").value("clients", 0) == 1; }));
    EXPECT_EQ(clientsIn(api.get("/api/presence?channel=news").json()), (std::set<std::string>{idA2}));
}

TEST_F(Presence, AConnectionThatDropsLeavesAndItsResumedSessionIsPresentAgain) {
    WsTestClient first;
    auto connected = first.connectProtocol(daemon.port(), "alice");
    ASSERT_TRUE(connected);
    ASSERT_TRUE(first.subscribe("news"));
    first.drop();  // no close frame: the session waits for its client
    EXPECT_TRUE(eventually([&] { return stats("news").value("clients", -1) == 0; }))
        << "a session waiting for its client is not present";
    WsTestClient second;
    auto resumed = second.connectWith(daemon.port(), json{{"user", "alice"},
                                                          {"session", connected->value("session", "")},
                                                          {"resume", connected->value("resume", "")}});
    ASSERT_TRUE(resumed && resumed->value("resumed", false)) << (resumed ? resumed->dump() : "");
    EXPECT_EQ(clientsIn(api.get("/api/presence?channel=news").json()),
              (std::set<std::string>{resumed->value("client", "")}));
}

TEST_F(Presence, AListStopsAtTheNamespacesCapButStatsCountEveryone) {
    WsTestClient clients[3];
    for (int i = 0; i < 3; ++i) join(clients[i], "u" + std::to_string(i), {"room:big"});
    EXPECT_EQ(api.get("/api/presence?channel=room:big").json()["clients"].size(), 2u);
    EXPECT_EQ(stats("room:big").value("clients", 0), 3);
}

TEST_F(Presence, RefusalsAreClear) {
    WsTestClient client;
    join(client, "alice", {"quiet:x"});
    auto denied = client.request({{"type", "presence"}, {"channel", "quiet:x"}});
    ASSERT_TRUE(denied);
    EXPECT_EQ(denied->value("code", 0), 103) << "presence kept, but clients may not ask";
    EXPECT_EQ(api.get("/api/presence/stats?channel=quiet:x").json().value("clients", -1), 1) << "the API may";
    auto none = client.request({{"type", "presence_stats"}, {"channel", "plain:x"}});
    ASSERT_TRUE(none);
    EXPECT_EQ(none->value("code", 0), 103);
    auto unknown = client.request({{"type", "presence"}, {"channel", "nope:x"}});
    ASSERT_TRUE(unknown);
    EXPECT_EQ(unknown->value("code", 0), 102);
    auto missing = client.request({{"type", "presence"}});
    ASSERT_TRUE(missing);
    EXPECT_EQ(missing->value("code", 0), 107);

    HttpResult noPresence = api.get("/api/presence?channel=plain:x");
    EXPECT_EQ(noPresence.status, 400u);
    EXPECT_EQ(noPresence.json()["error"].value("code", 0), 40007) << noPresence.body;
    EXPECT_EQ(api.get("/api/presence/stats").json()["error"].value("code", 0), 40002);
    EXPECT_EQ(api.get("/api/presence?channel=bad%20name").json()["error"].value("code", 0), 40004);
    EXPECT_EQ(api.get("/api/presence?channel=nope:x").json()["error"].value("code", 0), 40005);
}

}  // namespace
}  // namespace wspush::testing
