// reuse_port (SO_REUSEPORT): several real wspushd processes on one host, nodes of one cluster on a
// real redis-server, share one listening port. The kernel spreads their clients over them, and a
// publication reaches the subscribers of every process. A process that does not ask to share the
// port cannot take it, and the memory engine refuses the option at start-up.
#include <map>
#include <memory>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "support/redis_server_process.h"
#include "support/test_helpers.h"

namespace wspush::testing {
namespace {

using json = nlohmann::json;

constexpr int kExitConfigError = 2;
constexpr int kClients = 40;

std::string loopback(unsigned short port) {
    return "127.0.0.1:" + std::to_string(port);
}

// A node of the cluster on `redis`: its public listener on `listenPort`, its API on `apiPort` (0:
// a port of its own), both shared with other processes when `reusePort`.
json nodeConfig(const std::string& name, const RedisServerProcess& redis, unsigned short listenPort, bool reusePort,
                unsigned short apiPort = 0) {
    return json{{"node_name", name},
                {"engine", "redis"},
                {"redis", {{"addresses", {redis.address()}}, {"prefix", "reuseport"}}},
                {"listen", loopback(listenPort)},
                {"reuse_port", reusePort},
                {"api", {{"listen", loopback(apiPort)}}}};
}

std::vector<std::unique_ptr<DaemonProcess>> startSharingNodes(const RedisServerProcess& redis, unsigned short port,
                                                              unsigned short apiPort = 0) {
    std::vector<std::unique_ptr<DaemonProcess>> nodes;
    for (const char* name : {"n1", "n2"})
        nodes.push_back(std::make_unique<DaemonProcess>(nodeConfig(name, redis, port, true, apiPort)));
    for (auto& node : nodes) {
        EXPECT_EQ(node->port(), port);
        EXPECT_TRUE(eventually([&] { return httpGet(node->apiPort(), "/readyz").status == 200; }, 5000ms))
            << "a node never became ready";
    }
    return nodes;
}

// `count` clients connected to `port` and subscribed to `channel`; how many landed on each node,
// by the node their `connected` reply names.
std::map<std::string, int> connectSubscribers(std::vector<std::unique_ptr<WsTestClient>>& clients, int count,
                                              unsigned short port, const std::string& channel) {
    std::map<std::string, int> perNode;
    for (int i = 0; i < count; ++i) {
        auto& client = clients.emplace_back(std::make_unique<WsTestClient>());
        auto connected = client->connectProtocol(port);
        EXPECT_TRUE(connected.has_value()) << "client " << i << ": " << client->lastError();
        if (!connected) continue;
        ++perNode[connected->value("node", "")];
        EXPECT_TRUE(subscribeOk(*client, channel));
    }
    return perNode;
}

// How many of `clients` receive the publication whose data is `data` on `channel`.
int countReceived(std::vector<std::unique_ptr<WsTestClient>>& clients, const std::string& channel, const json& data) {
    int received = 0;
    for (auto& client : clients) {
        auto message =
            client->waitFor([&](const json& m) { return typeOf(m) == "message" && m.value("channel", "") == channel; });
        if (message && (*message)["data"] == data) ++received;
    }
    return received;
}

// Runs wspushd on `config` (merged over the tests' base config) until it exits by itself.
CommandResult runDaemon(const json& config, const std::map<std::string, std::string>& environment = {}) {
    json whole = DaemonProcess::baseConfig();
    whole.merge_patch(config);
    TemporaryFile file(whole.dump(2), "config.json");
    return runDaemonCommand({"--config", file.path()}, environment, std::chrono::milliseconds(10'000));
}

::testing::AssertionResult mentions(const std::string& output, const std::string& needle) {
    if (output.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "\"" << needle << "\" not in the output:\n" << output;
}

TEST(ReusePort, TwoNodesShareOnePortAndAPublicationReachesTheClientsOfBoth) {
    RedisServerProcess redis;
    unsigned short port = pickFreePort();
    auto nodes = startSharingNodes(redis, port);

    std::vector<std::unique_ptr<WsTestClient>> clients;
    auto perNode = connectSubscribers(clients, kClients, port, "news");
    // The kernel picks a process by a hash of each connection's addresses and ports: all 40 on one
    // of two processes happens about once in 2^39 runs.
    EXPECT_EQ(perNode.size(), 2u) << "every client landed on one node";
    for (auto& node : nodes) {
        json info = httpGet(node->apiPort(), "/api/info").json();
        std::string name = info.value("node", "");
        EXPECT_GT(info.value("connections", 0), 0) << name << " has no connection";
        EXPECT_EQ(info.value("connections", 0), perNode[name]) << name;
    }

    // Published through one node's own API: Redis carries it to the other node's subscribers.
    json data{{"text", "to everyone"}};
    HttpResult published = httpPostJson(nodes[0]->apiPort(), "/api/publish", {{"channel", "news"}, {"data", data}});
    ASSERT_EQ(published.status, 200u) << published.body;
    EXPECT_EQ(countReceived(clients, "news", data), kClients);
}

TEST(ReusePort, TheApiPortCanBeSharedToo) {
    RedisServerProcess redis;
    unsigned short apiPort = pickFreePort();
    unsigned short port = pickFreePort();
    while (port == apiPort) port = pickFreePort();
    auto nodes = startSharingNodes(redis, port, apiPort);
    for (auto& node : nodes) EXPECT_EQ(node->apiPort(), apiPort);

    std::vector<std::unique_ptr<WsTestClient>> clients;
    EXPECT_EQ(connectSubscribers(clients, kClients, port, "news").size(), 2u);
    // Every request on a new connection lands on either node, by the hash of its ports: both
    // answer within 200 requests but once in 2^199 runs (10 were not enough, once in 2^9).
    const std::set<std::string> both{"n1", "n2"};
    std::set<std::string> answering;
    for (int i = 0; i < 200 && answering != both; ++i)
        answering.insert(httpGet(apiPort, "/api/info").json().value("node", ""));
    EXPECT_EQ(answering, both);
    // Whichever node takes a publish, it reaches every subscriber.
    for (int i = 0; i < 10; ++i) {
        json data{{"n", i}};
        HttpResult published = httpPostJson(apiPort, "/api/publish", {{"channel", "news"}, {"data", data}});
        ASSERT_EQ(published.status, 200u) << published.body;
        EXPECT_EQ(countReceived(clients, "news", data), kClients) << "publication " << i;
    }
}

// A first process holds the port, sharing it or not; a second one, the other way round, is refused
// with a message that says why, and the first keeps running.
void expectTheSecondProcessRefused(bool firstShares) {
    RedisServerProcess redis;
    unsigned short port = pickFreePort();
    DaemonProcess first(nodeConfig("n1", redis, port, firstShares));

    CommandResult refused = runDaemon(nodeConfig("n2", redis, port, !firstShares));
    ASSERT_TRUE(refused.exitCode) << "the second process started on a port the two do not both share";
    EXPECT_NE(*refused.exitCode, 0);
    std::string output = refused.out + refused.err;
    EXPECT_TRUE(mentions(output, "cannot listen on " + loopback(port)));
    EXPECT_TRUE(mentions(output, "Address already in use"));
    EXPECT_TRUE(mentions(output, "reuse_port"));
    EXPECT_TRUE(first.running());
}

TEST(ReusePort, AProcessThatDoesNotShareCannotTakeThePort) {
    expectTheSecondProcessRefused(/*firstShares=*/true);
}

TEST(ReusePort, NorCanAProcessThatSharesTakeAPortHeldByOneThatDoesNot) {
    expectTheSecondProcessRefused(/*firstShares=*/false);
}

TEST(ReusePort, TheMemoryEngineRefusesItAtStartUp) {
    CommandResult fromFile = runDaemon(json{{"reuse_port", true}});
    ASSERT_TRUE(fromFile.exitCode) << "wspushd started with reuse_port on the memory engine";
    EXPECT_EQ(*fromFile.exitCode, kExitConfigError);
    EXPECT_TRUE(mentions(fromFile.err, "reuse_port"));
    EXPECT_TRUE(mentions(fromFile.err, "engine \"redis\""));

    CommandResult fromEnvironment = runDaemon(json::object(), {{"WSPUSH_REUSE_PORT", "true"}});
    ASSERT_TRUE(fromEnvironment.exitCode) << "wspushd started with WSPUSH_REUSE_PORT on the memory engine";
    EXPECT_EQ(*fromEnvironment.exitCode, kExitConfigError);
    EXPECT_TRUE(mentions(fromEnvironment.err, "reuse_port"));
}

}  // namespace
}  // namespace wspush::testing
