// Who is online, through the real daemon (memory engine): `device` and `info` given at connect and
// shown in presence, join and leave pushes in `join_leave` namespaces (and their cap), the users
// online (GET /api/users/{id}, POST /api/users/status, GET /api/online) and the clients' `status`
// command. Across nodes on Redis: redis_cluster_test.cpp.
#include <set>

#include <gtest/gtest.h>

#include "support/test_helpers.h"

namespace wspush::testing {
namespace {

using json = nlohmann::json;

json usersConfig() {
    return json{{"node_name", "u1"},
                {"client", {{"allow_anonymous", true}, {"trust_client_user", true}, {"user_status", true}}},
                {"namespaces",
                 {{"room", {{"presence", true}, {"client_presence", true}, {"join_leave", true}}},
                  {"crowd", {{"presence", true}, {"join_leave", true}, {"join_leave_max_members", 2}}},
                  {"plain", json::object()}}}};
}

bool isType(const json& message, const std::string& type) {
    return message.value("type", "") == type;
}

class UsersOnline : public ::testing::Test {
protected:
    UsersOnline() : daemon(usersConfig()), api(daemon.apiPort()) {}

    // Connects with `fields` (user, device, info…); the connection id.
    std::string connect(WsTestClient& client, json fields) {
        auto connected = client.connectWith(daemon.port(), std::move(fields));
        EXPECT_TRUE(connected && isType(*connected, "connected"))
            << (connected ? connected->dump() : client.lastError());
        return connected ? connected->value("client", "") : "";
    }
    json user(const std::string& id) { return api.get("/api/users/" + id).json(); }

    DaemonProcess daemon;
    HttpTestClient api;
};

TEST_F(UsersOnline, DeviceAndInfoGivenAtConnectAppearInTheReplyAndInPresence) {
    WsTestClient alice;
    auto connected = alice.connectWith(
        daemon.port(), json{{"user", "alice"}, {"device", "phone-1"}, {"info", {{"name", "Alice"}, {"level", 3}}}});
    ASSERT_TRUE(connected && isType(*connected, "connected")) << (connected ? connected->dump() : "");
    EXPECT_EQ(connected->value("device", "?"), "phone-1");
    ASSERT_TRUE(alice.subscribe("room:1"));
    auto presence = api.get("/api/presence?channel=room:1").json();
    ASSERT_EQ(presence["clients"].size(), 1u) << presence.dump();
    EXPECT_EQ(presence["clients"][0].value("device", ""), "phone-1");
    EXPECT_EQ(presence["clients"][0]["info"], (json{{"name", "Alice"}, {"level", 3}}));

    WsTestClient bare;
    auto plain = bare.connectWith(daemon.port(), json{{"user", "bob"}});
    ASSERT_TRUE(plain);
    EXPECT_EQ(plain->value("device", "?"), "") << "no device: empty";
}

TEST_F(UsersOnline, ABadDeviceOrInfoIsRefusedAtConnect) {
    for (json fields :
         {json{{"device", ""}}, json{{"device", std::string(65, 'd')}}, json{{"device", "a b"}}, json{{"device", 7}},
          json{{"info", "text"}}, json{{"info", {{"pad", std::string(1100, 'x')}}}}}) {
        WsTestClient client;
        auto reply = client.connectWith(daemon.port(), fields);
        ASSERT_TRUE(reply) << fields.dump();
        EXPECT_EQ(reply->value("code", 0), 107) << fields.dump() << " → " << reply->dump();
    }
}

TEST_F(UsersOnline, SubscribersSeeJoinAndLeaveWithTheMembersEntry) {
    WsTestClient watcher, guest;
    std::string watcherId = connect(watcher, {{"user", "watcher"}});
    ASSERT_TRUE(watcher.subscribe("room:a"));
    // Its own join reaches it too: the push goes to every subscriber.
    auto own = watcher.waitFor([](const json& m) { return isType(m, "join"); });
    ASSERT_TRUE(own);
    EXPECT_EQ(own->value("client", ""), watcherId);

    std::string guestId = connect(guest, {{"user", "guest"}, {"device", "tablet"}, {"info", {{"name", "G"}}}});
    ASSERT_TRUE(guest.subscribe("room:a"));
    auto joined = watcher.waitFor([&](const json& m) { return isType(m, "join") && m.value("client", "") == guestId; });
    ASSERT_TRUE(joined);
    EXPECT_EQ(*joined, (json{{"type", "join"},
                             {"channel", "room:a"},
                             {"client", guestId},
                             {"user", "guest"},
                             {"device", "tablet"},
                             {"info", {{"name", "G"}}}}));

    auto left = guest.request({{"type", "unsubscribe"}, {"channel", "room:a"}});
    ASSERT_TRUE(left && isType(*left, "unsubscribed"));
    auto leave = watcher.waitFor([&](const json& m) { return isType(m, "leave"); });
    ASSERT_TRUE(leave);
    EXPECT_EQ(leave->value("client", ""), guestId);
    EXPECT_EQ(leave->value("user", ""), "guest");

    // A connection that goes away leaves too.
    ASSERT_TRUE(guest.subscribe("room:a"));
    ASSERT_TRUE(watcher.waitFor([&](const json& m) { return isType(m, "join") && m.value("client", "") == guestId; }));
    guest.close();
    EXPECT_TRUE(watcher.waitFor([&](const json& m) { return isType(m, "leave") && m.value("client", "") == guestId; }));

    // A namespace without join_leave pushes nothing.
    ASSERT_TRUE(watcher.subscribe("plain:a"));
    WsTestClient other;
    connect(other, {{"user", "other"}});
    ASSERT_TRUE(other.subscribe("plain:a"));
    EXPECT_FALSE(watcher.waitFor([](const json& m) { return isType(m, "join"); }, 300ms));
}

TEST_F(UsersOnline, JoinAndLeaveStopAboveTheCap) {
    WsTestClient first, second, third;
    connect(first, {{"user", "a"}});
    connect(second, {{"user", "b"}});
    std::string thirdId = connect(third, {{"user", "c"}});
    ASSERT_TRUE(first.subscribe("crowd:x"));
    ASSERT_TRUE(second.subscribe("crowd:x"));
    ASSERT_TRUE(first.waitFor([](const json& m) { return isType(m, "join") && m.value("user", "") == "b"; }))
        << "two members: at the cap, still announced";
    ASSERT_TRUE(third.subscribe("crowd:x"));
    EXPECT_FALSE(first.waitFor([&](const json& m) { return m.value("client", "") == thirdId; }, 300ms))
        << "three members: past the cap of 2";
    third.close();
    EXPECT_TRUE(first.waitFor([&](const json& m) { return isType(m, "leave") && m.value("client", "") == thirdId; }))
        << "back to two once it left: its leave is announced";
}

TEST_F(UsersOnline, TheApiTellsWhoIsOnlineWithEveryConnection) {
    EXPECT_EQ(user("alice"), (json{{"online", false}, {"connections", json::array()}}));
    WsTestClient phone, laptop;
    std::string phoneId = connect(phone, {{"user", "alice"}, {"device", "phone"}});
    std::string laptopId = connect(laptop, {{"user", "alice"}, {"device", "laptop"}});
    json online = user("alice");
    EXPECT_TRUE(online.value("online", false)) << online.dump();
    std::set<std::string> devices;
    for (const auto& connection : online["connections"]) {
        devices.insert(connection.value("device", ""));
        EXPECT_EQ(connection.value("node", ""), "u1");
        EXPECT_TRUE(connection.value("client", "") == phoneId || connection.value("client", "") == laptopId);
        EXPECT_GT(connection.value("connected_at", std::int64_t{0}), 1700000000000);
    }
    EXPECT_EQ(devices, (std::set<std::string>{"phone", "laptop"}));

    WsTestClient bob;
    connect(bob, {{"user", "bob"}});
    auto status = api.postJson("/api/users/status", {{"users", {"alice", "bob", "nobody"}}});
    ASSERT_EQ(status.status, 200u) << status.body;
    EXPECT_EQ(status.body, R"({"users":{"alice":true,"bob":true,"nobody":false}})") << "in the order asked";

    phone.close();
    // The server finishes the close after the client's side of the handshake: wait for it.
    EXPECT_TRUE(eventually([&] { return user("alice")["connections"].size() == 1u; })) << "one connection left";
    laptop.drop();  // the session waits for its client: not online meanwhile
    EXPECT_TRUE(eventually([&] { return !user("alice").value("online", true); }));
    EXPECT_EQ(api.postJson("/api/users/status", {{"users", {"alice", "bob"}}}).body,
              R"({"users":{"alice":false,"bob":true}})");
}

TEST_F(UsersOnline, OnlineUsersArePagedWithACursor) {
    std::vector<std::unique_ptr<WsTestClient>> clients;
    std::set<std::string> expected;
    for (int i = 0; i < 7; ++i) {
        clients.push_back(std::make_unique<WsTestClient>());
        std::string name = "user" + std::to_string(i);
        connect(*clients.back(), {{"user", name}});
        expected.insert(name);
    }
    WsTestClient second;  // a second connection of one user: listed once
    connect(second, {{"user", "user0"}});
    WsTestClient anonymous;
    connect(anonymous, json::object());

    std::set<std::string> seen;
    std::string cursor;
    int pages = 0;
    do {
        auto page = api.get("/api/online?limit=3" + (cursor.empty() ? "" : "&cursor=" + cursor));
        ASSERT_EQ(page.status, 200u) << page.body;
        json body = page.json();
        EXPECT_LE(body["users"].size(), 3u);
        for (const auto& name : body["users"]) EXPECT_TRUE(seen.insert(name.get<std::string>()).second) << name;
        cursor = body.value("cursor", "");
        ASSERT_LT(++pages, 10);
    } while (!cursor.empty());
    EXPECT_EQ(seen, expected) << "anonymous connections are not users";
    EXPECT_EQ(pages, 3);

    EXPECT_EQ(api.get("/api/online?limit=0").json()["error"].value("code", 0), 40003);
    EXPECT_EQ(api.get("/api/online?cursor=zz").json()["error"].value("code", 0), 40003);
}

TEST_F(UsersOnline, ClientsAskForStatusWhereTheConfigAllows) {
    WsTestClient alice, bob;
    connect(alice, {{"user", "alice"}});
    connect(bob, {{"user", "bob"}});
    auto reply = alice.request({{"type", "status"}, {"users", {"bob", "carol"}}});
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->value("type", ""), "status") << reply->dump();
    EXPECT_EQ((*reply)["users"], (json{{"bob", true}, {"carol", false}}));
    for (json bad : {json{{"type", "status"}}, json{{"type", "status"}, {"users", json::array()}},
                     json{{"type", "status"}, {"users", {1}}}, json{{"type", "status"}, {"users", "bob"}}}) {
        auto refused = alice.request(bad);
        ASSERT_TRUE(refused);
        EXPECT_EQ(refused->value("code", 0), 107) << bad.dump();
    }
}

TEST(UsersOnlineRefusals, StatusNeedsTheConfigAndTheApiChecksItsInput) {
    DaemonProcess daemon(json{{"client", {{"allow_anonymous", true}, {"trust_client_user", true}}}});
    HttpTestClient api(daemon.apiPort());
    WsTestClient alice;
    ASSERT_TRUE(alice.connectProtocol(daemon.port(), "alice"));
    auto denied = alice.request({{"type", "status"}, {"users", {"bob"}}});
    ASSERT_TRUE(denied);
    EXPECT_EQ(denied->value("code", 0), 103) << "client.user_status is off by default";

    EXPECT_EQ(api.postJson("/api/users/status", json::object()).json()["error"].value("code", 0), 40002);
    EXPECT_EQ(api.postJson("/api/users/status", {{"users", json::array()}}).json()["error"].value("code", 0), 40003);
    EXPECT_EQ(api.postJson("/api/users/status", {{"users", std::vector<std::string>(1001, "u")}})
                  .json()["error"]
                  .value("code", 0),
              40003);
    EXPECT_EQ(api.get("/api/users/bad%20name").json()["error"].value("code", 0), 40003);
    EXPECT_EQ(api.get("/api/users/alice/devices").status, 404u);
    auto wrongMethod = api.postJson("/api/users/alice", json::object());
    EXPECT_EQ(wrongMethod.status, 405u);
    // An id with '/' and '#' travels percent-encoded.
    WsTestClient odd;
    ASSERT_TRUE(odd.connectProtocol(daemon.port(), "team/a#1"));
    EXPECT_TRUE(api.get("/api/users/team%2Fa%231").json().value("online", false));
}

}  // namespace
}  // namespace wspush::testing
