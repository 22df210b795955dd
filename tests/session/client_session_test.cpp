// ClientSession on event loops that are never started: each test runs the loops' handlers with
// poll() on this thread and moves a ManualClock, so resends, expiry and moves between loops are
// exercised in a fixed order, without sleeping.
#include "session/client_session.h"
#include "support/one_node_engine.h"

#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/memory/memory_broker.h"
#include "session/session_move.h"

namespace wspush {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

// Stands for the client's connection: records what it is sent, detaches when closed.
class RecordingConnection final : public SessionConnection {
public:
    explicit RecordingConnection(ClientSession& session) : session_(session) {}
    bool sendFrame(OutboundFrame frame) override {
        messages.push_back(json::parse(*frame.payload + std::string(frame.suffix.view())));
        return true;
    }
    void closeFor(const Disconnect& reason) override {
        closes.push_back(reason.code);
        session_.detach(this, false);
    }
    bool hasRoom() const override { return true; }
    void whenWritable(std::function<void()>) override {}

    std::vector<json> messages;
    std::vector<int> closes;

private:
    ClientSession& session_;
};

Config testConfig() {
    Config config;
    config.qos.ack_timeout = Seconds{10};
    config.qos.max_redeliveries = 2;
    config.sessions.ttl = Seconds{120};
    return config;
}

class ClientSessionTest : public ::testing::Test {
protected:
    ClientSessionTest()
        : node(
              testConfig(), "n",
              testing::oneNodeEngine(std::make_unique<MemoryBroker>("m", [this] { return clock.unixMillis(); }), clock),
              clock),
          loops(2) {
        node.attach(loops);
    }
    ~ClientSessionTest() override {
        for (auto& session : sessions) session->end();
        node.sessions().clear();
        poll(0);
        poll(1);
    }

    std::shared_ptr<ClientSession> newSession(unsigned loop) {
        auto session =
            std::make_shared<ClientSession>(node, loops.at(loop), "s" + std::to_string(sessions.size()), "token", "");
        node.sessions().add(session->id(), session->resumeToken(), session, loop);
        sessions.push_back(session);
        return session;
    }
    void poll(unsigned loop) {
        loops.at(loop).context().poll();
        loops.at(loop).context().restart();
    }
    void publish(const std::string& channel, int qos) {
        node.publish(PublishRequest{channel, "1", qos},
                     [](PublishResult result) { ASSERT_TRUE(std::holds_alternative<Published>(result)); });
    }
    static std::vector<json> ofType(const std::vector<json>& messages, const std::string& type) {
        std::vector<json> out;
        for (const auto& m : messages)
            if (m.value("type", "") == type) out.push_back(m);
        return out;
    }

    ManualClock clock;
    Node node;
    EventLoopPool loops;  // declared after the node: destroyed first, with the handlers they hold
    std::vector<std::shared_ptr<ClientSession>> sessions;
};

TEST_F(ClientSessionTest, AnUnacknowledgedDeliveryIsResentWhenDueAndTheConnectionClosedWhenItNeverIs) {
    auto session = newSession(0);
    RecordingConnection connection(*session);
    session->attach(&connection);
    session->subscribe("c", std::nullopt, [](const auto&) {});
    poll(0);
    publish("c", 1);
    poll(0);
    ASSERT_EQ(ofType(connection.messages, "message").size(), 1u);
    EXPECT_FALSE(connection.messages.back().contains("dup"));

    session->checkDeadlines();
    EXPECT_EQ(ofType(connection.messages, "message").size(), 1u) << "not due yet";
    clock.advance(9s);
    session->checkDeadlines();
    EXPECT_EQ(ofType(connection.messages, "message").size(), 1u) << "not due yet";
    clock.advance(1s);
    session->checkDeadlines();
    auto messages = ofType(connection.messages, "message");
    ASSERT_EQ(messages.size(), 2u) << "resent after qos.ack_timeout";
    EXPECT_EQ(messages[1].value("dup", false), true);
    EXPECT_EQ(messages[1]["did"], messages[0]["did"]);

    clock.advance(60s);
    session->checkDeadlines();
    EXPECT_EQ(ofType(connection.messages, "message").size(), 3u) << "the second and last resend";
    EXPECT_TRUE(connection.closes.empty());
    clock.advance(60s);
    session->checkDeadlines();
    EXPECT_EQ(connection.closes, std::vector<int>{disconnects::kUnhealthy.code}) << "past qos.max_redeliveries";
    EXPECT_EQ(session->connection(), nullptr);
}

TEST_F(ClientSessionTest, ADetachedSessionWaitsItsTtlThenEnds) {
    auto session = newSession(0);
    RecordingConnection connection(*session);
    session->attach(&connection);
    session->detach(&connection, false);
    clock.advance(119s);
    session->checkDeadlines();
    EXPECT_FALSE(session->ended());
    EXPECT_EQ(node.sessions().size(), 1u);
    clock.advance(1s);
    session->checkDeadlines();
    EXPECT_TRUE(session->ended());
    EXPECT_EQ(node.sessions().size(), 0u);
}

TEST_F(ClientSessionTest, ASessionResumedInTimeDoesNotEnd) {
    auto session = newSession(0);
    RecordingConnection first(*session), second(*session);
    session->attach(&first);
    session->detach(&first, false);
    clock.advance(100s);
    session->attach(&second);
    clock.advance(100s);
    session->checkDeadlines();
    EXPECT_FALSE(session->ended());
}

// Publications arrive between every hop of a move from loop 0 to loop 1. The session must get
// each of them exactly once: one delivery id per offset, none missing.
TEST_F(ClientSessionTest, MovingBetweenLoopsLosesNothingAndRepeatsNothing) {
    auto session = newSession(0);
    RecordingConnection before(*session);
    session->attach(&before);
    session->subscribe("c", std::nullopt, [](const auto&) {});
    poll(0);
    publish("c", 1);  // 1: delivered on loop 0
    poll(0);

    std::shared_ptr<ClientSession> arrived;
    ASSERT_TRUE(node.sessions().claim(session->id(), "token"));
    moveSession(node, session, loops.at(0), loops.at(1), [&](std::shared_ptr<ClientSession> s) { arrived = s; });
    publish("c", 1);  // 2: loop 0 only
    poll(0);          // hop 1 (the old connection is dropped), then 2
    publish("c", 1);  // 3: loop 0 only
    poll(1);          // hop 2: loop 1's entry buffers from now on
    publish("c", 1);  // 4: both loops
    poll(0);          // 3 and 4 on loop 0, then hop 3: the position there is 4
    publish("c", 1);  // 5: loop 1 only
    poll(1);          // 4 and 5 buffered on loop 1, then hop 4 delivers 5 alone
    ASSERT_EQ(arrived, session);
    EXPECT_EQ(before.closes, std::vector<int>{disconnects::kTakenOver.code});
    publish("c", 1);  // 6: live on loop 1
    poll(1);

    RecordingConnection after(*session);
    session->attach(&after);  // resends the unfinished ones (dup), sends the waiting ones
    std::map<std::uint64_t, std::set<std::uint64_t>> didsByOffset;
    for (const auto* connection : {&before, &after})
        for (const auto& m : ofType(connection->messages, "message"))
            didsByOffset[m.value("offset", 0u)].insert(m.value("did", 0u));
    ASSERT_EQ(didsByOffset.size(), 6u);
    for (std::uint64_t offset = 1; offset <= 6; ++offset)
        EXPECT_EQ(didsByOffset[offset].size(), 1u) << "offset " << offset << " delivered once, perhaps resent";
    for (const auto& m : ofType(after.messages, "message")) EXPECT_EQ(m.value("epoch", ""), after.messages[0]["epoch"]);
}

}  // namespace
}  // namespace wspush
