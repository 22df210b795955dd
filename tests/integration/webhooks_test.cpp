// Webhooks through the real daemon to a real receiver (tests/support/webhook_receiver.h), which
// checks every signature: users online and offline once per transition (not for a reload within
// the grace), channels occupied and vacated, members added and removed, message_unacked, a
// receiver that fails for a while, /metrics. Across nodes on a real redis-server: one node sends
// each event, and a node killed with -9 loses none of them and its members leave.
#include <signal.h>

#include <map>
#include <mutex>
#include <set>

#include <gtest/gtest.h>

#include "support/redis_server_process.h"
#include "support/test_helpers.h"
#include "support/webhook_receiver.h"

namespace wspush::testing {
namespace {

using json = nlohmann::json;

constexpr const char* kSecret = "test-secret";

json webhooksConfig(const WebhookReceiver& receiver) {
    return json{{"client", {{"allow_anonymous", true}, {"trust_client_user", true}}},
                {"namespaces", {{"room", {{"presence", true}}}, {"plain", json::object()}}},
                {"webhooks",
                 {{"endpoints",
                   {{{"url", receiver.url()},
                     {"secret", kSecret},
                     {"events",
                      {"user_online", "user_offline", "channel_occupied", "channel_vacated", "member_added",
                       "member_removed", "message_unacked"}}}}},
                  {"offline_grace", 1},
                  {"unacked_after", 1},
                  {"timeout", 2}}}};
}

// Every event the receiver got, in arrival order, from requests whose signature checked out (and,
// with `answered`, only from the requests it answered 2xx: index → whether it did).
std::vector<json> eventsOf(const WebhookReceiver& receiver, const std::function<bool(std::size_t)>& answered = {}) {
    std::vector<json> events;
    auto requests = receiver.requests();
    for (std::size_t index = 0; index < requests.size(); ++index) {
        const ReceivedWebhook& request = requests[index];
        if (answered && !answered(index)) continue;
        EXPECT_TRUE(request.signatureValid) << request.body;
        EXPECT_EQ(request.contentType, "application/json");
        json batch = json::parse(request.body, nullptr, false);
        EXPECT_TRUE(batch.is_object() && batch["events"].is_array()) << request.body;
        if (!batch.is_object() || !batch["events"].is_array()) continue;
        for (const json& event : batch["events"]) events.push_back(event);
    }
    return events;
}

std::vector<json> named(const std::vector<json>& events, const std::string& name,
                        const std::function<bool(const json&)>& match = {}) {
    std::vector<json> found;
    for (const json& event : events)
        if (event.value("name", "") == name && (!match || match(event))) found.push_back(event);
    return found;
}

bool ofUser(const json& event, const std::string& user) {
    return event.value("user", "") == user;
}

class Webhooks : public ::testing::Test {
protected:
    Webhooks() : receiver(kSecret), daemon(withNodeName(webhooksConfig(receiver))), api(daemon.apiPort()) {}

    static json withNodeName(json config) {
        config["node_name"] = "w1";
        return config;
    }
    std::string connect(WsTestClient& client, const std::string& user, const std::string& device = "") {
        json fields{{"user", user}};
        if (!device.empty()) fields["device"] = device;
        auto connected = client.connectWith(daemon.port(), fields);
        EXPECT_TRUE(connected && connected->value("type", "") == "connected") << (connected ? connected->dump() : "");
        return connected ? connected->value("client", "") : "";
    }
    // Waits until `name` events of `user` number `count`, then a little longer for any extra.
    std::vector<json> waitForUserEvents(const std::string& name, const std::string& user, std::size_t count,
                                        std::chrono::milliseconds within = 5000ms) {
        eventually(
            [&] { return named(eventsOf(receiver), name, [&](auto& e) { return ofUser(e, user); }).size() >= count; },
            within);
        std::this_thread::sleep_for(300ms);
        return named(eventsOf(receiver), name, [&](auto& e) { return ofUser(e, user); });
    }

    WebhookReceiver receiver;
    DaemonProcess daemon;
    HttpTestClient api;
};

TEST_F(Webhooks, AUserComesOnlineOnceAndGoesOfflineAfterTheGrace) {
    WsTestClient phone, laptop;
    std::string phoneId = connect(phone, "alice", "phone");
    auto online = waitForUserEvents("user_online", "alice", 1);
    ASSERT_EQ(online.size(), 1u);
    EXPECT_EQ(online[0].value("client", ""), phoneId);
    EXPECT_EQ(online[0].value("device", ""), "phone");
    EXPECT_EQ(online[0].value("node", ""), "w1");
    EXPECT_EQ(online[0]["id"].get<std::string>().size(), 32u);
    EXPECT_GT(online[0].value("time_ms", std::int64_t{0}), std::int64_t{1'700'000'000'000});

    connect(laptop, "alice", "laptop");
    phone.close();
    std::this_thread::sleep_for(1500ms);  // past the grace with the laptop still there: still online
    EXPECT_EQ(named(eventsOf(receiver), "user_offline").size(), 0u);
    EXPECT_EQ(named(eventsOf(receiver), "user_online").size(), 1u) << "a second connection is not news";

    laptop.close();
    auto offline = waitForUserEvents("user_offline", "alice", 1);
    ASSERT_EQ(offline.size(), 1u);
    EXPECT_EQ(offline[0].value("device", ""), "laptop") << "the last connection that left";
    EXPECT_EQ(offline[0].value("reason", ""), "disconnected");
}

TEST_F(Webhooks, AReloadWithinTheGraceIsNeitherOfflineNorOnline) {
    WsTestClient first;
    connect(first, "bob");
    ASSERT_EQ(waitForUserEvents("user_online", "bob", 1).size(), 1u);
    first.close();
    WsTestClient again;  // well within the 1 s grace
    connect(again, "bob");
    std::this_thread::sleep_for(2000ms);
    auto events = eventsOf(receiver);
    EXPECT_EQ(named(events, "user_offline").size(), 0u);
    EXPECT_EQ(named(events, "user_online").size(), 1u);
    again.close();
    EXPECT_EQ(waitForUserEvents("user_offline", "bob", 1).size(), 1u);
}

TEST_F(Webhooks, PresenceChannelsReportOccupiedVacatedAddedAndRemoved) {
    WsTestClient member, other;
    std::string memberId = connect(member, "carol", "tab");
    std::string otherId = connect(other, "dan");
    ASSERT_TRUE(member.subscribe("room:1"));
    ASSERT_TRUE(other.subscribe("room:1"));
    ASSERT_TRUE(member.subscribe("plain:1"));  // no presence: no events
    ASSERT_TRUE(member.request({{"type", "unsubscribe"}, {"channel", "room:1"}}));
    other.close();
    ASSERT_TRUE(eventually([&] { return named(eventsOf(receiver), "channel_vacated").size() >= 1; }, 5000ms));
    std::this_thread::sleep_for(300ms);

    std::vector<std::pair<std::string, std::string>> sequence;  // (name, client) of room:1's events
    for (const json& event : eventsOf(receiver)) {
        EXPECT_NE(event.value("channel", ""), "plain:1") << event.dump();
        if (event.value("channel", "") == "room:1") sequence.emplace_back(event["name"], event.value("client", ""));
    }
    EXPECT_EQ(sequence, (std::vector<std::pair<std::string, std::string>>{{"member_added", memberId},
                                                                          {"channel_occupied", memberId},
                                                                          {"member_added", otherId},
                                                                          {"member_removed", memberId},
                                                                          {"member_removed", otherId},
                                                                          {"channel_vacated", otherId}}));
    auto removed = named(eventsOf(receiver), "member_removed");
    ASSERT_EQ(removed.size(), 2u);
    EXPECT_EQ(removed[0].value("reason", ""), "unsubscribed");
    EXPECT_EQ(removed[0].value("device", ""), "tab");
    EXPECT_EQ(removed[0].value("user", ""), "carol");
    EXPECT_EQ(removed[1].value("reason", ""), "disconnected");
}

TEST_F(Webhooks, AMessageNoDeviceAcknowledgedIsReported) {
    // erin has a device that acknowledges, frank has none connected.
    WsTestClient erin;
    connect(erin, "erin", "phone");
    HttpResult toErin = api.postJson("/api/send", json{{"user", "erin"}, {"data", {{"n", 1}}}, {"qos", 1}});
    ASSERT_EQ(toErin.status, 200u) << toErin.body;
    auto message = erin.waitFor([](const json& m) { return m.value("type", "") == "message"; });
    ASSERT_TRUE(message && message->contains("did"));
    erin.sendJson({{"type", "ack"}, {"did", (*message)["did"]}});
    erin.pumpFor(100ms);
    erin.close();  // the session ends: its cursor is saved now, not within the next second

    HttpResult toFrank = api.postJson("/api/send", json{{"user", "frank"}, {"data", {{"n", 2}}}, {"qos", 1}});
    ASSERT_EQ(toFrank.status, 200u) << toFrank.body;
    HttpResult quiet = api.postJson("/api/send", json{{"user", "frank"}, {"data", {{"n", 3}}}, {"qos", 0}});
    ASSERT_EQ(quiet.status, 200u) << quiet.body;

    auto unacked = waitForUserEvents("message_unacked", "frank", 1);
    ASSERT_EQ(unacked.size(), 1u) << "the QoS 0 message is not watched";
    EXPECT_EQ(unacked[0].value("channel", ""), "$user:frank");
    EXPECT_EQ(unacked[0].value("offset", 0), 1);
    EXPECT_FALSE(unacked[0].value("mid", "").empty());
    EXPECT_EQ(unacked[0].value("node", ""), "w1");
    EXPECT_EQ(named(eventsOf(receiver), "message_unacked", [](auto& e) { return ofUser(e, "erin"); }).size(), 0u);
}

TEST(WebhooksReceiver, AReceiverAnswering500ForAWhileGetsTheEventsLater) {
    WebhookReceiver receiver(kSecret);
    receiver.respondWith([](std::size_t index) { return WebhookAnswer{index < 3 ? 500u : 200u}; });
    DaemonProcess daemon(webhooksConfig(receiver));
    WsTestClient client;
    ASSERT_TRUE(client.connectWith(daemon.port(), json{{"user", "gina"}}));
    ASSERT_TRUE(eventually([&] { return receiver.requestCount() >= 4; }, 15000ms)) << "retried until answered";
    auto requests = receiver.requests();
    for (const auto& request : requests) EXPECT_TRUE(request.signatureValid);
    EXPECT_EQ(requests[0].body.find("user_online") != std::string::npos, true);
    EXPECT_EQ(json::parse(requests[0].body)["events"][0]["id"], json::parse(requests[3].body)["events"][0]["id"])
        << "the same event again, so the receiver can deduplicate";

    // The receiver counts a request when it arrives; the daemon counts the event sent only once it has
    // read the 200, a moment later.
    std::string metrics;
    EXPECT_TRUE(eventually(
        [&] {
            metrics = httpGet(daemon.apiPort(), "/metrics").body;
            return metrics.find("wspush_webhook_events_sent_total 1") != std::string::npos;
        },
        5000ms))
        << metrics;
    EXPECT_NE(metrics.find("wspush_webhook_requests_failed_total 3"), std::string::npos) << metrics;
    EXPECT_NE(metrics.find("wspush_webhook_events_made_total 1"), std::string::npos) << metrics;
}

// Several nodes on one Redis: the same endpoint configured on each.
json clusterNode(const std::string& name, const RedisServerProcess& redis, const WebhookReceiver& receiver) {
    json config = webhooksConfig(receiver);
    config.merge_patch(json{
        {"node_name", name},
        {"engine", "redis"},
        {"presence_ttl", 3},
        {"redis",
         {{"prefix", "whtest"}, {"addresses", {redis.address()}}, {"connect_timeout", 1}, {"command_timeout", 1}}}});
    return config;
}

void expectEachIdOnce(const std::vector<json>& events) {
    std::map<std::string, int> seen;
    for (const json& event : events) ++seen[event.value("id", "")];
    for (const auto& [id, count] : seen) EXPECT_EQ(count, 1) << "event " << id << " sent " << count << " times";
}

TEST(WebhooksAcrossNodes, EachTransitionIsSentOnceByOneNode) {
    RedisServerProcess redis;
    WebhookReceiver receiver(kSecret);
    DaemonProcess first(clusterNode("n1", redis, receiver)), second(clusterNode("n2", redis, receiver));
    for (auto* node : {&first, &second})
        ASSERT_TRUE(eventually([&] { return httpGet(node->apiPort(), "/readyz").status == 200; }, 5000ms));

    auto count = [&](const std::string& name, const std::string& user) {
        return named(eventsOf(receiver), name, [&](auto& e) { return ofUser(e, user); }).size();
    };
    // Online on n1, then a second connection on n2: one user_online.
    WsTestClient onFirst, onSecond;
    ASSERT_TRUE(onFirst.connectWith(first.port(), json{{"user", "hana"}}));
    ASSERT_TRUE(eventually([&] { return count("user_online", "hana") >= 1; }, 5000ms));
    ASSERT_TRUE(onSecond.connectWith(second.port(), json{{"user", "hana"}}));
    // A reload that moves to the other node within the grace: nothing.
    onFirst.close();
    WsTestClient moved;
    ASSERT_TRUE(moved.connectWith(second.port(), json{{"user", "hana"}}));
    std::this_thread::sleep_for(2500ms);
    EXPECT_EQ(count("user_online", "hana"), 1u);
    EXPECT_EQ(count("user_offline", "hana"), 0u);
    onSecond.close();
    moved.close();
    ASSERT_TRUE(eventually([&] { return count("user_offline", "hana") >= 1; }, 5000ms));

    // A channel with members on both nodes: occupied once, vacated once.
    WsTestClient a, b;
    ASSERT_TRUE(a.connectWith(first.port(), json{{"user", "ivan"}}));
    ASSERT_TRUE(b.connectWith(second.port(), json{{"user", "jo"}}));
    ASSERT_TRUE(a.subscribe("room:both"));
    ASSERT_TRUE(b.subscribe("room:both"));
    // Presence changes reach Redis a moment after the `subscribed` reply (protocol.md, "Presence"):
    // a leave that Redis ran before the other member's join would make a second occupied/vacated.
    ASSERT_TRUE(eventually(
        [&] {
            json stats = httpGet(first.apiPort(), "/api/presence/stats?channel=room:both").json();
            return stats.is_object() && stats.value("clients", 0) == 2;
        },
        5000ms));
    a.close();
    b.close();
    ASSERT_TRUE(eventually([&] { return named(eventsOf(receiver), "channel_vacated").size() >= 1; }, 5000ms));
    std::this_thread::sleep_for(2000ms);  // anything sent twice would be here by now

    auto events = eventsOf(receiver);
    EXPECT_EQ(count("user_offline", "hana"), 1u);
    EXPECT_EQ(named(events, "channel_occupied").size(), 1u);
    EXPECT_EQ(named(events, "channel_vacated").size(), 1u);
    EXPECT_EQ(named(events, "member_added").size(), 2u);
    EXPECT_EQ(named(events, "member_removed").size(), 2u);
    expectEachIdOnce(events);
    std::set<std::string> nodes;
    for (const json& event : named(events, "member_added")) nodes.insert(event.value("node", ""));
    EXPECT_EQ(nodes, (std::set<std::string>{"n1", "n2"})) << "each event names the node of its connection";
}

TEST(WebhooksAcrossNodes, AKilledNodesMembersLeaveAndNoEventIsLost) {
    RedisServerProcess redis;
    WebhookReceiver receiver(kSecret);
    std::atomic<bool> answering{false};
    std::mutex mutex;
    std::set<std::size_t> answeredOk;
    receiver.respondWith([&](std::size_t index) {
        std::lock_guard lock(mutex);
        if (answering) answeredOk.insert(index);
        return WebhookAnswer{answering ? 200u : 503u};
    });
    auto delivered = [&] {
        return eventsOf(receiver, [&](std::size_t index) {
            std::lock_guard lock(mutex);
            return answeredOk.count(index) > 0;
        });
    };
    // n1 alone makes the events and reads them, while the receiver fails: they are n1's to send.
    DaemonProcess doomed(clusterNode("n1", redis, receiver));
    ASSERT_TRUE(eventually([&] { return httpGet(doomed.apiPort(), "/readyz").status == 200; }, 5000ms));
    WsTestClient client;
    ASSERT_TRUE(client.connectWith(doomed.port(), json{{"user", "kim"}, {"device", "phone"}}));
    ASSERT_TRUE(client.subscribe("room:k"));
    ASSERT_TRUE(eventually([&] { return receiver.requestCount() >= 2; }, 10000ms)) << "attempts were made";
    DaemonProcess survivor(clusterNode("n2", redis, receiver));
    ASSERT_TRUE(eventually([&] { return httpGet(survivor.apiPort(), "/readyz").status == 200; }, 5000ms));
    doomed.terminate(SIGKILL);
    ASSERT_TRUE(doomed.waitExit(5000ms));
    client.drop();
    answering = true;

    // n1's entries expire within presence_ttl (3 s), n2's sweep reports them and, a grace (1 s)
    // later, kim offline; the events n1 had read are n2's once n1's heartbeat expired (15 s).
    auto has = [&](const std::string& name) { return !named(delivered(), name).empty(); };
    ASSERT_TRUE(eventually(
        [&] {
            return has("user_online") && has("member_added") && has("channel_occupied") && has("member_removed") &&
                   has("channel_vacated") && has("user_offline");
        },
        40000ms))
        << "events: " << json(delivered()).dump();
    auto events = delivered();
    for (const char* name : {"user_online", "member_added", "channel_occupied"})
        EXPECT_EQ(named(events, name).back().value("node", ""), "n1") << name;
    auto removed = named(events, "member_removed");
    EXPECT_EQ(removed[0].value("reason", ""), "expired");
    EXPECT_EQ(removed[0].value("node", ""), "n1");
    EXPECT_EQ(named(events, "user_offline")[0].value("reason", ""), "expired");
    EXPECT_EQ(named(events, "user_offline")[0].value("device", ""), "phone");
}

}  // namespace
}  // namespace wspush::testing
