// How the daemon ends connections (docs/protocol.md, "Close codes" and "Heartbeats and
// timeouts"): silent clients, late connects, frames it refuses, slow consumers, shutdown; and
// permessage-deflate negotiation.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "support/test_helpers.h"

namespace wspush::testing {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

json disconnectMessage(int code, const std::string& reason, bool reconnect) {
    return json{{"type", "disconnect"}, {"code", code}, {"reason", reason}, {"reconnect", reconnect}};
}

long long millisSince(Clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

TEST(ConnectionLifecycle, AClientThatStopsAnsweringPingsIsDroppedAndOneThatReadsIsKept) {
    // A short handshake_timeout bounds the closing handshake too, so the server lets go of the
    // silent client's socket soon after its close frame instead of after the 5 s hard deadline.
    DaemonProcess daemon(
        json{{"websocket", {{"ping_interval", 0.3}, {"pong_timeout", 0.3}, {"handshake_timeout", 0.5}}}});
    WsTestClient reader, silent;
    ASSERT_TRUE(reader.connectProtocol(daemon.port())) << reader.lastError();
    auto connected = silent.connectProtocol(daemon.port());
    ASSERT_TRUE(connected) << silent.lastError();
    EXPECT_DOUBLE_EQ(connected->value("ping_interval", 0.0), 0.3);
    EXPECT_DOUBLE_EQ(connected->value("pong_timeout", 0.0), 0.3);

    // From here on `silent` is never read, so it never answers the server's pings. `reader` is
    // read all along (Beast answers each ping with a pong while it reads), including while this
    // test waits for the server to give up on `silent`.
    auto start = Clock::now();
    auto readWhileWaitingFor = [&](const std::function<bool()>& condition) {
        auto deadline = Clock::now() + std::chrono::seconds(3);
        while (Clock::now() < deadline) {
            if (!reader.pumpFor(std::chrono::milliseconds(50))) return false;
            if (condition()) return true;
        }
        return false;
    };
    // The server really let go of the silent connection (it closed the socket without any help
    // from the client), while the reading one stays.
    EXPECT_TRUE(readWhileWaitingFor([&] {
        return readMetric(daemon.apiPort(), "wspush_no_pong_closes_total") >= 1 &&
               httpGet(daemon.apiPort(), "/api/info").json().value("connections", -1) == 1;
    })) << httpGet(daemon.apiPort(), "/api/info").body;
    EXPECT_GE(millisSince(start), 500) << "dropped before ping_interval + pong_timeout";
    // Five ping intervals in all, for the reader.
    EXPECT_TRUE(readWhileWaitingFor([&] { return millisSince(start) >= 1500; }))
        << "a client that answers pings was dropped";
    EXPECT_EQ(readMetric(daemon.apiPort(), "wspush_no_pong_closes_total"), 1);

    // The server sent `disconnect` and a 4002 close frame before it closed the socket. Whether
    // the client still reads them is up to TCP: the pongs Beast sends for the buffered pings hit a
    // closed socket, and the RST that answers them may discard what the client had not read yet.
    auto ending = silent.waitClose();
    ASSERT_TRUE(ending) << "the silent client's connection is still open";
    EXPECT_TRUE(ending->closeCode == 4002 || ending->closeCode == kAbnormalClosure) << ending->closeCode;
    if (ending->closeCode == 4002) {
        ASSERT_FALSE(ending->messages.empty());
        EXPECT_EQ(ending->messages.back(), disconnectMessage(4002, "no pong", true));
    }

    EXPECT_TRUE(reader.isOpen());
    auto pong = reader.request({{"type", "ping"}});
    ASSERT_TRUE(pong) << reader.lastError();
    EXPECT_EQ(typeOf(*pong), "pong");
}

TEST(ConnectionLifecycle, AConnectionThatNeverSendsConnectIsClosedWith4003) {
    DaemonProcess daemon(json{{"websocket", {{"connect_timeout", 0.3}}}});
    WsTestClient lingering, prompt;
    auto start = Clock::now();
    ASSERT_TRUE(lingering.connect(daemon.port())) << lingering.lastError();
    ASSERT_TRUE(prompt.connectProtocol(daemon.port())) << prompt.lastError();

    auto ending = lingering.waitClose(std::chrono::milliseconds(3000));
    ASSERT_TRUE(ending) << "not closed within 3 s";
    EXPECT_GE(millisSince(start), 250) << "closed before connect_timeout";
    EXPECT_EQ(ending->closeCode, 4003);
    ASSERT_EQ(ending->messages.size(), 1u);
    EXPECT_EQ(ending->messages[0], disconnectMessage(4003, "connect timeout", true));
    EXPECT_GE(readMetric(daemon.apiPort(), "wspush_connect_timeout_closes_total"), 1);

    // A connection that did send connect is past that deadline for good.
    EXPECT_TRUE(prompt.pumpFor(std::chrono::milliseconds(500)));
}

TEST(ConnectionLifecycle, AFrameLargerThanMaxMessageSizeIsClosedWith1009) {
    DaemonProcess daemon(json{{"websocket", {{"max_message_size", 1024}}}});
    WsTestClient client;
    ASSERT_TRUE(client.connectProtocol(daemon.port())) << client.lastError();

    // Just under the limit is fine.
    auto pong = client.request({{"type", "ping"}, {"padding", std::string(900, 'x')}});
    ASSERT_TRUE(pong);
    EXPECT_EQ(typeOf(*pong), "pong");

    ASSERT_TRUE(client.sendJson({{"type", "ping"}, {"padding", std::string(2000, 'x')}}));
    auto ending = client.waitClose();
    ASSERT_TRUE(ending);
    EXPECT_EQ(ending->closeCode, 1009);
}

// A masked text frame carrying `payload`, written by hand so that no client library can refuse
// or repair it.
std::string maskedTextFrame(const std::string& payload) {
    const unsigned char mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    std::string frame;
    frame += static_cast<char>(0x81);                   // FIN + text
    frame += static_cast<char>(0x80 | payload.size());  // masked; short payloads only
    for (unsigned char byte : mask) frame += static_cast<char>(byte);
    for (std::size_t i = 0; i < payload.size(); ++i)
        frame += static_cast<char>(static_cast<unsigned char>(payload[i]) ^ mask[i % 4]);
    return frame;
}

TEST(ConnectionLifecycle, AnInvalidUtf8TextFrameIsClosedWith1007) {
    DaemonProcess daemon;
    WsTestClient client;
    ASSERT_TRUE(client.connectProtocol(daemon.port())) << client.lastError();
    ASSERT_TRUE(client.sendRaw(maskedTextFrame("\xC3\x28"))) << client.lastError();
    auto ending = client.waitClose();
    ASSERT_TRUE(ending);
    EXPECT_EQ(ending->closeCode, 1007);
    EXPECT_TRUE(ending->messages.empty()) << "no protocol message precedes 1007";
}

TEST(ConnectionLifecycle, HandMadeValidFramesAreAccepted) {
    // The control for the test above: the same hand-made framing with valid UTF-8 works.
    DaemonProcess daemon;
    WsTestClient client;
    ASSERT_TRUE(client.connectProtocol(daemon.port())) << client.lastError();
    ASSERT_TRUE(client.sendRaw(maskedTextFrame(R"({"id":3,"type":"ping","note":"caf)"
                                               "\xC3\xA9"
                                               R"("})")));
    auto pong = client.nextMessage();
    ASSERT_TRUE(pong) << client.lastError();
    EXPECT_EQ(pong->value("id", 0), 3);
}

TEST(ConnectionLifecycle, ABinaryFrameIsClosedWith1003) {
    DaemonProcess daemon;
    WsTestClient client;
    ASSERT_TRUE(client.connectProtocol(daemon.port())) << client.lastError();
    ASSERT_TRUE(client.sendBinary(std::string("\x01\x02\x03", 3)));
    auto ending = client.waitClose();
    ASSERT_TRUE(ending);
    EXPECT_EQ(ending->closeCode, 1003);
    EXPECT_TRUE(ending->messages.empty()) << "1003 is not announced with a disconnect message";
}

TEST(ConnectionLifecycle, ASlowConsumerIsClosedWhileOthersOnTheChannelGetEverything) {
    // How much the kernel buffers for the stalled socket before the daemon's queue fills depends
    // on the host (loopback send buffers autotune to megabytes), so the test publishes until the
    // daemon reports the slow consumer, then some more, within a bound.
    // Messages are small against the 64 KiB queue bound: the daemon counts a batch against the
    // bound until its write completes, and a batch holds up to 32 messages, so with larger
    // messages a client that keeps up could still be refused while its loop thread is descheduled.
    constexpr int kMaxPublications = 10000;
    constexpr int kCheckEvery = 100;
    constexpr int kAfterTheClose = 200;
    const std::string padding(1000, 'p');
    DaemonProcess daemon(json{{"websocket", {{"write_queue_max_bytes", 65536}, {"write_queue_max_frames", 4096}}},
                              {"log", {{"level", "info"}}}});

    WsConnectOptions tinyWindow;
    tinyWindow.receiveBufferSize = 4096;  // keeps the TCP window, and so the data in flight, small
    WsTestClient stalled, healthy;
    ASSERT_TRUE(stalled.connectProtocol(daemon.port(), "", tinyWindow)) << stalled.lastError();
    ASSERT_TRUE(subscribeOk(stalled, "firehose"));
    ASSERT_TRUE(healthy.connectProtocol(daemon.port())) << healthy.lastError();
    ASSERT_TRUE(subscribeOk(healthy, "firehose"));
    // `stalled` is not read again until the end of the test.

    // The healthy client reads on its own thread while this one publishes, as a real one would.
    std::atomic<int> healthyReceived{0};
    std::atomic<int> publishedTotal{-1};  // -1 while publishing goes on
    auto received = std::async(std::launch::async, [&healthy, &healthyReceived, &publishedTotal] {
        std::vector<json> messages;
        auto deadline = Clock::now() + std::chrono::seconds(60);
        while (Clock::now() < deadline) {
            int total = publishedTotal.load();
            if (total >= 0 && messages.size() >= static_cast<std::size_t>(total)) break;
            auto message = healthy.nextMessage(std::chrono::milliseconds(200));
            if (message) {
                messages.push_back(std::move(*message));
                healthyReceived = static_cast<int>(messages.size());
            } else if (!healthy.isOpen()) {
                break;
            }
        }
        return messages;
    });

    // Publishing in-process is far faster than a reader can be scheduled on a busy machine, so
    // the publisher never lets the healthy client fall more than kMaxLag messages behind: the test
    // is about the stalled client, not about outrunning a fast one.
    constexpr int kMaxLag = 8;
    auto waitForHealthyReader = [&](int published) {
        auto deadline = Clock::now() + std::chrono::seconds(5);
        while (healthyReceived.load() < published - kMaxLag) {
            if (Clock::now() >= deadline) return false;
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
        return true;
    };

    HttpTestClient api(daemon.apiPort());
    int published = 0;
    int publishedAtClose = -1;
    while (published < kMaxPublications) {
        HttpResult result = api.postJson(
            "/api/publish", {{"channel", "firehose"}, {"data", {{"seq", published + 1}, {"pad", padding}}}});
        if (result.status != 200) {
            ADD_FAILURE() << "publish " << published + 1 << ": " << result.status << " " << result.body << result.error;
            break;
        }
        ++published;
        if (!waitForHealthyReader(published)) {
            ADD_FAILURE() << "the healthy client stopped receiving at " << healthyReceived.load() << " of "
                          << published;
            break;
        }
        if (publishedAtClose < 0 && published % kCheckEvery == 0 &&
            readMetric(daemon.apiPort(), "wspush_slow_consumer_closes_total") >= 1)
            publishedAtClose = published;
        if (publishedAtClose >= 0 && published >= publishedAtClose + kAfterTheClose) break;
    }
    publishedTotal = published;

    std::vector<json> messages = received.get();
    ASSERT_GE(publishedAtClose, 0) << "no slow consumer close after " << published << " publications of 1 KB";
    ASSERT_EQ(messages.size(), static_cast<std::size_t>(published)) << "the healthy client lost messages";
    for (int i = 0; i < published; ++i) {
        ASSERT_EQ(messages[i].value("offset", -1), i + 1);
        ASSERT_EQ(messages[i]["data"]["seq"], i + 1);
    }
    EXPECT_TRUE(healthy.isOpen());
    EXPECT_EQ(readMetric(daemon.apiPort(), "wspush_slow_consumer_closes_total"), 1) << "only the stalled client";

    // Reading the stalled client now drains what was in flight, then the close: 4001 when the
    // server could still finish its closing handshake, a bare TCP close (possibly a reset that
    // discards unread data) when it gave up first.
    auto ending = stalled.waitClose(std::chrono::milliseconds(10000));
    ASSERT_TRUE(ending) << "the stalled client was never closed";
    EXPECT_TRUE(ending->closeCode == 4001 || ending->closeCode == kAbnormalClosure) << ending->closeCode;
    if (ending->closeCode == 4001) {
        ASSERT_FALSE(ending->messages.empty());
        EXPECT_EQ(ending->messages.back(), disconnectMessage(4001, "slow consumer", true));
    }
    EXPECT_LT(ending->messages.size(), static_cast<std::size_t>(published));
}

std::string largeText(std::size_t size) {
    std::string text;
    for (int i = 0; text.size() < size; ++i) text += "line " + std::to_string(i) + " of a long compressible payload; ";
    text.resize(size);
    return text;
}

TEST(ConnectionLifecycle, PermessageDeflateIsNegotiatedWhenEnabledAndPayloadsArriveIntact) {
    DaemonProcess daemon(json{{"websocket", {{"compression", {{"enabled", true}, {"threshold", 0}}}}}});
    WsConnectOptions deflate;
    deflate.offerDeflate = true;
    WsTestClient compressed, plain;
    ASSERT_TRUE(compressed.connectProtocol(daemon.port(), "", deflate)) << compressed.lastError();
    ASSERT_TRUE(plain.connectProtocol(daemon.port())) << plain.lastError();
    EXPECT_TRUE(compressed.deflateNegotiated()) << "Sec-WebSocket-Extensions: " << compressed.handshakeExtensions();
    EXPECT_FALSE(plain.deflateNegotiated()) << "not offered, so not negotiated";
    ASSERT_TRUE(subscribeOk(compressed, "zipped"));
    ASSERT_TRUE(subscribeOk(plain, "zipped"));

    const std::string large = largeText(20 * 1024);
    HttpTestClient api(daemon.apiPort());
    ASSERT_EQ(api.postJson("/api/publish", {{"channel", "zipped"}, {"data", large}}).status, 200u);
    ASSERT_EQ(api.postJson("/api/publish", {{"channel", "zipped"}, {"data", {{"small", 1}}}}).status, 200u);

    for (WsTestClient* client : {&compressed, &plain}) {
        auto first = client->nextMessage();
        auto second = client->nextMessage();
        ASSERT_TRUE(first && second) << client->lastError();
        EXPECT_EQ((*first)["data"], large);
        EXPECT_EQ((*second)["data"], (json{{"small", 1}}));
    }
    // Commands are decompressed on the way in, too.
    auto pong = compressed.request({{"type", "ping"}, {"padding", largeText(4000)}});
    ASSERT_TRUE(pong);
    EXPECT_EQ(typeOf(*pong), "pong");
}

TEST(ConnectionLifecycle, PermessageDeflateIsNotNegotiatedWhenDisabled) {
    DaemonProcess daemon(json{{"websocket", {{"compression", {{"enabled", false}}}}}});
    WsConnectOptions deflate;
    deflate.offerDeflate = true;
    WsTestClient client;
    ASSERT_TRUE(client.connectProtocol(daemon.port(), "", deflate)) << client.lastError();
    EXPECT_FALSE(client.deflateNegotiated()) << "Sec-WebSocket-Extensions: " << client.handshakeExtensions();
    ASSERT_TRUE(subscribeOk(client, "raw"));
    const std::string large = largeText(20 * 1024);
    ASSERT_EQ(httpPostJson(daemon.apiPort(), "/api/publish", {{"channel", "raw"}, {"data", large}}).status, 200u);
    auto message = client.nextMessage();
    ASSERT_TRUE(message);
    EXPECT_EQ((*message)["data"], large);
}

TEST(ConnectionLifecycle, SigtermDrainsSubscribersWith1001AndExitsCleanly) {
    DaemonProcess daemon(json{{"shutdown", {{"timeout", 5}}}});
    WsTestClient first, second;
    ASSERT_TRUE(first.connectProtocol(daemon.port())) << first.lastError();
    ASSERT_TRUE(second.connectProtocol(daemon.port())) << second.lastError();
    ASSERT_TRUE(subscribeOk(first, "news"));
    ASSERT_TRUE(subscribeOk(second, "news"));
    // An idle keep-alive HTTP connection must not hold the shutdown up either.
    HttpTestClient idleHttp(daemon.apiPort());
    ASSERT_EQ(idleHttp.get("/healthz").status, 200u);

    auto start = Clock::now();
    ASSERT_TRUE(daemon.terminate(SIGTERM));
    for (WsTestClient* client : {&first, &second}) {
        auto ending = client->waitClose(std::chrono::milliseconds(5000));
        ASSERT_TRUE(ending) << "not closed by the drain";
        EXPECT_EQ(ending->closeCode, 1001);
        ASSERT_FALSE(ending->messages.empty());
        EXPECT_EQ(ending->messages.back(), disconnectMessage(1001, "shutdown", true));
    }
    auto exitCode = daemon.waitExit(std::chrono::milliseconds(6000));
    ASSERT_TRUE(exitCode) << "still running 6 s after SIGTERM";
    EXPECT_EQ(*exitCode, 0);
    EXPECT_LT(millisSince(start), 4000) << "the drain waited for shutdown.timeout instead of finishing";

    WsTestClient late;
    EXPECT_FALSE(late.connect(daemon.port())) << "still accepting after exit";
}

TEST(ConnectionLifecycle, SigtermTurnsReadyzFalseThenClosesWebSocketsAtTheDrainRate) {
    // Two loops of 10/s each; the API on its own listener, which stays open for the drain.
    DaemonProcess daemon(
        json{{"api", {{"listen", "127.0.0.1:0"}}}, {"shutdown", {{"timeout", 10}, {"drain_rate", 20}}}});
    constexpr std::size_t kClients = 30;  // 1.5 s at 20/s
    std::vector<std::unique_ptr<WsTestClient>> clients;
    for (std::size_t i = 0; i < kClients; ++i) {
        clients.push_back(std::make_unique<WsTestClient>());
        ASSERT_TRUE(clients.back()->connectProtocol(daemon.port())) << clients.back()->lastError();
        ASSERT_TRUE(subscribeOk(*clients.back(), "news"));
    }
    ASSERT_EQ(httpGet(daemon.apiPort(), "/readyz").status, 200u);

    auto start = Clock::now();
    ASSERT_TRUE(daemon.terminate(SIGTERM));
    // Not ready at once, for the load balancer, while the clients are still being told to go.
    EXPECT_TRUE(eventually([&] { return httpGet(daemon.apiPort(), "/readyz").status == 503; }, 300ms));
    WsTestClient late;
    EXPECT_FALSE(late.connect(daemon.port())) << "the public listener still accepts during the drain";

    std::vector<std::optional<WsEnding>> endings(kClients);
    auto readEndings = [&](std::chrono::milliseconds each) {
        for (std::size_t i = 0; i < kClients; ++i)
            if (!endings[i]) endings[i] = clients[i]->waitClose(each);
        return static_cast<std::size_t>(std::count_if(endings.begin(), endings.end(), [](auto& e) { return e; }));
    };
    std::this_thread::sleep_until(start + 500ms);
    std::size_t early = readEndings(1ms);
    // About 10 by 0.5 s (one per loop at once, then 20/s); all of them only if the drain was not paced.
    EXPECT_GE(early, 1u);
    EXPECT_LE(early, 20u) << "told every client at once";
    EXPECT_EQ(httpGet(daemon.apiPort(), "/readyz").status, 503u) << "the API listener closed before the drain ended";

    EXPECT_EQ(readEndings(5000ms), kClients);
    for (const auto& ending : endings) {
        ASSERT_TRUE(ending);
        EXPECT_EQ(ending->closeCode, 1001);
        ASSERT_FALSE(ending->messages.empty());
        EXPECT_EQ(ending->messages.back(), disconnectMessage(1001, "shutdown", true));
    }
    auto exitCode = daemon.waitExit(std::chrono::milliseconds(10000));
    ASSERT_TRUE(exitCode) << "still running 10 s after SIGTERM";
    EXPECT_EQ(*exitCode, 0);
    EXPECT_GE(millisSince(start), 1000) << "30 clients at 20/s took under a second";
    EXPECT_LT(millisSince(start), 5000) << "waited for shutdown.timeout instead of finishing";
}

TEST(ConnectionLifecycle, ShutdownDoesNotWaitPastShutdownTimeoutForAClientThatNeverCloses) {
    DaemonProcess daemon(json{{"shutdown", {{"timeout", 0.5}}}});
    WsTestClient stubborn;
    ASSERT_TRUE(stubborn.connectProtocol(daemon.port())) << stubborn.lastError();
    // `stubborn` is never read again, so it never answers the server's close frame.

    auto start = Clock::now();
    ASSERT_TRUE(daemon.terminate(SIGTERM));
    auto exitCode = daemon.waitExit(std::chrono::milliseconds(5000));
    ASSERT_TRUE(exitCode) << "still running 5 s after SIGTERM with shutdown.timeout 0.5";
    EXPECT_EQ(*exitCode, 0);
    EXPECT_GE(millisSince(start), 400) << "did not wait for the client at all";
    EXPECT_LT(millisSince(start), 3000);
}

}  // namespace
}  // namespace wspush::testing
