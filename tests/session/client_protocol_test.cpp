// ClientProtocol on an event loop that is never started (poll() runs it), against a fake
// clustered engine whose failures the test sets.
#include "session/client_protocol.h"
#include "support/one_node_engine.h"

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/fake_cluster_broker.h"

namespace wspush {
namespace {

using json = nlohmann::json;

class FakeClientConnection final : public ClientConnection, public std::enable_shared_from_this<FakeClientConnection> {
public:
    explicit FakeClientConnection(EventLoop& loop) : loop_(loop) {}
    bool sendFrame(OutboundFrame frame) override {
        messages.push_back(json::parse(*frame.payload + std::string(frame.suffix.view())));
        return true;
    }
    void closeFor(const Disconnect& reason) override {
        closes.push_back(reason.code);
        if (protocol) protocol->connectionClosed(false);
    }
    bool hasRoom() const override { return true; }
    void whenWritable(std::function<void()>) override {}
    void sendReply(std::string message) override { messages.push_back(json::parse(message)); }
    void connectAccepted() override {}
    EventLoop& loop() override { return loop_; }
    const std::string& id() const override { return id_; }
    std::string peer() const override { return "192.0.2.1"; }
    std::shared_ptr<void> keepAlive() override { return shared_from_this(); }

    ClientProtocol* protocol = nullptr;
    std::vector<json> messages;
    std::vector<int> closes;

private:
    EventLoop& loop_;
    std::string id_ = "conn-1";
};

Config testConfig() {
    Config config;
    config.client.allow_anonymous = true;
    config.client.trust_client_user = true;
    config.channel_defaults.client_publish = true;
    config.channel_defaults.client_history = true;
    return config;
}

class ClientProtocolTest : public ::testing::Test {
protected:
    ClientProtocolTest()
        : node(testConfig(), "n", testing::oneNodeEngine(std::make_unique<fakes::FakeClusterBroker>(cluster))),
          loops(1) {
        node.attach(loops);
        connection = std::make_shared<FakeClientConnection>(loops.at(0));
        protocol = std::make_unique<ClientProtocol>(node, *connection);
        connection->protocol = protocol.get();
    }
    ~ClientProtocolTest() override {
        protocol->connectionClosed(true);
        protocol.reset();
        node.sessions().clear();
        poll();
    }
    void poll() {
        loops.at(0).context().poll();
        loops.at(0).context().restart();
    }
    // Sends `message`, runs the loop, and returns the reply to command `id`.
    json reply(const std::string& message, int id) {
        protocol->handleMessage(message);
        poll();
        for (const auto& m : connection->messages)
            if (m.value("id", -1) == id) return m;
        ADD_FAILURE() << "no reply to " << message;
        return json();
    }

    fakes::FakeCluster cluster;
    Node node;
    EventLoopPool loops;
    std::shared_ptr<FakeClientConnection> connection;
    std::unique_ptr<ClientProtocol> protocol;
};

TEST_F(ClientProtocolTest, AnUnavailableEngineIsError115ForPublishSubscribeAndHistory) {
    ASSERT_EQ(reply(R"({"id":1,"type":"connect"})", 1)["type"], "connected");
    cluster.failure = BrokerError{ApiErrorCode::Unavailable, "redis: connection refused"};
    for (const auto& [id, command] :
         std::vector<std::pair<int, std::string>>{{2, R"({"id":2,"type":"subscribe","channel":"news"})"},
                                                  {3, R"({"id":3,"type":"publish","channel":"news","data":1})"},
                                                  {4, R"({"id":4,"type":"history","channel":"news"})"}}) {
        json answer = reply(command, id);
        EXPECT_EQ(answer["type"], "error") << command;
        EXPECT_EQ(answer["code"], 115) << command;
    }
    // Any other engine failure stays 100 (internal).
    cluster.failure = BrokerError{ApiErrorCode::Internal, "bug"};
    EXPECT_EQ(reply(R"({"id":5,"type":"publish","channel":"news","data":1})", 5)["code"], 100);
}

TEST_F(ClientProtocolTest, AUserWhoseChannelCannotBeJoinedIsRefusedWith115AndClose4008) {
    cluster.failure = BrokerError{ApiErrorCode::Unavailable, "redis: connection refused"};
    json refused = reply(R"({"id":1,"type":"connect","user":"alice"})", 1);
    EXPECT_EQ(refused["type"], "error");
    EXPECT_EQ(refused["code"], 115);
    EXPECT_EQ(connection->closes, std::vector<int>{4008});
    poll();
    EXPECT_EQ(node.sessions().size(), 0u) << "no session is left behind";
}

TEST_F(ClientProtocolTest, AnAnonymousClientHasNoChannelToJoinAndConnectsWhileTheEngineIsDown) {
    cluster.failure = BrokerError{ApiErrorCode::Unavailable, "redis: connection refused"};
    EXPECT_EQ(reply(R"({"id":1,"type":"connect"})", 1)["type"], "connected");
    EXPECT_TRUE(connection->closes.empty());
}

TEST_F(ClientProtocolTest, ADisconnectOfItsUserEndsTheSessionAndCloses) {
    json connected = reply(R"({"id":1,"type":"connect","user":"alice"})", 1);
    ASSERT_EQ(connected["type"], "connected");
    protocol->disconnect(DisconnectTarget{"bob", "", false});
    protocol->disconnect(DisconnectTarget{"", "conn-2", false});
    EXPECT_TRUE(connection->closes.empty()) << "another user, another connection";
    EXPECT_EQ(node.sessions().size(), 1u);

    protocol->disconnect(DisconnectTarget{"alice", "", false});
    EXPECT_EQ(connection->closes, std::vector<int>{4503});
    poll();
    EXPECT_EQ(node.sessions().size(), 0u) << "ended: it cannot be resumed";
    bool busy = false;
    EXPECT_FALSE(node.sessions().claim(connected["session"], connected["resume"], &busy).has_value());
}

TEST_F(ClientProtocolTest, ADisconnectByConnectionIdWithReconnectCloses4007) {
    ASSERT_EQ(reply(R"({"id":1,"type":"connect"})", 1)["type"], "connected");
    protocol->disconnect(DisconnectTarget{"", "conn-1", true});
    EXPECT_EQ(connection->closes, std::vector<int>{4007});
    poll();
    EXPECT_EQ(node.sessions().size(), 0u);
}

// The limits a ClientProtocol applies, with time moved by hand.
class ClientProtocolLimitsTest : public ::testing::Test {
protected:
    static Config limitedConfig() {
        Config config = testConfig();
        config.limits.commands_per_second = 2;
        config.limits.commands_burst = 3;
        config.limits.history_reads_per_second = 1;
        config.limits.connections_per_user = 1;
        return config;
    }
    ClientProtocolLimitsTest()
        : node(limitedConfig(), "n", testing::oneNodeEngine(std::make_unique<fakes::FakeClusterBroker>(cluster), clock),
               clock),
          loops(1) {
        node.attach(loops);
    }
    ~ClientProtocolLimitsTest() override {
        for (auto& protocol : protocols) protocol->connectionClosed(true);
        protocols.clear();
        node.sessions().clear();
        poll();
    }
    FakeClientConnection& open() {
        connections.push_back(std::make_shared<FakeClientConnection>(loops.at(0)));
        protocols.push_back(std::make_unique<ClientProtocol>(node, *connections.back()));
        connections.back()->protocol = protocols.back().get();
        return *connections.back();
    }
    void send(FakeClientConnection& connection, const std::string& message) {
        connection.protocol->handleMessage(message);
        poll();
    }
    void poll() {
        loops.at(0).context().poll();
        loops.at(0).context().restart();
    }
    static const json* replyTo(const FakeClientConnection& connection, int id) {
        for (const auto& m : connection.messages)
            if (m.value("id", -1) == id) return &m;
        return nullptr;
    }

    ManualClock clock;
    fakes::FakeCluster cluster;
    Node node;
    EventLoopPool loops;
    std::vector<std::shared_ptr<FakeClientConnection>> connections;
    std::vector<std::unique_ptr<ClientProtocol>> protocols;
};

TEST_F(ClientProtocolLimitsTest, ACommandPastTheRateIsAnswered116AndNotExecuted) {
    FakeClientConnection& client = open();
    send(client, R"({"id":1,"type":"connect"})");
    send(client, R"({"id":2,"type":"subscribe","channel":"a"})");
    send(client, R"({"id":3,"type":"subscribe","channel":"b"})");
    send(client, R"({"id":4,"type":"subscribe","channel":"c"})");
    ASSERT_TRUE(replyTo(client, 3));
    EXPECT_EQ((*replyTo(client, 3))["type"], "subscribed");
    ASSERT_TRUE(replyTo(client, 4));
    EXPECT_EQ((*replyTo(client, 4))["type"], "error");
    EXPECT_EQ((*replyTo(client, 4))["code"], 116);
    EXPECT_EQ(node.subscriptions(), 2u) << "the refused subscribe was not executed";

    clock.advance(std::chrono::milliseconds(500));  // one token back
    send(client, R"({"id":5,"type":"subscribe","channel":"c"})");
    ASSERT_TRUE(replyTo(client, 5));
    EXPECT_EQ((*replyTo(client, 5))["type"], "subscribed");
    EXPECT_TRUE(client.closes.empty());
}

TEST_F(ClientProtocolLimitsTest, MoreThanABurstOfRefusalsInARowCloses4009) {
    FakeClientConnection& client = open();
    // connect, two pongs, three refusals (the burst), then the close; the last ping is never read.
    std::string frame = R"({"id":1,"type":"connect"})";
    for (int id = 2; id <= 8; ++id) frame += "\n" + json{{"id", id}, {"type", "ping"}}.dump();
    send(client, frame);
    EXPECT_EQ((*replyTo(client, 3))["type"], "pong");
    for (int id : {4, 5, 6}) {
        ASSERT_TRUE(replyTo(client, id)) << id;
        EXPECT_EQ((*replyTo(client, id))["code"], 116) << id;
    }
    EXPECT_FALSE(replyTo(client, 7));
    EXPECT_FALSE(replyTo(client, 8));
    EXPECT_EQ(client.closes, std::vector<int>{4009});
    EXPECT_EQ(loops.at(0).metrics().tooManyRequestsCloses.get(), 1u);
    EXPECT_EQ(loops.at(0).metrics().commandsRefusedRate.get(), 3u);
}

TEST_F(ClientProtocolLimitsTest, QosAnswersAreNotCounted) {
    FakeClientConnection& client = open();
    send(client, R"({"id":1,"type":"connect"})");
    for (int i = 0; i < 100; ++i) send(client, R"({"type":"ack","did":1})");  // nothing to ack: ignored, never refused
    send(client, R"({"id":2,"type":"ping"})");
    EXPECT_EQ((*replyTo(client, 2))["type"], "pong");
    EXPECT_TRUE(client.closes.empty());
}

TEST_F(ClientProtocolLimitsTest, HistoryReadsHaveTheirOwnRate) {
    FakeClientConnection& client = open();
    send(client, R"({"id":1,"type":"connect"})");
    send(client, R"({"id":2,"type":"history","channel":"news"})");
    send(client, R"({"id":3,"type":"history","channel":"news"})");
    EXPECT_EQ((*replyTo(client, 2))["type"], "history");
    EXPECT_EQ((*replyTo(client, 3))["code"], 116);
    EXPECT_EQ((*replyTo(client, 3))["message"], "too many history reads");
    EXPECT_EQ(loops.at(0).metrics().commandsRefusedHistoryRate.get(), 1u);
    EXPECT_TRUE(client.closes.empty());
}

TEST_F(ClientProtocolLimitsTest, PastConnectionsPerUserConnectIs106AndClose4010UntilOneCloses) {
    FakeClientConnection& first = open();
    FakeClientConnection& second = open();
    FakeClientConnection& anonymous = open();
    send(first, R"({"id":1,"type":"connect","user":"alice"})");
    ASSERT_EQ((*replyTo(first, 1))["type"], "connected");
    send(second, R"({"id":1,"type":"connect","user":"alice"})");
    ASSERT_TRUE(replyTo(second, 1));
    EXPECT_EQ((*replyTo(second, 1))["code"], 106);
    EXPECT_EQ(second.closes, std::vector<int>{4010});
    send(anonymous, R"({"id":1,"type":"connect"})");
    EXPECT_EQ((*replyTo(anonymous, 1))["type"], "connected");
    EXPECT_EQ(node.userConnections().connectionsOf("alice"), 1u);

    first.protocol->connectionClosed(false);
    EXPECT_EQ(node.userConnections().connectionsOf("alice"), 0u) << "released when the connection closes";
    FakeClientConnection& third = open();
    send(third, R"({"id":1,"type":"connect","user":"alice"})");
    EXPECT_EQ((*replyTo(third, 1))["type"], "connected");
}

}  // namespace
}  // namespace wspush
