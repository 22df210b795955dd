// Offline messages through the real daemon (memory engine): what POST /api/send stored while a
// device was away comes at its next connect, before anything live, with its QoS, and `connected`
// says how many follow and how many were lost (overflow, bytes, expiry); a device never seen gets
// the configured backlog; what every device finished is trimmed; GET and DELETE of an inbox.
// Across nodes on Redis: redis_cluster_test.cpp.
#include <gtest/gtest.h>

#include "support/test_helpers.h"

namespace wspush::testing {
namespace {

using json = nlohmann::json;

json inboxConfig(json inbox = json::object()) {
    return json{{"node_name", "i1"},
                {"client", {{"allow_anonymous", true}, {"trust_client_user", true}}},
                {"inbox", std::move(inbox)}};
}

class Inbox : public ::testing::Test {
protected:
    explicit Inbox(json inbox = json::object()) : daemon(inboxConfig(std::move(inbox))), api(daemon.apiPort()) {}

    // Connects `user` as `device`; the `connected` reply.
    json connect(WsTestClient& client, const std::string& user, const std::string& device) {
        auto connected = client.connectWith(daemon.port(), json{{"user", user}, {"device", device}});
        EXPECT_TRUE(connected && connected->value("type", "") == "connected") << (connected ? connected->dump() : "");
        return connected.value_or(json::object());
    }
    // Closes with 1000, which ends the session, and waits until the server has seen it: the close
    // handshake completes for the client before the server's read handler runs, and a message
    // sent in between would still reach the session.
    void leave(WsTestClient& client, const std::string& user) {
        client.close();
        EXPECT_TRUE(eventually([&] { return !api.get("/api/users/" + user).json().value("online", true); }))
            << user << " still online";
    }
    // Registers `device` of `user` (a first connect) and leaves for good.
    void registerDevice(const std::string& user, const std::string& device) {
        WsTestClient client;
        connect(client, user, device);
        leave(client, user);
    }
    json send(const std::string& user, json data, int qos = 1) {
        HttpResult sent = api.postJson("/api/send", json{{"user", user}, {"data", std::move(data)}, {"qos", qos}});
        EXPECT_EQ(sent.status, 200u) << sent.body;
        return sent.json();
    }
    // The next `count` messages of the user's channel, acknowledged as they come.
    std::vector<json> receive(WsTestClient& client, std::size_t count, bool ack = true) {
        std::vector<json> received;
        while (received.size() < count) {
            auto message = client.waitFor([](const json& m) { return m.value("type", "") == "message"; });
            if (!message) break;
            if (ack && message->contains("did")) client.sendJson({{"type", "ack"}, {"did", (*message)["did"]}});
            received.push_back(*message);
        }
        return received;
    }
    json inboxOf(const std::string& user) { return api.get("/api/users/" + user + "/inbox").json(); }

    DaemonProcess daemon;
    HttpTestClient api;
};

TEST_F(Inbox, EachDeviceGetsWhatWasSentWhileItWasAwayInOrderOnce) {
    registerDevice("carol", "phone");
    registerDevice("carol", "laptop");
    for (int i = 1; i <= 50; ++i) {
        json sent = send("carol", {{"n", i}});
        EXPECT_EQ(sent.value("reached", -1), 0);
        EXPECT_TRUE(sent.value("stored", false)) << sent.dump();
    }
    for (const char* device : {"phone", "laptop"}) {
        WsTestClient client;
        json connected = connect(client, "carol", device);
        EXPECT_EQ(connected["inbox"], (json{{"pending", 50}, {"dropped", 0}})) << device << ": " << connected.dump();
        auto received = receive(client, 50);
        ASSERT_EQ(received.size(), 50u) << device;
        for (int i = 0; i < 50; ++i) {
            EXPECT_EQ(received[i]["data"].value("n", 0), i + 1) << device << " in order";
            EXPECT_EQ(received[i].value("qos", 0), 1) << "with its QoS";
            EXPECT_EQ(received[i].value("channel", ""), "$user:carol");
        }
        if (std::string(device) == "laptop") {
            // A live message comes after the inbox, and once; the phone, away, gets it later.
            send("carol", {{"live", device}}, 0);
            auto live = receive(client, 1);
            ASSERT_EQ(live.size(), 1u);
            EXPECT_EQ(live[0]["data"].value("live", ""), device);
            EXPECT_FALSE(client.waitFor([](const json& m) { return m.value("type", "") == "message"; }, 200ms))
                << "nothing twice";
        }
        leave(client, "carol");  // saves the device's cursor
    }
    // Both devices finished the 50: trimmed, and only what the phone has not got is left.
    EXPECT_TRUE(eventually([&] { return inboxOf("carol")["messages"].size() == 1; })) << inboxOf("carol").dump();
    EXPECT_EQ(inboxOf("carol")["messages"][0].value("offset", 0), 51);
    WsTestClient again;
    EXPECT_EQ(connect(again, "carol", "phone")["inbox"], (json{{"pending", 1}, {"dropped", 0}}));
    auto missed = receive(again, 1);
    ASSERT_EQ(missed.size(), 1u);
    EXPECT_EQ(missed[0]["data"].value("live", ""), "laptop");
    EXPECT_FALSE(missed[0].contains("did")) << "QoS 0, as it was sent";
}

TEST_F(Inbox, UnacknowledgedMessagesComeAgainAtTheNextConnect) {
    registerDevice("dave", "phone");
    for (int i = 1; i <= 3; ++i) send("dave", {{"n", i}});
    {
        WsTestClient client;
        EXPECT_EQ(connect(client, "dave", "phone")["inbox"].value("pending", 0), 3);
        auto received = receive(client, 3, false);  // read, never acknowledged
        ASSERT_EQ(received.size(), 3u);
        leave(client, "dave");
    }
    WsTestClient client;
    EXPECT_EQ(connect(client, "dave", "phone")["inbox"], (json{{"pending", 3}, {"dropped", 0}}));
    EXPECT_EQ(receive(client, 3).size(), 3u);
}

TEST_F(Inbox, AQosZeroMessageMissedWhileAwayComesWithTheNextSessionUnlessTheClientResumed) {
    auto sendWhileAway = [&](const std::string& user, int n) {
        EXPECT_TRUE(eventually([&] { return !api.get("/api/users/" + user).json().value("online", true); }));
        EXPECT_EQ(send(user, {{"n", n}}, 0).value("reached", -1), 0);
    };
    // Never resumed: the device's next session gets it from the inbox.
    WsTestClient first;
    connect(first, "kim", "phone");
    first.drop();  // the session waits for its client
    sendWhileAway("kim", 1);
    WsTestClient second;
    EXPECT_EQ(connect(second, "kim", "phone")["inbox"], (json{{"pending", 1}, {"dropped", 0}}));
    ASSERT_EQ(receive(second, 1).size(), 1u);
    second.close();

    // Resumed: the client accepted the loss (QoS 0, at most once); nothing comes back later.
    WsTestClient third;
    json connected = connect(third, "kim", "phone");
    third.drop();
    sendWhileAway("kim", 2);
    WsTestClient resumed;
    auto reply = resumed.connectWith(daemon.port(), json{{"user", "kim"},
                                                         {"device", "phone"},
                                                         {"session", connected.value("session", "")},
                                                         {"resume", connected.value("resume", "")}});
    ASSERT_TRUE(reply && reply->value("resumed", false)) << (reply ? reply->dump() : "");
    EXPECT_FALSE(reply->contains("inbox")) << "a resume reads no inbox";
    resumed.close();
    WsTestClient fourth;
    EXPECT_EQ(connect(fourth, "kim", "phone")["inbox"], (json{{"pending", 0}, {"dropped", 0}}));
}

TEST_F(Inbox, ANewDeviceGetsNoBacklogByDefaultAndTheApiShowsTheInbox) {
    send("erin", {{"n", 1}});
    send("erin", {{"n", 2}}, 0);
    WsTestClient client;
    EXPECT_EQ(connect(client, "erin", "tablet")["inbox"], (json{{"pending", 0}, {"dropped", 0}}));
    EXPECT_FALSE(client.waitFor([](const json& m) { return m.value("type", "") == "message"; }, 200ms));
    json inbox = inboxOf("erin");
    EXPECT_EQ(inbox.value("user", ""), "erin");
    ASSERT_EQ(inbox["messages"].size(), 2u) << inbox.dump();
    EXPECT_EQ(inbox["messages"][0]["data"], (json{{"n", 1}}));
    EXPECT_EQ(inbox["messages"][0].value("qos", -1), 1);
    EXPECT_EQ(inbox["messages"][1].value("qos", -1), 0);
    EXPECT_EQ(inbox["messages"][1].value("offset", 0), 2);
    ASSERT_EQ(inbox["devices"].size(), 1u);
    EXPECT_EQ(inbox["devices"][0].value("device", ""), "tablet");
    EXPECT_EQ(inbox["devices"][0].value("cursor", -1), 2) << "a new device starts at the top";
    EXPECT_GT(inbox["devices"][0].value("last_seen", std::int64_t{0}), 1700000000000);

    // DELETE clears the messages, and moves the devices past them: not a loss to report.
    client.close();
    registerDevice("erin", "phone");
    send("erin", {{"n", 3}});
    HttpResult cleared = api.request("DELETE", "/api/users/erin/inbox", "", {});
    ASSERT_EQ(cleared.status, 200u) << cleared.body;
    EXPECT_TRUE(inboxOf("erin")["messages"].empty());
    WsTestClient phone;
    EXPECT_EQ(connect(phone, "erin", "phone")["inbox"], (json{{"pending", 0}, {"dropped", 0}}));

    EXPECT_EQ(api.get("/api/users/erin/outbox").status, 404u);
    EXPECT_EQ(api.postJson("/api/users/erin/inbox", json::object()).status, 405u);
}

TEST_F(Inbox, WithoutADeviceThereIsNoInboxCount) {
    send("fay", {{"n", 1}});
    WsTestClient client;
    auto connected = client.connectWith(daemon.port(), json{{"user", "fay"}});
    ASSERT_TRUE(connected);
    EXPECT_FALSE(connected->contains("inbox"));
}

class SmallInbox : public Inbox {
protected:
    SmallInbox() : Inbox(json{{"max_messages", 5}, {"max_bytes", 1024}, {"ttl", 1}, {"new_device_backlog", 2}}) {}
};

TEST_F(SmallInbox, OverflowDropsTheOldestAndTheNextConnectReportsIt) {
    registerDevice("gus", "phone");
    for (int i = 1; i <= 7; ++i) send("gus", {{"n", i}});
    WsTestClient client;
    EXPECT_EQ(connect(client, "gus", "phone")["inbox"], (json{{"pending", 5}, {"dropped", 2}}));
    auto received = receive(client, 5);
    ASSERT_EQ(received.size(), 5u);
    EXPECT_EQ(received.front()["data"].value("n", 0), 3) << "the oldest went first";
}

TEST_F(SmallInbox, BytesBoundTheInboxToo) {
    registerDevice("hal", "phone");
    std::string text(300, 'x');
    for (int i = 1; i <= 5; ++i) send("hal", {{"n", i}, {"text", text}});
    WsTestClient client;
    json inbox = connect(client, "hal", "phone")["inbox"];
    EXPECT_EQ(inbox.value("pending", 0), 3) << "three of ~330 bytes fit in 1024: " << inbox.dump();
    EXPECT_EQ(inbox.value("dropped", 0), 2);
}

TEST_F(SmallInbox, ExpiredMessagesAreReportedAsDropped) {
    registerDevice("ivy", "phone");
    send("ivy", {{"n", 1}});
    send("ivy", {{"n", 2}});
    std::this_thread::sleep_for(1200ms);  // inbox.ttl is 1 s
    send("ivy", {{"n", 3}});
    WsTestClient client;
    EXPECT_EQ(connect(client, "ivy", "phone")["inbox"], (json{{"pending", 1}, {"dropped", 2}}));
}

TEST_F(SmallInbox, ANewDeviceGetsTheConfiguredBacklog) {
    for (int i = 1; i <= 4; ++i) send("jo", {{"n", i}});
    WsTestClient client;
    EXPECT_EQ(connect(client, "jo", "new-phone")["inbox"], (json{{"pending", 2}, {"dropped", 0}}));
    auto received = receive(client, 2);
    ASSERT_EQ(received.size(), 2u);
    EXPECT_EQ(received[0]["data"].value("n", 0), 3);
}

}  // namespace
}  // namespace wspush::testing
