// Chaos: a TCP forwarder between the client and the daemon cuts every connection at random moments
// (every 100–300 ms, seeded) while a backend publishes 10,000 QoS 1 and 10,000 QoS 2 messages
// straight to the daemon's API. The client resumes its session after every cut and runs the
// protocol's client side (docs/protocol.md, "QoS"): ack for QoS 1; rec/rel/comp for QoS 2 with an
// application layer that takes a message on the first sight of its did and forgets the did on rel.
//
//   QoS 1: no offset is lost (repeats are allowed, flagged dup).
//   QoS 2: no offset is lost and none reaches the application twice.
//   The session survives every cut: "resumed" is never false.
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "support/qos_client.h"
#include "support/tcp_forwarder.h"
#include "support/test_helpers.h"

namespace wspush::testing {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// The forwarder's seed: fixed, so a run can be repeated; WSPUSH_CHAOS_SEED (in the test's
// environment) explores other cut patterns.
std::uint32_t chaosSeed() {
    const char* text = std::getenv("WSPUSH_CHAOS_SEED");
    return text != nullptr && *text != '\0' ? static_cast<std::uint32_t>(std::stoul(text)) : 20240611u;
}

double secondsSince(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// Offsets that reached the application more than once (at most `limit`).
std::vector<std::uint64_t> repeated(const ChannelLog& log, std::size_t limit = 20) {
    std::vector<std::uint64_t> offsets;
    for (const auto& [offset, times] : log.delivered)
        if (times > 1 && offsets.size() < limit) offsets.push_back(offset);
    return offsets;
}

TEST(Chaos, RandomConnectionCutsLoseNoQos1AndDuplicateNoQos2) {
    constexpr std::uint64_t kPerChannel = 10000;
    constexpr double kPublishRate = 800;  // per second, both channels together: ~25 s of publishing
    const std::string q1 = "q1:chaos", q2 = "q2:chaos";
    DaemonProcess daemon(json{
        {"namespaces",
         {{"q1", {{"default_qos", 1}, {"client_publish", true}}},
          {"q2", {{"default_qos", 2}, {"client_publish", true}}}}},
        {"sessions", {{"ttl", 30}}},
        {"qos", {{"ack_timeout", 0.5}, {"max_redeliveries", 50}, {"max_inflight", 256}}},
    });
    TcpForwarder forwarder(daemon.port(), {.minCutInterval = std::chrono::milliseconds(100),
                                           .maxCutInterval = std::chrono::milliseconds(300),
                                           .seed = chaosSeed(),
                                           .cutting = false});
    auto start = Clock::now();

    // The first connection subscribes before anything is published or cut.
    ResumingClient client;
    ASSERT_TRUE(client.connect(forwarder.port())) << client.lastError();
    ASSERT_TRUE(client.subscribe({q1, q2})) << client.lastError();
    forwarder.setCutting(true);
    PacedPublisher publisher(daemon.apiPort(), {.channels = {q1, q2},
                                                .perChannel = kPerChannel,
                                                .perSecond = kPublishRate,
                                                .qos = std::nullopt,
                                                .keyPrefix = "chaos"});

    const ChannelLog& log1 = client.app.channels[q1];
    const ChannelLog& log2 = client.app.channels[q2];
    auto allDelivered = [&] { return log1.hasAll(kPerChannel) && log2.hasAll(kPerChannel); };
    std::vector<std::string> lostSessions;
    const auto deadline = start + std::chrono::seconds(55);
    while (Clock::now() < deadline) {
        if (!client.isOpen()) {
            std::uint64_t notResumed = client.stats.notResumed;
            auto connected = client.connect(forwarder.port());
            if (!connected) continue;  // cut during the handshake or before `connected`: try again
            if (client.stats.notResumed != notResumed)
                lostSessions.push_back("at " + std::to_string(secondsSince(start)) + " s: " + connected->dump());
            if (!client.subscribe({q1, q2})) continue;  // only after a lost session
        }
        client.pump(std::chrono::milliseconds(50));
        if (publisher.finished() && allDelivered()) break;
    }
    double deliveredAfter = secondsSince(start);

    // Calm: no more cuts. Finish the QoS 2 exchanges still open, then watch for late repeats.
    forwarder.setCutting(false);
    auto calm = Clock::now() + std::chrono::seconds(5);
    while (Clock::now() < calm && !(client.isOpen() && client.app.awaitingRel.empty())) {
        if (!client.isOpen() && !client.connect(forwarder.port())) continue;
        client.pump(std::chrono::milliseconds(50));
    }
    client.pumpUntil([] { return false; }, std::chrono::milliseconds(1200));  // > 2 × ack_timeout
    publisher.stop();

    std::cout << "chaos: seed " << chaosSeed() << "\n"
              << "chaos: cuts " << forwarder.pairsCut() << " (" << forwarder.resetsSent() << " by RST) in "
              << forwarder.cutRounds() << " rounds; forwarded connections " << forwarder.accepted() << "; reconnects "
              << (client.stats.connects - 1) << " (+" << client.stats.failedConnects
              << " failed attempts); resumes (resumed:true) " << client.stats.resumed << "; resumed:false "
              << client.stats.notResumed << "\n"
              << "chaos: published " << publisher.published(0) << " QoS 1 + " << publisher.published(1) << " QoS 2 in "
              << publisher.elapsedSeconds() << " s\n"
              << "chaos: QoS 1 delivered " << log1.delivered.size() << "/" << kPerChannel << ", frames " << log1.frames
              << ", dup frames " << log1.dupFrames << ", app duplicates " << log1.appDuplicates
              << ", repeats without dup " << log1.unflaggedRepeats << "\n"
              << "chaos: QoS 2 delivered " << log2.delivered.size() << "/" << kPerChannel << ", frames " << log2.frames
              << ", dup frames " << log2.dupFrames << ", app duplicates " << log2.appDuplicates << ", rels "
              << client.app.rels << " (" << client.app.relsForUnknownDid << " for a forgotten did), open exchanges "
              << client.app.awaitingRel.size() << "\n"
              << "chaos: all delivered after " << deliveredAfter << " s, elapsed " << secondsSince(start) << " s\n";
    for (const auto& [code, count] : client.app.disconnects)
        std::cout << "chaos: disconnect " << code << " × " << count << "\n";

    EXPECT_TRUE(publisher.finished()) << "the publisher did not finish: " << publisher.totalPublished();
    EXPECT_TRUE(publisher.failures().empty()) << publisher.failures().front();
    EXPECT_GT(forwarder.pairsCut(), 50u) << "hardly any chaos";
    EXPECT_EQ(client.stats.notResumed, 0u) << "the session was lost:\n" << ::testing::PrintToString(lostSessions);
    EXPECT_TRUE(log1.hasAll(kPerChannel)) << "QoS 1 lost " << kPerChannel - log1.delivered.size()
                                          << "; first missing: " << ::testing::PrintToString(log1.missing(kPerChannel));
    EXPECT_EQ(log1.unflaggedRepeats, 0u) << "a QoS 1 repeat without dup:true";
    EXPECT_TRUE(log2.hasAll(kPerChannel)) << "QoS 2 lost " << kPerChannel - log2.delivered.size()
                                          << "; first missing: " << ::testing::PrintToString(log2.missing(kPerChannel));
    EXPECT_EQ(log2.appDuplicates, 0u) << "QoS 2 duplicated at the application: "
                                      << ::testing::PrintToString(repeated(log2));
    EXPECT_EQ(log2.unflaggedRepeats, 0u) << "a QoS 2 resend without dup:true";
    EXPECT_EQ(log1.delivered.size(), kPerChannel) << "offsets beyond the published ones";
    EXPECT_EQ(log2.delivered.size(), kPerChannel);
    EXPECT_EQ(log1.wrongQos + log2.wrongQos, 0u);
    EXPECT_EQ(log1.qos.value_or(0), 1);
    EXPECT_EQ(log2.qos.value_or(0), 2);
    EXPECT_TRUE(client.app.awaitingRel.empty()) << client.app.awaitingRel.size() << " QoS 2 exchanges never finished";
    EXPECT_TRUE(client.app.errors.empty())
        << client.app.errors.size() << " errors, first: " << client.app.errors.front().dump();
    EXPECT_LE(secondsSince(start), 60.0);
}

}  // namespace
}  // namespace wspush::testing
