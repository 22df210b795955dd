// QoS 1/2 delivery and sessions through the real daemon (docs/protocol.md, "Sessions" and "QoS"):
// acks, resends with backoff, the unhealthy close, the QoS 2 rec/rel/comp exchange and its
// violations, resuming (subscriptions, unfinished deliveries, what arrived meanwhile), expiry,
// takeover, goodbye, and resumes that move the session between event loops.
//
// Publications get their QoS from their namespace ("q1" defaults to 1, "q2" to 2) unless a test
// names one in the HTTP body; channels of the default namespace ("news") are QoS 0.
#include <array>
#include <atomic>
#include <latch>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "support/qos_client.h"
#include "support/test_helpers.h"

namespace wspush::testing {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

json qosConfig(const json& extra = json::object()) {
    json config{{"namespaces",
                 {{"q1", {{"default_qos", 1}, {"client_publish", true}}},
                  {"q2", {{"default_qos", 2}, {"client_publish", true}}}}}};
    config.merge_patch(extra);
    return config;
}

long long millisBetween(Clock::time_point from, Clock::time_point to) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count();
}

// POST /api/publish; the body names a qos only when given. Returns the response body.
json publish(HttpTestClient& api, const std::string& channel, const json& data, std::optional<int> qos = std::nullopt) {
    json body{{"channel", channel}, {"data", data}};
    if (qos) body["qos"] = *qos;
    HttpResult result = api.postJson("/api/publish", body);
    EXPECT_EQ(result.status, 200u) << body.dump() << " → " << result.body << result.error;
    return result.json();
}

bool isMessage(const json& m) {
    return typeOf(m) == "message";
}

std::function<bool(const json&)> messageAt(const std::string& channel, std::uint64_t offset) {
    return [=](const json& m) {
        return typeOf(m) == "message" && m.value("channel", "") == channel &&
               m.value("offset", std::uint64_t{0}) == offset;
    };
}

std::function<bool(const json&)> relFor(std::uint64_t did) {
    return [=](const json& m) { return typeOf(m) == "rel" && m.value("did", std::uint64_t{0}) == did; };
}

std::uint64_t didOf(const json& m) {
    return m.value("did", std::uint64_t{0});
}

json resumeFields(const json& connected) {
    return json{{"session", connected.value("session", "")}, {"resume", connected.value("resume", "")}};
}

// Every message that arrives within `duration` (the connection must stay open).
std::vector<json> drain(WsTestClient& client, Millis duration) {
    std::vector<json> messages;
    auto deadline = Clock::now() + duration;
    while (true) {
        auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
        if (left <= 0ms) break;
        auto message = client.nextMessage(left);
        if (message)
            messages.push_back(*message);
        else if (!client.isOpen())
            break;
    }
    return messages;
}

std::string dumpAll(const std::vector<json>& messages) {
    std::string text;
    for (const auto& m : messages) text += m.dump() + "\n";
    return text.empty() ? "(nothing)" : text;
}

// ---------------------------------------------------------------------------------------------
// A. QoS 1: ack, resends with backoff, unhealthy

TEST(QosSession, Qos1MessageCarriesQosAndDidAndAnAckStopsResends) {
    DaemonProcess daemon(qosConfig({{"qos", {{"ack_timeout", 0.2}, {"max_redeliveries", 2}}}}));
    WsTestClient client;
    ASSERT_TRUE(client.connectProtocol(daemon.port())) << client.lastError();
    ASSERT_TRUE(subscribeOk(client, "q1:x"));
    HttpTestClient api(daemon.apiPort());

    json published = publish(api, "q1:x", {{"n", 1}});
    auto message = client.waitFor(isMessage);
    ASSERT_TRUE(message) << client.lastError();
    EXPECT_EQ(message->value("qos", 0), 1) << message->dump();
    ASSERT_TRUE(message->contains("did") && (*message)["did"].is_number_unsigned()) << message->dump();
    EXPECT_GT(didOf(*message), 0u);
    EXPECT_FALSE(message->value("dup", false)) << "a first send is not a dup";
    EXPECT_EQ(message->value("mid", ""), published.value("mid", "?"));
    ASSERT_TRUE(client.sendJson({{"type", "ack"}, {"did", didOf(*message)}}));

    // ack_timeout is 0.2 s and the backoff would resend at +0.2, +0.6 s and close at +1.4 s:
    // an acknowledged delivery is never seen again.
    std::vector<json> after = drain(client, 1000ms);
    EXPECT_TRUE(after.empty()) << dumpAll(after);
    EXPECT_TRUE(client.isOpen());

    // Acked after its first resend: no further resend.
    publish(api, "q1:x", {{"n", 2}});
    auto second = client.waitFor(isMessage);
    ASSERT_TRUE(second);
    auto resent = client.waitFor(isMessage, 1000ms);
    ASSERT_TRUE(resent) << "no resend after ack_timeout";
    EXPECT_EQ(didOf(*resent), didOf(*second));
    EXPECT_TRUE(resent->value("dup", false)) << resent->dump();
    ASSERT_TRUE(client.sendJson({{"type", "ack"}, {"did", didOf(*resent)}}));
    after = drain(client, 1200ms);
    EXPECT_TRUE(after.empty()) << dumpAll(after);
    EXPECT_TRUE(client.isOpen());
    EXPECT_EQ(readMetric(daemon.apiPort(), "wspush_unhealthy_closes_total"), 0);
}

TEST(QosSession, Qos1WithheldAckIsResentWithDupAndBackoffThenTheConnectionIs4005) {
    DaemonProcess daemon(qosConfig({{"qos", {{"ack_timeout", 0.2}, {"max_redeliveries", 2}}}}));
    WsTestClient client;
    auto connected = client.connectProtocol(daemon.port());
    ASSERT_TRUE(connected) << client.lastError();
    ASSERT_TRUE(subscribeOk(client, "q1:x"));
    HttpTestClient api(daemon.apiPort());

    // An acknowledged delivery first, whose did must never come back.
    publish(api, "q1:x", {{"n", 1}});
    auto acked = client.waitFor(isMessage);
    ASSERT_TRUE(acked);
    ASSERT_TRUE(client.sendJson({{"type", "ack"}, {"did", didOf(*acked)}}));

    publish(api, "q1:x", {{"n", 2}});
    auto first = client.waitFor(isMessage);
    ASSERT_TRUE(first);
    auto t0 = Clock::now();
    ASSERT_EQ(first->value("offset", 0), 2);
    std::uint64_t did = didOf(*first);
    EXPECT_GT(did, didOf(*acked)) << "dids increase per session";

    auto resend1 = client.waitFor(isMessage, 2000ms);
    auto t1 = Clock::now();
    ASSERT_TRUE(resend1) << "no first resend";
    auto resend2 = client.waitFor(isMessage, 3000ms);
    auto t2 = Clock::now();
    ASSERT_TRUE(resend2) << "no second resend";
    for (const auto* resend : {&*resend1, &*resend2}) {
        EXPECT_EQ(didOf(*resend), did) << resend->dump();
        EXPECT_TRUE(resend->value("dup", false)) << resend->dump();
        EXPECT_EQ(resend->value("offset", 0), 2);
        EXPECT_EQ(resend->value("mid", ""), first->value("mid", "?"));
        EXPECT_EQ(resend->value("qos", 0), 1);
        EXPECT_EQ(resend->value("data", json()), first->value("data", json{}));
    }
    long long interval1 = millisBetween(t0, t1), interval2 = millisBetween(t1, t2);
    std::cout << "resend intervals: " << interval1 << " ms, " << interval2 << " ms\n";
    EXPECT_GE(interval1, 150) << "resent before ack_timeout (0.2 s)";
    EXPECT_LE(interval1, 700);
    EXPECT_GE(interval2, 300) << "the second resend must come about twice as late (0.4 s)";
    EXPECT_LE(interval2, 1100);
    EXPECT_GE(static_cast<double>(interval2), 1.4 * static_cast<double>(interval1)) << "no backoff";

    // max_redeliveries (2) used up: the next due time (0.8 s later) closes the connection with 4005.
    auto ending = client.waitClose(4000ms);
    auto t3 = Clock::now();
    ASSERT_TRUE(ending) << "still open after max_redeliveries";
    EXPECT_GE(millisBetween(t2, t3), 500) << "closed before the third due time";
    for (const auto& m : ending->messages)
        EXPECT_NE(didOf(m), didOf(*acked)) << "an acked delivery came back: " << m.dump();
    EXPECT_TRUE(ending->closeCode == 4005 || ending->closeCode == kAbnormalClosure) << ending->closeCode;
    if (ending->closeCode == 4005) {
        ASSERT_FALSE(ending->messages.empty());
        EXPECT_EQ(ending->messages.back(),
                  (json{{"type", "disconnect"}, {"code", 4005}, {"reason", "unhealthy"}, {"reconnect", true}}));
    }
    EXPECT_TRUE(eventually([&] { return readMetric(daemon.apiPort(), "wspush_unhealthy_closes_total") >= 1; }));

    // "The session keeps the delivery and resends it on resume."
    WsTestClient again;
    auto resumed = again.connectWith(daemon.port(), resumeFields(*connected));
    ASSERT_TRUE(resumed) << again.lastError();
    EXPECT_TRUE(resumed->value("resumed", false)) << resumed->dump();
    auto kept = again.waitFor(isMessage);
    ASSERT_TRUE(kept) << "the unfinished delivery was not resent on resume";
    EXPECT_EQ(didOf(*kept), did);
    EXPECT_TRUE(kept->value("dup", false));
    ASSERT_TRUE(again.sendJson({{"type", "ack"}, {"did", did}}));
    std::vector<json> after = drain(again, 800ms);
    EXPECT_TRUE(after.empty()) << dumpAll(after);
}

// ---------------------------------------------------------------------------------------------
// A. QoS 2: rec / rel / comp and the table of unexpected input

TEST(QosSession, Qos2RecRelCompAndAnswersThatDoNotFitAreError113) {
    DaemonProcess daemon(qosConfig({{"qos", {{"ack_timeout", 0.3}, {"max_redeliveries", 10}}}}));
    WsTestClient client;
    ASSERT_TRUE(client.connectProtocol(daemon.port())) << client.lastError();
    ASSERT_TRUE(subscribeOk(client, "q2:x"));
    ASSERT_TRUE(subscribeOk(client, "q1:x"));
    HttpTestClient api(daemon.apiPort());
    auto expectQos113 = [&](const json& command, const std::string& what) {
        auto reply = client.request(command);
        ASSERT_TRUE(reply) << what << ": no reply";
        EXPECT_EQ(errorCodeOf(reply), 113) << what << ": " << reply->dump();
    };

    // The flow: message(qos 2) → rec → rel → (rec again → rel again) → comp → done.
    publish(api, "q2:x", {{"n", 1}});
    auto message = client.waitFor(messageAt("q2:x", 1));
    ASSERT_TRUE(message);
    EXPECT_EQ(message->value("qos", 0), 2) << message->dump();
    std::uint64_t d1 = didOf(*message);
    ASSERT_GT(d1, 0u) << message->dump();
    ASSERT_TRUE(client.sendJson({{"type", "rec"}, {"did", d1}}));
    auto rel = client.waitFor(relFor(d1));
    ASSERT_TRUE(rel) << "no rel for rec";
    EXPECT_EQ(*rel, (json{{"type", "rel"}, {"did", d1}}));
    ASSERT_TRUE(client.sendJson({{"type", "rec"}, {"did", d1}}));
    ASSERT_TRUE(client.waitFor(relFor(d1))) << "a repeated rec (our rel was lost) gets rel again";
    ASSERT_TRUE(client.sendJson({{"type", "comp"}, {"did", d1}}));

    // comp before rec: 113, nothing changes — the delivery still takes its rec.
    publish(api, "q2:x", {{"n", 2}});
    message = client.waitFor(messageAt("q2:x", 2));
    ASSERT_TRUE(message);
    std::uint64_t d2 = didOf(*message);
    expectQos113({{"type", "comp"}, {"did", d2}, {"id", 7}}, "comp before rec");
    // ack on a QoS 2 delivery: 113.
    expectQos113({{"type", "ack"}, {"did", d2}, {"id", 8}}, "ack on QoS 2 (AwaitingRec)");
    ASSERT_TRUE(client.sendJson({{"type", "rec"}, {"did", d2}}));
    ASSERT_TRUE(client.waitFor(relFor(d2))) << "rec after the refused comp/ack";
    expectQos113({{"type", "ack"}, {"did", d2}, {"id", 9}}, "ack on QoS 2 (AwaitingComp)");
    ASSERT_TRUE(client.sendJson({{"type", "comp"}, {"did", d2}}));

    // rec (and comp) on a QoS 1 delivery: 113; the ack still finishes it.
    publish(api, "q1:x", {{"n", 1}});
    message = client.waitFor(messageAt("q1:x", 1));
    ASSERT_TRUE(message);
    EXPECT_EQ(message->value("qos", 0), 1);
    std::uint64_t d3 = didOf(*message);
    expectQos113({{"type", "rec"}, {"did", d3}, {"id", 10}}, "rec on QoS 1");
    expectQos113({{"type", "comp"}, {"did", d3}, {"id", 11}}, "comp on QoS 1");
    ASSERT_TRUE(client.sendJson({{"type", "ack"}, {"did", d3}}));

    // Unknown or finished dids: no reply at all, and the connection stays usable.
    for (const json& late :
         {json{{"type", "ack"}, {"did", 999999}, {"id", 20}}, json{{"type", "rec"}, {"did", 999999}, {"id", 21}},
          json{{"type", "comp"}, {"did", 999999}, {"id", 22}}, json{{"type", "ack"}, {"did", d3}, {"id", 23}},
          json{{"type", "rec"}, {"did", d1}, {"id", 24}}, json{{"type", "comp"}, {"did", d2}, {"id", 25}}}) {
        ASSERT_TRUE(client.sendJson(late));
        auto reply = client.nextMessage(200ms);
        EXPECT_FALSE(reply) << late.dump() << " got " << reply->dump();
    }
    auto pong = client.request({{"type", "ping"}});
    ASSERT_TRUE(pong) << client.lastError();
    EXPECT_EQ(typeOf(*pong), "pong");

    // Everything finished: no resend of any message or rel (ack_timeout is 0.3 s).
    std::vector<json> after = drain(client, 1000ms);
    EXPECT_TRUE(after.empty()) << dumpAll(after);
    EXPECT_EQ(readMetric(daemon.apiPort(), "wspush_qos_redeliveries_total"), 0);
}

// ---------------------------------------------------------------------------------------------
// A. Sessions: resume, wrong token, ttl

TEST(QosSession, ConnectedNamesTheSessionAndAResumeBringsTheSubscriptionsBack) {
    DaemonProcess daemon(qosConfig());
    WsTestClient first;
    auto connected = first.connectProtocol(daemon.port());
    ASSERT_TRUE(connected) << first.lastError();
    ASSERT_TRUE(connected->contains("session") && (*connected)["session"].is_string()) << connected->dump();
    ASSERT_TRUE(connected->contains("resume") && (*connected)["resume"].is_string()) << connected->dump();
    ASSERT_TRUE(connected->contains("resumed")) << connected->dump();
    EXPECT_EQ((*connected)["resumed"], false);
    std::string session = (*connected)["session"];
    EXPECT_FALSE(session.empty());
    EXPECT_FALSE(connected->value("resume", "").empty());
    ASSERT_TRUE(subscribeOk(first, "news"));
    ASSERT_TRUE(subscribeOk(first, "q1:x"));
    first.drop();

    WsTestClient second;
    auto resumed = second.connectWith(daemon.port(), resumeFields(*connected));
    ASSERT_TRUE(resumed) << second.lastError();
    ASSERT_EQ(typeOf(*resumed), "connected") << resumed->dump();
    EXPECT_EQ(resumed->value("resumed", false), true) << resumed->dump();
    EXPECT_EQ(resumed->value("session", ""), session);
    EXPECT_FALSE(resumed->value("resume", "").empty());
    EXPECT_NE(resumed->value("client", ""), connected->value("client", "")) << "a new connection id";

    // The subscriptions are back without subscribing again.
    HttpTestClient api(daemon.apiPort());
    publish(api, "news", {{"n", 1}});
    publish(api, "q1:x", {{"n", 1}});
    auto news = second.waitFor(messageAt("news", 1));
    ASSERT_TRUE(news) << "a QoS 0 publication after the resume did not arrive";
    EXPECT_FALSE(news->contains("qos"));
    auto q1 = second.waitFor(messageAt("q1:x", 1));
    ASSERT_TRUE(q1) << "a QoS 1 publication after the resume did not arrive";
    EXPECT_EQ(q1->value("qos", 0), 1);
    ASSERT_TRUE(second.sendJson({{"type", "ack"}, {"did", didOf(*q1)}}));
    EXPECT_EQ(errorCodeOf(second.subscribe("news")), 105) << "the session is subscribed already";
    EXPECT_GE(readMetric(daemon.apiPort(), "wspush_sessions_resumed_total"), 1);

    // The resumed session can be resumed again (its token still works).
    second.drop();
    WsTestClient third;
    auto again = third.connectWith(daemon.port(), resumeFields(*resumed));
    ASSERT_TRUE(again);
    EXPECT_TRUE(again->value("resumed", false)) << again->dump();
    EXPECT_EQ(again->value("session", ""), session);
}

TEST(QosSession, AWrongResumeTokenOrUnknownSessionStartsANewSessionAndLeavesTheOldOneAlone) {
    DaemonProcess daemon(qosConfig());
    WsTestClient owner;
    auto connected = owner.connectProtocol(daemon.port());
    ASSERT_TRUE(connected) << owner.lastError();
    std::string session = connected->value("session", "");
    ASSERT_TRUE(subscribeOk(owner, "news"));

    WsTestClient intruder;
    std::string wrongToken(connected->value("resume", "").size(), '0');
    auto reply = intruder.connectWith(daemon.port(), {{"session", session}, {"resume", wrongToken}});
    ASSERT_TRUE(reply) << intruder.lastError();
    ASSERT_EQ(typeOf(*reply), "connected") << reply->dump();
    EXPECT_EQ(reply->value("resumed", true), false) << reply->dump();
    EXPECT_NE(reply->value("session", session), session) << "a new session";
    EXPECT_TRUE(subscribeOk(intruder, "news")) << "a new session is empty: subscribing is no error";

    WsTestClient stranger;
    auto unknown =
        stranger.connectWith(daemon.port(), {{"session", "00000000000000000000000000000000"}, {"resume", wrongToken}});
    ASSERT_TRUE(unknown);
    EXPECT_EQ(unknown->value("resumed", true), false) << unknown->dump();

    // The owner kept its connection and its session.
    auto pong = owner.request({{"type", "ping"}});
    ASSERT_TRUE(pong) << "the owner lost its connection: " << owner.lastError();
    EXPECT_EQ(typeOf(*pong), "pong");
    HttpTestClient api(daemon.apiPort());
    publish(api, "news", {{"n", 1}});
    EXPECT_TRUE(owner.waitFor(messageAt("news", 1)));
    EXPECT_TRUE(intruder.waitFor(messageAt("news", 1)));
    owner.drop();
    WsTestClient back;
    auto resumed = back.connectWith(daemon.port(), resumeFields(*connected));
    ASSERT_TRUE(resumed);
    EXPECT_TRUE(resumed->value("resumed", false))
        << "the failed attempts must not spoil the session: " << resumed->dump();
}

TEST(QosSession, ASessionIsGoneAfterTheTtl) {
    DaemonProcess daemon(qosConfig({{"sessions", {{"ttl", 0.5}}}}));
    WsTestClient first;
    auto connected = first.connectProtocol(daemon.port());
    ASSERT_TRUE(connected) << first.lastError();
    std::string session = connected->value("session", "");
    ASSERT_TRUE(subscribeOk(first, "news"));
    first.drop();

    // Within the ttl it resumes.
    WsTestClient quick;
    auto resumed = quick.connectWith(daemon.port(), resumeFields(*connected));
    ASSERT_TRUE(resumed);
    EXPECT_TRUE(resumed->value("resumed", false)) << "resume within the ttl failed: " << resumed->dump();
    quick.drop();
    auto dropped = Clock::now();

    ASSERT_TRUE(eventually([&] { return readMetric(daemon.apiPort(), "wspush_sessions_ended_total") >= 1; }, 3000ms))
        << "the session did not end after its ttl";
    EXPECT_GE(millisBetween(dropped, Clock::now()), 400) << "the session ended well before its ttl (0.5 s)";
    WsTestClient late;
    auto expired = late.connectWith(daemon.port(), resumeFields(*connected));
    ASSERT_TRUE(expired) << late.lastError();
    ASSERT_EQ(typeOf(*expired), "connected") << expired->dump();
    EXPECT_EQ(expired->value("resumed", true), false) << expired->dump();
    EXPECT_NE(expired->value("session", session), session);
    EXPECT_TRUE(subscribeOk(late, "news")) << "an expired session's subscriptions are gone";
}

// ---------------------------------------------------------------------------------------------
// A. Resume with unfinished deliveries

TEST(QosSession, AResumeResendsUnackedQos1AndDeliversQos1ThatArrivedWhileAwayButNotQos0) {
    DaemonProcess daemon(qosConfig({{"qos", {{"ack_timeout", 30}}}}));
    WsTestClient first;
    auto connected = first.connectProtocol(daemon.port());
    ASSERT_TRUE(connected) << first.lastError();
    ASSERT_TRUE(subscribeOk(first, "q1:x"));
    ASSERT_TRUE(subscribeOk(first, "news"));
    HttpTestClient api(daemon.apiPort());

    constexpr int kUnacked = 5;
    std::vector<std::uint64_t> dids;
    for (int n = 1; n <= kUnacked; ++n) publish(api, "q1:x", {{"n", n}});
    for (int n = 1; n <= kUnacked; ++n) {
        auto message = first.waitFor(isMessage);
        ASSERT_TRUE(message) << "message " << n;
        ASSERT_EQ(message->value("offset", 0), n);
        EXPECT_FALSE(message->value("dup", false));
        dids.push_back(didOf(*message));
    }
    first.drop();  // RST, no close frame, nothing acked
    ASSERT_TRUE(eventually([&] { return httpGet(daemon.apiPort(), "/api/info").json().value("connections", -1) == 0; }))
        << "the daemon did not notice the dropped connection";

    // While away: three QoS 1 and two QoS 0 publications.
    for (int n = kUnacked + 1; n <= kUnacked + 3; ++n) publish(api, "q1:x", {{"n", n}});
    publish(api, "news", {{"n", 1}});
    publish(api, "news", {{"n", 2}});
    EXPECT_TRUE(eventually([&] { return readMetric(daemon.apiPort(), "wspush_qos0_dropped_away_total") == 2; }));

    WsTestClient second;
    auto resumed = second.connectWith(daemon.port(), resumeFields(*connected));
    ASSERT_TRUE(resumed) << second.lastError();
    ASSERT_TRUE(resumed->value("resumed", false)) << resumed->dump();
    std::vector<json> received;
    for (int i = 0; i < kUnacked + 3; ++i) {
        auto message = second.waitFor(isMessage);
        ASSERT_TRUE(message) << "only " << i << " messages after the resume:\n" << dumpAll(received);
        received.push_back(*message);
        ASSERT_TRUE(second.sendJson({{"type", "ack"}, {"did", didOf(*message)}}));
    }
    for (int i = 0; i < kUnacked + 3; ++i) {
        const json& m = received[i];
        EXPECT_EQ(m.value("channel", ""), "q1:x") << "QoS 0 publications of the time away are gone: " << m.dump();
        EXPECT_EQ(m.value("offset", 0), i + 1) << "in order, nothing lost: " << m.dump();
        EXPECT_EQ(m.value("qos", 0), 1);
        if (i < kUnacked) {
            EXPECT_TRUE(m.value("dup", false)) << "an unfinished delivery is resent with dup: " << m.dump();
            EXPECT_EQ(didOf(m), dids[i]) << "a resend keeps its did";
        } else {
            EXPECT_GT(didOf(m), dids.back()) << m.dump();
        }
    }
    std::vector<json> after = drain(second, 600ms);
    EXPECT_TRUE(after.empty()) << "nothing else (no QoS 0 of the time away, no resend of acked ones):\n"
                               << dumpAll(after);
}

// "TCP reset with 500 unacked QoS 1 messages → resume → all delivered, none lost": with a window
// that holds all 500, and with the default window of 64 (the rest waits in the session and follows
// as acks free the window).
class QosSessionManyUnacked : public ::testing::TestWithParam<int> {};

TEST_P(QosSessionManyUnacked, TcpResetWith500UnackedQos1ThenResumeDeliversAllNoneLost) {
    constexpr std::uint64_t kMessages = 500;
    const int maxInflight = GetParam();
    DaemonProcess daemon(qosConfig({{"qos", {{"ack_timeout", 30}, {"max_inflight", maxInflight}}}}));
    ResumingClient client;
    ASSERT_TRUE(client.connect(daemon.port())) << client.lastError();
    ASSERT_TRUE(client.subscribe({"q1:x"})) << client.lastError();
    client.app.answering = false;  // nothing is acked before the reset
    {
        HttpTestClient api(daemon.apiPort());
        for (std::uint64_t n = 1; n <= kMessages; ++n)
            ASSERT_EQ(api.postJson("/api/publish", {{"channel", "q1:x"}, {"data", {{"n", n}}}}).status, 200u);
    }
    const ChannelLog& log = client.app.channels["q1:x"];
    const std::uint64_t window = std::min<std::uint64_t>(kMessages, static_cast<std::uint64_t>(maxInflight));
    ASSERT_TRUE(client.pumpUntil([&] { return log.frames >= window; }, 10000ms))
        << "received " << log.frames << " of " << window << " before the reset";
    client.pump(300ms);
    EXPECT_EQ(log.frames, window) << "more unacked deliveries than max_inflight";
    EXPECT_EQ(log.delivered.size(), window);

    client.drop(/*reset=*/true);
    client.app.answering = true;
    auto resumed = client.connect(daemon.port());
    ASSERT_TRUE(resumed) << client.lastError();
    ASSERT_TRUE(resumed->value("resumed", false)) << resumed->dump();
    bool all = client.pumpUntil([&] { return log.hasAll(kMessages); }, 20000ms);
    ASSERT_TRUE(all) << log.delivered.size() << " of " << kMessages
                     << " offsets; first missing: " << ::testing::PrintToString(log.missing(kMessages));
    client.pump(300ms);  // the last acks go out; nothing more may come
    EXPECT_EQ(log.delivered.size(), kMessages);
    EXPECT_EQ(log.dupFrames, window) << "exactly the unacked window is resent";
    EXPECT_EQ(log.appDuplicates, window);
    EXPECT_EQ(log.frames, kMessages + window);
    EXPECT_EQ(log.unflaggedRepeats, 0u) << "a repeat without dup:true";
    EXPECT_EQ(log.wrongQos, 0u);
    for (std::uint64_t offset = 1; offset <= kMessages; ++offset)
        EXPECT_EQ(log.delivered.at(offset), offset <= window ? 2 : 1) << "offset " << offset;
    EXPECT_TRUE(client.app.errors.empty()) << client.app.errors.front().dump();
    EXPECT_TRUE(client.isOpen());
}

INSTANTIATE_TEST_SUITE_P(QosSession, QosSessionManyUnacked, ::testing::Values(1000, 64),
                         [](const auto& info) { return "MaxInflight" + std::to_string(info.param); });

// "QoS 2 exactly once across a disconnect after rec": the application sees each message once,
// whether the connection is lost before rec, after rec before rel, or after rel before comp.
TEST(QosSession, Qos2IsExactlyOnceForTheApplicationAcrossDisconnectsAroundRec) {
    DaemonProcess daemon(qosConfig({{"qos", {{"ack_timeout", 0.3}, {"max_redeliveries", 10}}}}));
    ResumingClient client;
    ASSERT_TRUE(client.connect(daemon.port())) << client.lastError();
    ASSERT_TRUE(client.subscribe({"q2:x"})) << client.lastError();
    HttpTestClient api(daemon.apiPort());
    WsTestClient& ws = client.ws();
    QosApp& app = client.app;
    const ChannelLog& log = app.channels["q2:x"];
    std::vector<json> answers;

    auto receive = [&](std::uint64_t offset) -> std::uint64_t {
        auto message = ws.waitFor(messageAt("q2:x", offset));
        EXPECT_TRUE(message) << "offset " << offset << " did not arrive";
        if (!message) return 0;
        EXPECT_EQ(message->value("qos", 0), 2);
        answers.clear();
        app.handle(*message, answers);  // handed to the application, rec prepared
        return didOf(*message);
    };
    auto resume = [&] {
        auto resumed = client.connect(daemon.port());
        EXPECT_TRUE(resumed) << client.lastError();
        EXPECT_TRUE(resumed && resumed->value("resumed", false)) << (resumed ? resumed->dump() : "");
    };
    auto settle = [&](std::uint64_t did) {
        // The exchange finishes, and afterwards nothing about it comes again (ack_timeout 0.3 s).
        EXPECT_TRUE(client.pumpUntil([&] { return !app.awaitingRel.contains(did); }, 3000ms)) << "no rel for " << did;
        std::uint64_t frames = log.frames, rels = app.rels;
        client.pump(900ms);
        EXPECT_EQ(log.frames, frames) << "the message came again after comp";
        EXPECT_EQ(app.rels, rels) << "the rel came again after comp";
    };

    // 1. Lost before rec: the message comes again with dup; the application does not get it twice.
    publish(api, "q2:x", {{"n", 1}});
    std::uint64_t d1 = receive(1);
    client.drop();
    resume();
    auto again = ws.waitFor(messageAt("q2:x", 1));
    ASSERT_TRUE(again) << "the message was not resent after the resume";
    EXPECT_EQ(didOf(*again), d1);
    EXPECT_TRUE(again->value("dup", false));
    answers.clear();
    app.handle(*again, answers);
    ASSERT_TRUE(ws.sendJson(answers.at(0)));
    settle(d1);

    // 2. Lost right after rec, rel not read: either rel comes again (the rec got through) or the
    //    message with dup (the rec was lost).
    publish(api, "q2:x", {{"n", 2}});
    std::uint64_t d2 = receive(2);
    ASSERT_TRUE(ws.sendJson(answers.at(0)));
    client.drop();
    resume();
    settle(d2);

    // 3. Lost after rel, before comp: the server sends rel again (never the message: the client has it).
    publish(api, "q2:x", {{"n", 3}});
    std::uint64_t d3 = receive(3);
    ASSERT_TRUE(ws.sendJson(answers.at(0)));
    auto rel = ws.waitFor(relFor(d3));
    ASSERT_TRUE(rel);
    answers.clear();
    app.handle(*rel, answers);  // the application forgets d3; the comp never leaves
    EXPECT_FALSE(app.awaitingRel.contains(d3));
    client.drop();
    std::uint64_t framesBefore = log.frames;
    resume();
    auto relAgain = ws.waitFor(relFor(d3));
    ASSERT_TRUE(relAgain) << "no rel again after the resume";
    EXPECT_EQ(log.frames, framesBefore);
    answers.clear();
    app.handle(*relAgain, answers);
    ASSERT_TRUE(ws.sendJson(answers.at(0)));  // comp
    client.pump(900ms);
    EXPECT_EQ(log.frames, framesBefore) << "the message was resent although its rec was answered";

    std::map<std::uint64_t, int> once{{1, 1}, {2, 1}, {3, 1}};
    EXPECT_EQ(log.delivered, once) << "each message exactly once at the application";
    EXPECT_EQ(log.appDuplicates, 0u);
    EXPECT_EQ(log.unflaggedRepeats, 0u);
    EXPECT_TRUE(app.awaitingRel.empty());
    EXPECT_TRUE(app.errors.empty()) << app.errors.front().dump();
    EXPECT_EQ(client.stats.resumed, 3u);
}

// ---------------------------------------------------------------------------------------------
// A. Takeover and goodbye

json takenOver() {
    return json{{"type", "disconnect"}, {"code", 4502}, {"reason", "session taken over"}, {"reconnect", false}};
}

::testing::AssertionResult wasTakenOver(WsTestClient& client) {
    auto ending = client.waitClose(3000ms);
    if (!ending) return ::testing::AssertionFailure() << "the older connection is still open";
    if (ending->closeCode != 4502) return ::testing::AssertionFailure() << "closed with " << ending->closeCode;
    if (ending->messages.empty() || ending->messages.back() != takenOver())
        return ::testing::AssertionFailure() << "no disconnect 4502 before the close: " << dumpAll(ending->messages);
    return ::testing::AssertionSuccess();
}

TEST(QosSession, AResumeTakesTheSessionOverFromTheConnectionStillHoldingIt) {
    DaemonProcess daemon(qosConfig());
    WsTestClient older;
    auto connected = older.connectProtocol(daemon.port());
    ASSERT_TRUE(connected) << older.lastError();
    ASSERT_TRUE(subscribeOk(older, "q1:x"));

    WsTestClient newer;
    auto resumed = newer.connectWith(daemon.port(), resumeFields(*connected));
    ASSERT_TRUE(resumed) << newer.lastError();
    EXPECT_TRUE(resumed->value("resumed", false)) << resumed->dump();
    EXPECT_EQ(resumed->value("session", ""), connected->value("session", "?"));
    EXPECT_TRUE(wasTakenOver(older));

    HttpTestClient api(daemon.apiPort());
    publish(api, "q1:x", {{"n", 1}});
    auto message = newer.waitFor(messageAt("q1:x", 1));
    ASSERT_TRUE(message) << "the new connection does not get the session's publications";
    ASSERT_TRUE(newer.sendJson({{"type", "ack"}, {"did", didOf(*message)}}));
    EXPECT_TRUE(newer.isOpen());

    // And once more, back to a third connection (the session moves between loops as well).
    WsTestClient third;
    auto again = third.connectWith(daemon.port(), resumeFields(*resumed));
    ASSERT_TRUE(again);
    EXPECT_TRUE(again->value("resumed", false)) << again->dump();
    EXPECT_TRUE(wasTakenOver(newer));
    publish(api, "q1:x", {{"n", 2}});
    EXPECT_TRUE(third.waitFor(messageAt("q1:x", 2)));
}

TEST(QosSession, ConcurrentResumesOfOneSessionAllResumeAndLeaveExactlyOneHolder) {
    DaemonProcess daemon(qosConfig({{"qos", {{"ack_timeout", 30}}}}));
    auto holder = std::make_unique<WsTestClient>();
    auto connected = holder->connectProtocol(daemon.port());
    ASSERT_TRUE(connected) << holder->lastError();
    ASSERT_TRUE(subscribeOk(*holder, "q1:x"));
    const std::string session = connected->value("session", "");
    const json fields = resumeFields(*connected);
    HttpTestClient api(daemon.apiPort());

    // Rounds of two connections sending their resume at the same moment (one per event loop,
    // most rounds: connections are assigned round robin), while a third holds the session.
    constexpr int kRounds = 10;
    int notResumed = 0;
    for (int round = 1; round <= kRounds; ++round) {
        std::array<std::unique_ptr<WsTestClient>, 2> rivals{std::make_unique<WsTestClient>(),
                                                            std::make_unique<WsTestClient>()};
        for (auto& rival : rivals) ASSERT_TRUE(rival->connect(daemon.port())) << rival->lastError();
        std::array<std::optional<json>, 2> replies;
        std::latch start(2);
        std::vector<std::thread> threads;
        for (int i = 0; i < 2; ++i) {
            threads.emplace_back([&, i] {
                json command = fields;
                command["type"] = "connect";
                start.arrive_and_wait();
                replies[i] = rivals[i]->request(command, 3000ms);
            });
        }
        for (auto& thread : threads) thread.join();

        std::vector<int> holders;
        for (int i = 0; i < 2; ++i) {
            ASSERT_TRUE(replies[i]) << "round " << round << ": no reply to the resume " << i;
            ASSERT_EQ(typeOf(*replies[i]), "connected") << replies[i]->dump();
            bool resumed = replies[i]->value("resumed", false);
            if (!resumed) ++notResumed;
            EXPECT_TRUE(resumed) << "round " << round
                                 << ": a concurrent resume with the right token got a new session: "
                                 << replies[i]->dump();
            if (resumed) {
                EXPECT_EQ(replies[i]->value("session", ""), session);
            }
        }
        EXPECT_TRUE(wasTakenOver(*holder)) << "round " << round << ": the holder before the round";
        // The one that resumed first was taken over by the other.
        for (int i = 0; i < 2; ++i)
            if (replies[i]->value("resumed", false) && rivals[i]->pumpFor(300ms)) holders.push_back(i);
        ASSERT_EQ(holders.size(), 1u) << "round " << round << ": connections holding the session: " << holders.size();
        int other = 1 - holders[0];
        if (replies[other]->value("resumed", false)) {
            EXPECT_TRUE(wasTakenOver(*rivals[other])) << "round " << round;
        }

        publish(api, "q1:x", {{"n", round}});
        auto message = rivals[holders[0]]->waitFor(messageAt("q1:x", static_cast<std::uint64_t>(round)));
        ASSERT_TRUE(message) << "round " << round << ": the holder does not get the session's publications";
        ASSERT_TRUE(rivals[holders[0]]->sendJson({{"type", "ack"}, {"did", didOf(*message)}}));
        holder = std::move(rivals[holders[0]]);
    }
    EXPECT_EQ(notResumed, 0);
}

TEST(QosSession, AClientCloseWith1000EndsTheSessionOtherClosesKeepIt) {
    DaemonProcess daemon(qosConfig());
    // 1001 (going away) is no goodbye: the session waits for the client.
    WsTestClient leaving;
    auto kept = leaving.connectProtocol(daemon.port());
    ASSERT_TRUE(kept) << leaving.lastError();
    ASSERT_TRUE(subscribeOk(leaving, "news"));
    leaving.closeWith(1001);
    WsTestClient back;
    auto resumed = back.connectWith(daemon.port(), resumeFields(*kept));
    ASSERT_TRUE(resumed) << back.lastError();
    EXPECT_TRUE(resumed->value("resumed", false)) << "a close with 1001 ended the session: " << resumed->dump();
    EXPECT_EQ(readMetric(daemon.apiPort(), "wspush_sessions_ended_total"), 0);

    // 1000 is the client's goodbye.
    back.close();
    ASSERT_TRUE(eventually([&] { return readMetric(daemon.apiPort(), "wspush_sessions_ended_total") == 1; }))
        << "a close with 1000 did not end the session";
    WsTestClient again;
    auto fresh = again.connectWith(daemon.port(), resumeFields(*kept));
    ASSERT_TRUE(fresh) << again.lastError();
    ASSERT_EQ(typeOf(*fresh), "connected") << fresh->dump();
    EXPECT_EQ(fresh->value("resumed", true), false) << fresh->dump();
    EXPECT_NE(fresh->value("session", ""), kept->value("session", "?"));
    EXPECT_TRUE(subscribeOk(again, "news")) << "the ended session's subscriptions are gone";
}

// ---------------------------------------------------------------------------------------------
// A. Resumes that move the session between event loops, under a steady stream of QoS 1

TEST(QosSession, RepeatedResumesAcrossEventLoopsUnderSteadyQos1PublishingLoseNothing) {
    // Two event loops (the base config) and round-robin assignment: consecutive connections of
    // the client land on alternate loops, so most resumes move the session.
    DaemonProcess daemon(qosConfig({{"qos", {{"ack_timeout", 0.5}, {"max_redeliveries", 20}}}}));
    ResumingClient client;
    ASSERT_TRUE(client.connect(daemon.port())) << client.lastError();
    ASSERT_TRUE(client.subscribe({"q1:x"})) << client.lastError();

    PacedPublisher publisher(
        daemon.apiPort(), {.channels = {"q1:x"}, .perChannel = 0, .perSecond = 250, .qos = {}, .keyPrefix = "cycles"});
    std::mt19937 random(7);
    std::uniform_int_distribution<int> stay(40, 160);
    std::uniform_int_distribution<int> away(5, 40);  // a reconnecting client backs off: publications arrive meanwhile
    constexpr int kCycles = 20;
    auto start = Clock::now();
    for (int cycle = 0; cycle < kCycles; ++cycle) {
        client.pump(Millis(stay(random)));
        switch (cycle % 3) {
            case 0: client.drop(/*reset=*/true); break;
            case 1: client.drop(/*reset=*/false); break;
            default: client.ws().closeWith(1001); break;  // a close that is no goodbye
        }
        std::this_thread::sleep_for(Millis(away(random)));
        auto resumed = client.connect(daemon.port());
        ASSERT_TRUE(resumed) << "cycle " << cycle << ": " << client.lastError();
        ASSERT_TRUE(resumed->value("resumed", false)) << "cycle " << cycle << ": " << resumed->dump();
    }
    client.pump(100ms);
    publisher.stop();
    const std::uint64_t last = publisher.published(0);
    const ChannelLog& log = client.app.channels["q1:x"];
    bool all = client.pumpUntil([&] { return log.hasAll(last); }, 10000ms);
    client.pump(200ms);
    std::cout << "resume cycles: " << kCycles << " resumes, elapsed " << millisBetween(start, Clock::now()) << " ms, "
              << last << " QoS 1 publications, " << log.frames << " frames, " << log.dupFrames << " dup frames, "
              << log.appDuplicates << " repeated offsets\n";
    EXPECT_TRUE(publisher.failures().empty()) << publisher.failures().front();
    EXPECT_GT(last, 100u) << "the publisher hardly ran";
    ASSERT_TRUE(all) << "lost offsets (first ones): " << ::testing::PrintToString(log.missing(last));
    EXPECT_EQ(log.unflaggedRepeats, 0u) << "an offset came twice without dup:true";
    EXPECT_EQ(log.wrongQos, 0u);
    EXPECT_EQ(log.qos.value_or(0), 1);
    EXPECT_EQ(log.delivered.rbegin()->first, last) << "an offset beyond what was published";
    EXPECT_EQ(client.stats.resumed, static_cast<std::uint64_t>(kCycles));
    EXPECT_EQ(client.stats.notResumed, 0u);
    EXPECT_TRUE(client.app.errors.empty()) << client.app.errors.front().dump();
}

TEST(QosSession, ResumesAcrossEventLoopsDuringAPublishingFloodLoseNothing) {
    // As above, but publications pour in on three channels without pause, so that some arrive
    // while the session is moving from one loop to the other (the migration buffer's moment).
    DaemonProcess daemon(qosConfig({{"qos", {{"ack_timeout", 1}, {"max_redeliveries", 20}, {"max_inflight", 512}}},
                                    {"sessions", {{"max_queued", 1000000}}}}));
    const std::vector<std::string> channels{"q1:a", "q1:b", "q1:c"};
    ResumingClient client;
    ASSERT_TRUE(client.connect(daemon.port())) << client.lastError();
    ASSERT_TRUE(client.subscribe(channels)) << client.lastError();

    std::vector<std::unique_ptr<PacedPublisher>> publishers;
    for (const auto& channel : channels)
        publishers.push_back(std::make_unique<PacedPublisher>(
            daemon.apiPort(),
            PacedPublisher::Plan{
                .channels = {channel}, .perChannel = 0, .perSecond = 1e6, .qos = {}, .keyPrefix = "flood"}));
    constexpr int kCycles = 20;
    auto start = Clock::now();
    for (int cycle = 0; cycle < kCycles; ++cycle) {
        client.pump(30ms);
        client.drop(/*reset=*/cycle % 2 == 0);
        auto resumed = client.connect(daemon.port());
        ASSERT_TRUE(resumed) << "cycle " << cycle << ": " << client.lastError();
        ASSERT_TRUE(resumed->value("resumed", false)) << "cycle " << cycle << ": " << resumed->dump();
    }
    for (auto& publisher : publishers) publisher->stop();
    std::vector<std::uint64_t> last;
    for (auto& publisher : publishers) last.push_back(publisher->published(0));
    auto logOf = [&](std::size_t i) -> const ChannelLog& { return client.app.channels[channels[i]]; };
    bool all = client.pumpUntil(
        [&] {
            for (std::size_t i = 0; i < channels.size(); ++i)
                if (!logOf(i).hasAll(last[i])) return false;
            return true;
        },
        20000ms);
    client.pump(200ms);
    for (std::size_t i = 0; i < channels.size(); ++i) {
        const ChannelLog& log = logOf(i);
        std::cout << "flood " << channels[i] << ": " << last[i] << " publications, " << log.frames << " frames, "
                  << log.dupFrames << " dup frames, " << log.appDuplicates << " repeated offsets\n";
        EXPECT_TRUE(publishers[i]->failures().empty()) << publishers[i]->failures().front();
        EXPECT_TRUE(log.hasAll(last[i])) << channels[i] << " lost offsets (first ones): "
                                         << ::testing::PrintToString(log.missing(last[i]));
        EXPECT_EQ(log.unflaggedRepeats, 0u) << channels[i] << ": an offset came twice without dup:true";
        EXPECT_EQ(log.wrongQos, 0u);
        if (!log.delivered.empty()) {
            EXPECT_EQ(log.delivered.rbegin()->first, last[i]) << "an offset beyond what was published";
        }
    }
    std::cout << "flood: " << kCycles << " resumes, elapsed " << millisBetween(start, Clock::now()) << " ms\n";
    EXPECT_TRUE(all);
    EXPECT_EQ(client.stats.notResumed, 0u);
    EXPECT_TRUE(client.app.errors.empty()) << client.app.errors.front().dump();
}

// ---------------------------------------------------------------------------------------------
// The HTTP API's "qos": it overrides the namespace default.

TEST(QosSession, HttpPublishTakesItsQosFromTheBodyOrElseTheNamespace) {
    DaemonProcess daemon(qosConfig({{"qos", {{"ack_timeout", 30}}}}));
    WsTestClient client;
    ASSERT_TRUE(client.connectProtocol(daemon.port())) << client.lastError();
    ASSERT_TRUE(subscribeOk(client, "news"));
    ASSERT_TRUE(subscribeOk(client, "q1:x"));
    HttpTestClient api(daemon.apiPort());
    struct Case {
        std::string channel;
        std::optional<int> qos;
        int expected;
    };
    const std::vector<Case> cases{{"news", std::nullopt, 0}, {"news", 1, 1}, {"news", 2, 2}, {"news", 0, 0},
                                  {"q1:x", std::nullopt, 1}, {"q1:x", 0, 0}, {"q1:x", 2, 2}};
    std::map<std::string, std::uint64_t> offsets;
    for (const auto& c : cases) {
        json published = publish(api, c.channel, {{"qos", c.qos ? *c.qos : -1}}, c.qos);
        std::uint64_t offset = ++offsets[c.channel];
        EXPECT_EQ(published.value("offset", std::uint64_t{0}), offset);
        auto message = client.waitFor(messageAt(c.channel, offset));
        ASSERT_TRUE(message) << c.channel << " #" << offset;
        EXPECT_EQ(message->value("qos", 0), c.expected) << message->dump();
        EXPECT_EQ(message->contains("did"), c.expected > 0) << message->dump();
        if (c.expected == 1) {
            ASSERT_TRUE(client.sendJson({{"type", "ack"}, {"did", didOf(*message)}}));
        }
        if (c.expected == 2) {
            ASSERT_TRUE(client.sendJson({{"type", "rec"}, {"did", didOf(*message)}}));
            ASSERT_TRUE(client.waitFor(relFor(didOf(*message))));
            ASSERT_TRUE(client.sendJson({{"type", "comp"}, {"did", didOf(*message)}}));
        }
    }
    for (const json& bad : {json(3), json("1"), json(-1), json(1.5)}) {
        HttpResult result = api.postJson("/api/publish", {{"channel", "q1:x"}, {"data", 1}, {"qos", bad}});
        EXPECT_EQ(result.status, 400u) << "qos " << bad.dump() << ": " << result.body;
    }
    std::vector<json> after = drain(client, 300ms);
    EXPECT_TRUE(after.empty()) << "refused publications were delivered:\n" << dumpAll(after);
}

}  // namespace
}  // namespace wspush::testing
