// The limits (docs/security.md, "Limits") through the real daemon: every refusal with its status
// or code, and its counter in /metrics; the decompression bomb; and the issue's scenario, an
// attacker flooding commands and connections while 100 well-behaved clients keep receiving.
//
// Clients that must count as different addresses connect from different loopback addresses
// (127.0.0.0/8 all reaches the daemon on 127.0.0.1).

#include <atomic>
#include <fstream>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "support/client_frames.h"
#include "support/test_helpers.h"

namespace wspush::testing {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

json limits(const json& values) {
    return json{{"limits", values}};
}

json disconnectMessage(int code, const std::string& reason, bool reconnect) {
    return json{{"type", "disconnect"}, {"code", code}, {"reason", reason}, {"reconnect", reconnect}};
}

// wspush_<name>{<label>="<value>"} from /metrics, -1 when it cannot be read.
double labelledMetric(unsigned short apiPort, const std::string& name, const std::string& label,
                      const std::string& value) {
    return readMetric(apiPort, name + "{" + label + "=\"" + value + "\"}");
}

double refusedConnections(const DaemonProcess& daemon, const std::string& reason) {
    return labelledMetric(daemon.apiPort(), "wspush_connections_refused_total", "reason", reason);
}

double refusedCommands(const DaemonProcess& daemon, const std::string& reason) {
    return labelledMetric(daemon.apiPort(), "wspush_commands_refused_total", "reason", reason);
}

// The JSON error body of a refused upgrade or request: {"error":{"code":…,"message":…}}.
::testing::AssertionResult isError(const std::string& body, int code, const std::string& message = "") {
    json parsed = json::parse(body, nullptr, false);
    if (!parsed.is_object() || !parsed.contains("error") || !parsed["error"].is_object())
        return ::testing::AssertionFailure() << "not an error body: " << body;
    if (parsed["error"].value("code", 0) != code) return ::testing::AssertionFailure() << "wrong code: " << body;
    if (!message.empty() && parsed["error"].value("message", "") != message)
        return ::testing::AssertionFailure() << "wrong message: " << body;
    return ::testing::AssertionSuccess();
}

WsConnectOptions from(const std::string& localAddress) {
    WsConnectOptions options;
    options.localAddress = localAddress;
    return options;
}

// The most resident memory a process has had, in KiB (VmHWM in /proc/<pid>/status): what it held
// at its peak, even if it gave the memory back since. -1 when unreadable.
long peakResidentKib(pid_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

TEST(Limits, PastConnectionsPerNodeTheUpgradeIsRefusedWith503) {
    DaemonProcess daemon(limits({{"connections_per_node", 2}}));
    WsTestClient first, second, third;
    ASSERT_TRUE(first.connectProtocol(daemon.port())) << first.lastError();
    ASSERT_TRUE(second.connect(daemon.port())) << second.lastError();  // counted from the upgrade on

    EXPECT_FALSE(third.connect(daemon.port()));
    EXPECT_EQ(third.handshakeStatus(), 503u) << third.lastError();
    EXPECT_TRUE(isError(third.handshakeBody(), 50302, "this node takes no more connections"));
    EXPECT_EQ(refusedConnections(daemon, "node_limit"), 1);
    EXPECT_EQ(httpGet(daemon.port(), "/healthz").status, 200u) << "plain HTTP is not a WebSocket connection";

    second.close();
    EXPECT_TRUE(eventually([&] { return third.connectProtocol(daemon.port()).has_value(); }))
        << "the place of a closed connection is given back: " << third.lastError();
}

TEST(Limits, PastConnectionsPerIpTheUpgradeIsRefusedWith429) {
    DaemonProcess daemon(limits({{"connections_per_ip", 2}}));
    WsTestClient a1, a2, a3, b1;
    ASSERT_TRUE(a1.connectProtocol(daemon.port(), "", from("127.0.0.11"))) << a1.lastError();
    ASSERT_TRUE(a2.connectProtocol(daemon.port(), "", from("127.0.0.11"))) << a2.lastError();

    EXPECT_FALSE(a3.connect(daemon.port(), from("127.0.0.11")));
    EXPECT_EQ(a3.handshakeStatus(), 429u) << a3.lastError();
    EXPECT_TRUE(isError(a3.handshakeBody(), 42901, "too many connections from this address"));
    EXPECT_TRUE(b1.connectProtocol(daemon.port(), "", from("127.0.0.12"))) << "another address: " << b1.lastError();
    EXPECT_EQ(refusedConnections(daemon, "ip_limit"), 1);

    a1.close();
    EXPECT_TRUE(eventually([&] { return a3.connectProtocol(daemon.port(), "", from("127.0.0.11")).has_value(); }))
        << a3.lastError();
}

TEST(Limits, PastConnectsPerSecondPerIpTheUpgradeIsRefusedWith429) {
    // One a second (a burst of one): the second connect right after the first is refused, even
    // though the first has closed again, and one a second later gets in.
    DaemonProcess daemon(limits({{"connects_per_second_per_ip", 1}}));
    WsTestClient client, other;
    ASSERT_TRUE(client.connectProtocol(daemon.port(), "", from("127.0.0.21"))) << client.lastError();
    client.close();
    auto refusedAt = Clock::now();
    EXPECT_FALSE(client.connect(daemon.port(), from("127.0.0.21")));
    EXPECT_EQ(client.handshakeStatus(), 429u) << client.lastError();
    EXPECT_TRUE(isError(client.handshakeBody(), 42901, "too many new connections from this address"));
    EXPECT_TRUE(other.connectProtocol(daemon.port(), "", from("127.0.0.22"))) << other.lastError();
    EXPECT_EQ(refusedConnections(daemon, "ip_rate"), 1);

    std::this_thread::sleep_until(refusedAt + 1s);
    EXPECT_TRUE(client.connectProtocol(daemon.port(), "", from("127.0.0.21"))) << client.lastError();
}

TEST(Limits, OriginsOutsideAllowedOriginsAreRefusedWith403) {
    DaemonProcess daemon(
        json{{"websocket", {{"allowed_origins", {"https://app.example.com", "https://*.example.org"}}}}});
    auto withOrigin = [](const std::string& origin) {
        WsConnectOptions options;
        options.headers["Origin"] = origin;
        return options;
    };
    for (const std::string origin :
         {"https://evil.example.com", "http://app.example.com", "https://example.org.evil.com",
          "https://evilexample.org", "https://example.org", "null"}) {
        WsTestClient client;
        EXPECT_FALSE(client.connect(daemon.port(), withOrigin(origin))) << origin;
        EXPECT_EQ(client.handshakeStatus(), 403u) << origin;
        EXPECT_TRUE(isError(client.handshakeBody(), 40301, "origin not allowed")) << origin;
    }
    EXPECT_EQ(refusedConnections(daemon, "origin"), 6);

    for (const std::string origin : {"https://app.example.com", "HTTPS://APP.example.com:443", "https://a.example.org",
                                     "https://a.b.example.org"}) {
        WsTestClient client;
        EXPECT_TRUE(client.connectProtocol(daemon.port(), "", withOrigin(origin))) << origin << client.lastError();
    }
    WsTestClient notABrowser;
    EXPECT_TRUE(notABrowser.connectProtocol(daemon.port())) << "no Origin: " << notABrowser.lastError();
}

TEST(Limits, HeadersPastMaxHeaderBytesAreRefusedWith431) {
    DaemonProcess daemon(limits({{"max_header_bytes", 2048}}));
    HttpTestClient http(daemon.port());
    EXPECT_EQ(http.get("/healthz", {{"X-Padding", std::string(1500, 'x')}}).status, 200u);

    HttpResult refused = http.get("/healthz", {{"X-Padding", std::string(4000, 'x')}});
    EXPECT_EQ(refused.status, 431u) << refused.error;
    EXPECT_TRUE(isError(refused.body, 43101, "request headers too large"));
    EXPECT_EQ(refused.header("Connection"), "close");

    WsConnectOptions padded;
    padded.headers["X-Padding"] = std::string(4000, 'x');
    WsTestClient client;
    EXPECT_FALSE(client.connect(daemon.port(), padded));
    EXPECT_EQ(client.handshakeStatus(), 431u) << client.lastError();
    EXPECT_TRUE(isError(client.handshakeBody(), 43101));
    EXPECT_EQ(refusedConnections(daemon, "header_too_large"), 2);
    EXPECT_EQ(http.get("/healthz").status, 200u);
}

TEST(Limits, TargetsPastMaxUrlBytesAreRefusedWith414) {
    DaemonProcess daemon(limits({{"max_header_bytes", 2048}, {"max_url_bytes", 512}}));
    HttpTestClient http(daemon.port());
    EXPECT_EQ(http.get("/healthz?pad=" + std::string(400, 'x')).status, 200u);

    HttpResult refused = http.get("/healthz?pad=" + std::string(600, 'x'));
    EXPECT_EQ(refused.status, 414u) << refused.error;
    EXPECT_TRUE(isError(refused.body, 41401, "request target too long"));
    EXPECT_EQ(refused.header("Connection"), "close");

    // Longer than the whole header block may be: still a target too long, not headers too large.
    HttpResult huge = http.get("/healthz?pad=" + std::string(3000, 'x'));
    EXPECT_EQ(huge.status, 414u) << huge.error;
    EXPECT_TRUE(isError(huge.body, 41401));

    WsConnectOptions longPath;
    longPath.path = "/ws?pad=" + std::string(600, 'x');
    WsTestClient client;
    EXPECT_FALSE(client.connect(daemon.port(), longPath));
    EXPECT_EQ(client.handshakeStatus(), 414u) << client.lastError();
    EXPECT_EQ(refusedConnections(daemon, "url_too_long"), 3);
    EXPECT_EQ(refusedConnections(daemon, "header_too_large"), 0);
}

TEST(Limits, PastConnectionsPerUserConnectGets106AndClose4010) {
    DaemonProcess daemon(limits({{"connections_per_user", 2}}));
    WsTestClient first, second, third, bob;
    ASSERT_TRUE(first.connectProtocol(daemon.port(), "alice")) << first.lastError();
    ASSERT_TRUE(second.connectProtocol(daemon.port(), "alice")) << second.lastError();

    auto reply = third.connectWith(daemon.port(), {{"user", "alice"}, {"id", 7}});
    ASSERT_TRUE(reply) << third.lastError();
    EXPECT_EQ(errorCodeOf(reply), 106) << reply->dump();
    EXPECT_EQ(reply->value("id", 0), 7);
    auto ending = third.waitClose();
    ASSERT_TRUE(ending);
    EXPECT_EQ(ending->closeCode, 4010);
    ASSERT_FALSE(ending->messages.empty());
    EXPECT_EQ(ending->messages.back(), disconnectMessage(4010, "too many connections", true));
    EXPECT_EQ(refusedConnections(daemon, "user_limit"), 1);

    EXPECT_TRUE(bob.connectProtocol(daemon.port(), "bob")) << "another user: " << bob.lastError();
    std::vector<std::unique_ptr<WsTestClient>> anonymous;
    for (int i = 0; i < 4; ++i) {
        anonymous.push_back(std::make_unique<WsTestClient>());
        EXPECT_TRUE(anonymous.back()->connectProtocol(daemon.port())) << "anonymous ones are not counted";
    }

    first.close();
    EXPECT_TRUE(eventually([&] { return third.connectProtocol(daemon.port(), "alice").has_value(); }))
        << "a closed connection no longer counts: " << third.lastError();
}

// The pieces of one frame: `count` publishes with ids 1…count.
std::string publishes(int count, const std::string& channel) {
    std::string frame;
    for (int id = 1; id <= count; ++id)
        frame += json{{"type", "publish"}, {"id", id}, {"channel", channel}, {"data", id}}.dump() + "\n";
    return frame;
}

TEST(Limits, ACommandFloodIsRefusedWith116ThenClosedWith4009) {
    DaemonProcess daemon(json{{"limits", {{"commands_per_second", 5}, {"commands_burst", 5}}},
                              {"channel_defaults", {{"client_publish", true}}}});
    WsTestClient watcher, flooder;
    ASSERT_TRUE(watcher.connectProtocol(daemon.port(), "", from("127.0.0.31"))) << watcher.lastError();
    ASSERT_TRUE(subscribeOk(watcher, "flooded"));
    ASSERT_TRUE(flooder.connectProtocol(daemon.port(), "", from("127.0.0.32"))) << flooder.lastError();

    // `connect` took one of the five tokens; the frame asks for 30.
    ASSERT_TRUE(flooder.sendText(publishes(30, "flooded")));
    auto ending = flooder.waitClose();
    ASSERT_TRUE(ending) << "the flooder was not closed";
    EXPECT_EQ(ending->closeCode, 4009);
    const auto& messages = ending->messages;
    ASSERT_FALSE(messages.empty());
    EXPECT_EQ(messages.back(), disconnectMessage(4009, "too many requests", true));

    // Published, in order, for as many tokens as were left; then exactly commands_burst refusals,
    // each with its command's id; then the close. The rest of the frame is never looked at.
    std::size_t published = 0;
    while (published < messages.size() && typeOf(messages[published]) == "published") {
        EXPECT_EQ(messages[published].value("id", 0), static_cast<int>(published) + 1);
        ++published;
    }
    EXPECT_GE(published, 4u);
    EXPECT_LE(published, 5u);  // a token came back only if the frame took 200 ms to arrive
    ASSERT_EQ(messages.size(), published + 5 + 1) << json(messages).dump();
    for (std::size_t i = published; i < published + 5; ++i) {
        EXPECT_EQ(errorCodeOf(messages[i]), 116) << messages[i].dump();
        EXPECT_EQ(messages[i].value("id", 0), static_cast<int>(i) + 1);
        EXPECT_EQ(messages[i].value("message", ""), "too many requests");
    }

    // A refused publish was not published: the watcher gets exactly the accepted ones.
    for (std::size_t n = 1; n <= published; ++n) {
        auto message = watcher.nextMessage();
        ASSERT_TRUE(message) << "publication " << n << " missing";
        EXPECT_EQ((*message)["data"], n);
    }
    EXPECT_FALSE(watcher.nextMessage(300ms)) << "a refused publish was published";
    EXPECT_EQ(refusedCommands(daemon, "rate"), 5);
    EXPECT_EQ(readMetric(daemon.apiPort(), "wspush_too_many_requests_closes_total"), 1);
}

TEST(Limits, AClientThatSlowsDownAfterA116KeepsItsConnection) {
    DaemonProcess daemon(limits({{"commands_per_second", 10}, {"commands_burst", 2}}));
    WsTestClient client;
    ASSERT_TRUE(client.connectProtocol(daemon.port())) << client.lastError();  // one token of two
    auto pong = client.request({{"type", "ping"}});
    ASSERT_TRUE(pong);
    EXPECT_EQ(typeOf(*pong), "pong");
    for (int i = 0; i < 2; ++i) {  // commands_burst refusals in a row: not yet a flood
        auto refused = client.request({{"type", "ping"}});
        ASSERT_TRUE(refused) << client.lastError();
        if (typeOf(*refused) == "pong") continue;  // the machine was slow enough for a token to come back
        EXPECT_EQ(errorCodeOf(refused), 116) << refused->dump();
    }
    std::this_thread::sleep_for(150ms);
    pong = client.request({{"type", "ping"}});
    ASSERT_TRUE(pong) << client.lastError();
    EXPECT_EQ(typeOf(*pong), "pong");
    EXPECT_TRUE(client.isOpen());
}

TEST(Limits, HistoryAndPresenceReadsPastTheirRatesGet116AndTheConnectionStays) {
    DaemonProcess daemon(json{
        {"limits", {{"history_reads_per_second", 1}, {"presence_reads_per_second", 1}}},
        {"namespaces",
         {{"room", {{"history_size", 10}, {"client_history", true}, {"presence", true}, {"client_presence", true}}}}}});
    WsTestClient client;
    ASSERT_TRUE(client.connectProtocol(daemon.port())) << client.lastError();
    ASSERT_TRUE(subscribeOk(client, "room:1"));

    auto history = client.request({{"type", "history"}, {"channel", "room:1"}});
    ASSERT_TRUE(history);
    EXPECT_EQ(typeOf(*history), "history") << history->dump();
    history = client.request({{"type", "history"}, {"channel", "room:1"}, {"id", 41}});
    ASSERT_TRUE(history);
    EXPECT_EQ(errorCodeOf(history), 116) << history->dump();
    EXPECT_EQ(history->value("message", ""), "too many history reads");

    auto presence = client.request({{"type", "presence"}, {"channel", "room:1"}});
    ASSERT_TRUE(presence);
    EXPECT_EQ(typeOf(*presence), "presence") << presence->dump();
    auto stats = client.request({{"type", "presence_stats"}, {"channel", "room:1"}, {"id", 42}});
    ASSERT_TRUE(stats);
    EXPECT_EQ(errorCodeOf(stats), 116) << stats->dump();
    EXPECT_EQ(stats->value("message", ""), "too many presence reads");

    for (int i = 0; i < 20; ++i) {  // refusals of reads never close
        auto again = client.request({{"type", "history"}, {"channel", "room:1"}});
        ASSERT_TRUE(again) << client.lastError();
    }
    auto pong = client.request({{"type", "ping"}});
    ASSERT_TRUE(pong);
    EXPECT_EQ(typeOf(*pong), "pong");
    EXPECT_GE(refusedCommands(daemon, "history_rate"), 1);
    EXPECT_EQ(refusedCommands(daemon, "presence_rate"), 1);

    std::this_thread::sleep_for(1100ms);  // a token back, whatever the reads above took
    history = client.request({{"type", "history"}, {"channel", "room:1"}});
    ASSERT_TRUE(history);
    EXPECT_EQ(typeOf(*history), "history") << history->dump();
}

TEST(Limits, QosAnswersAreNeverRefused) {
    // Two commands a second, and an inflight window of two: 40 deliveries can only all arrive if
    // every ack, rec and comp is taken, far past the command rate.
    DaemonProcess daemon(json{{"limits", {{"commands_per_second", 2}, {"commands_burst", 3}}},
                              {"qos", {{"max_inflight", 2}}},
                              {"namespaces", {{"q1", {{"default_qos", 1}}}, {"q2", {{"default_qos", 2}}}}}});
    WsTestClient client;
    ASSERT_TRUE(client.connectProtocol(daemon.port())) << client.lastError();
    ASSERT_TRUE(subscribeOk(client, "q1:x"));
    ASSERT_TRUE(subscribeOk(client, "q2:x"));  // connect and the two subscribes take the burst of three
    HttpTestClient api(daemon.apiPort());
    for (int i = 1; i <= 30; ++i)
        ASSERT_EQ(api.postJson("/api/publish", {{"channel", "q1:x"}, {"data", i}}).status, 200u);
    for (int i = 1; i <= 10; ++i)
        ASSERT_EQ(api.postJson("/api/publish", {{"channel", "q2:x"}, {"data", i}}).status, 200u);

    int q1 = 0, q2 = 0;
    std::vector<json> errors;
    auto deadline = Clock::now() + 5s;
    while ((q1 < 30 || q2 < 10) && Clock::now() < deadline) {
        auto message = client.nextMessage(500ms);
        if (!message) continue;
        if (typeOf(*message) == "error") errors.push_back(*message);
        if (typeOf(*message) == "message" && !message->value("dup", false)) {
            auto did = (*message)["did"];
            if (message->value("channel", "") == "q1:x") {
                ++q1;
                ASSERT_TRUE(client.sendJson({{"type", "ack"}, {"did", did}}));
            } else {
                ++q2;
                ASSERT_TRUE(client.sendJson({{"type", "rec"}, {"did", did}}));
            }
        }
        if (typeOf(*message) == "rel") {
            ASSERT_TRUE(client.sendJson({{"type", "comp"}, {"did", (*message)["did"]}}));
        }
    }
    EXPECT_EQ(q1, 30);
    EXPECT_EQ(q2, 10);
    EXPECT_TRUE(errors.empty()) << json(errors).dump();
    EXPECT_EQ(refusedCommands(daemon, "rate"), 0);
    EXPECT_TRUE(client.isOpen());
}

// A masked, compressed (RSV1) text frame whose payload inflates to `mebibytes` MiB of zeros: the
// permessage-deflate form (raw deflate, its final 00 00 ff ff left out), with a 512-byte window,
// inside the 1 KiB window the daemon negotiates. One MiB is compressed and its blocks repeated:
// each copy ends on a byte boundary (sync flush), so the copies are one valid stream.
std::string deflateBombFrame(std::size_t mebibytes) {
    std::string block = deflatedMessage(std::string(1 << 20, '\0'), 9, 9);
    EXPECT_FALSE(block.empty());
    block += std::string("\x00\x00\xff\xff", 4);  // the sync flush that joins one copy to the next
    std::string compressed;
    for (std::size_t i = 0; i < mebibytes; ++i) compressed += block;
    compressed.resize(compressed.size() - 4);
    return clientFrame(0xC1, compressed);  // FIN, RSV1 (compressed), text
}

TEST(Limits, ADecompressionBombIsCutOffWith1009WithoutInflatingIt) {
    DaemonProcess daemon(json{{"websocket", {{"compression", {{"enabled", true}}}, {"max_message_size", 65536}}}});
    WsTestClient witness;
    ASSERT_TRUE(witness.connectProtocol(daemon.port())) << witness.lastError();
    ASSERT_TRUE(subscribeOk(witness, "after"));

    WsConnectOptions deflate;
    deflate.offerDeflate = true;
    WsTestClient bomber;
    ASSERT_TRUE(bomber.connectProtocol(daemon.port(), "", deflate)) << bomber.lastError();
    ASSERT_TRUE(bomber.deflateNegotiated()) << bomber.handshakeExtensions();

    std::string frame = deflateBombFrame(50);
    ASSERT_LT(frame.size(), 65536u) << "the compressed frame itself is within max_message_size";
    long before = peakResidentKib(daemon.pid());
    ASSERT_GT(before, 0);

    ASSERT_TRUE(bomber.sendRaw(frame)) << bomber.lastError();
    auto ending = bomber.waitClose();
    ASSERT_TRUE(ending) << "the bomb was not cut off";
    EXPECT_EQ(ending->closeCode, 1009);
    long after = peakResidentKib(daemon.pid());
    EXPECT_LT(after - before, 32 * 1024) << "peak RSS went from " << before << " KiB to " << after << " KiB";

    // The node goes on: the witness still receives, and new clients get in.
    ASSERT_EQ(httpPostJson(daemon.apiPort(), "/api/publish", {{"channel", "after"}, {"data", "still here"}}).status,
              200u);
    auto message = witness.nextMessage();
    ASSERT_TRUE(message) << witness.lastError();
    EXPECT_EQ((*message)["data"], "still here");
    WsTestClient newcomer;
    EXPECT_TRUE(newcomer.connectProtocol(daemon.port(), "", deflate)) << newcomer.lastError();
}

// The issue's scenario: 100 well-behaved clients, each from its own address, subscribed to one
// channel; a backend publishes 200 messages over about two seconds; meanwhile one attacker
// connection floods commands, and the same attacker address opens connections as fast as it can.
TEST(Limits, AnAttackerIsCutOffWhileAHundredClientsReceiveEverything) {
    constexpr int kClients = 100;
    constexpr int kPublications = 200;
    const std::string kAttacker = "127.0.0.66";
    DaemonProcess daemon(json{
        {"log", {{"level", "info"}}},  // debug would log every refusal
        {"limits",
         {{"commands_per_second", 20},
          {"commands_burst", 40},
          {"connections_per_ip", 10},
          {"connects_per_second_per_ip", 5}}},
    });

    std::vector<std::unique_ptr<WsTestClient>> clients;
    for (int i = 0; i < kClients; ++i) {
        auto client = std::make_unique<WsTestClient>();
        std::string address = "127.0.1." + std::to_string(i + 1);
        ASSERT_TRUE(client->connectProtocol(daemon.port(), "", from(address))) << address << client->lastError();
        ASSERT_TRUE(subscribeOk(*client, "crowd")) << address;
        clients.push_back(std::move(client));
    }
    WsTestClient flooder;
    ASSERT_TRUE(flooder.connectProtocol(daemon.port(), "", from(kAttacker))) << flooder.lastError();

    std::atomic<bool> publishing{true};
    std::atomic<int> publishFailures{0};
    std::thread backend([&] {
        HttpTestClient api(daemon.apiPort());
        auto start = Clock::now();
        for (int i = 1; i <= kPublications; ++i) {
            if (api.postJson("/api/publish", {{"channel", "crowd"}, {"data", {{"seq", i}}}}).status != 200)
                ++publishFailures;
            std::this_thread::sleep_until(start + i * 10ms);
        }
        publishing = false;
    });

    // Commands as fast as the socket takes them, 50 to a frame, until the daemon closes the
    // connection (at most 5 s or 2,000 frames).
    std::optional<WsEnding> flooderEnding;
    std::thread commandFlood([&] {
        std::string frame;
        for (int i = 0; i < 50; ++i)
            frame += R"({"type":"ping"})"
                     "\n";
        auto deadline = Clock::now() + 5s;
        for (int sent = 0; sent < 2000 && Clock::now() < deadline; ++sent)
            if (!flooder.sendText(frame, 500ms)) break;
        flooderEnding = flooder.waitClose(3s);
    });

    // New connections from the same address, one right after the other, while the backend publishes
    // (at most 2.5 s or 1,000 attempts). The admitted ones stay open, as an attacker's would.
    int admitted = 0, tooMany = 0, other = 0;
    std::vector<std::unique_ptr<WsTestClient>> flood;
    std::thread connectionFlood([&] {
        auto deadline = Clock::now() + 2500ms;
        for (int attempt = 0; attempt < 1000 && Clock::now() < deadline; ++attempt) {
            auto client = std::make_unique<WsTestClient>();
            WsConnectOptions options = from(kAttacker);
            options.timeout = 2000ms;
            if (client->connect(daemon.port(), options)) {
                ++admitted;
                flood.push_back(std::move(client));
            } else if (client->handshakeStatus() == 429 && isError(client->handshakeBody(), 42901)) {
                ++tooMany;
            } else {
                ++other;
            }
        }
    });

    backend.join();
    commandFlood.join();
    connectionFlood.join();
    EXPECT_EQ(publishFailures, 0);

    // Every well-behaved client got every publication, in order (they wait in its socket buffer).
    for (int c = 0; c < kClients; ++c) {
        for (int i = 1; i <= kPublications; ++i) {
            auto message = clients[c]->nextMessage(3000ms);
            ASSERT_TRUE(message) << "client " << c << " is missing publication " << i;
            ASSERT_EQ(message->value("offset", -1), i) << "client " << c;
            ASSERT_EQ((*message)["data"]["seq"], i) << "client " << c;
        }
        EXPECT_TRUE(clients[c]->isOpen()) << "client " << c;
    }

    ASSERT_TRUE(flooderEnding) << "the command flooder was never closed";
    EXPECT_EQ(flooderEnding->closeCode, 4009);
    EXPECT_GT(tooMany, 0) << "the connection flood was never refused";
    EXPECT_LE(admitted, 10) << "connections_per_ip was passed";
    EXPECT_EQ(other, 0) << "attempts that failed otherwise than with 429";
    EXPECT_EQ(readMetric(daemon.apiPort(), "wspush_too_many_requests_closes_total"), 1);
    EXPECT_EQ(refusedConnections(daemon, "ip_rate") + refusedConnections(daemon, "ip_limit"), tooMany);
}

}  // namespace
}  // namespace wspush::testing
