#include "engine/redis/redis_subscriber.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/redis/redis_test_loop.h"
#include "support/redis_server_process.h"

namespace wspush {
namespace {

using namespace std::chrono_literals;
using testing::fixedAddress;
using testing::RedisServerProcess;
using testing::runFor;
using testing::runUntil;

constexpr const char* kProbeChannel = "__wspush_probe";

RedisConnectionOptions fastOptions(RedisAddress address, std::string name) {
    RedisConnectionOptions options;
    options.name = std::move(name);
    options.address = fixedAddress(std::move(address));
    options.connectTimeout = 300ms;
    options.commandTimeout = 300ms;
    options.backoffMin = 20ms;
    options.backoffMax = 100ms;
    return options;
}

// A subscriber and the command connection that publishes its probes (and the tests' messages).
class RedisSubscriberTest : public ::testing::Test {
protected:
    void startSubscriber(std::chrono::milliseconds probeInterval = 5000ms) {
        publisher = RedisConnection::create(context, fastOptions(server.redisAddress(), "publisher"), {});
        publisher->start();

        RedisSubscriber::Probe probe;
        probe.channel = kProbeChannel;
        probe.interval = probeInterval;
        probe.publish = [this](const std::string& channel, const std::string& payload) {
            if (!canProbe) return false;
            ++probesPublished;
            publisher->command({"PUBLISH", channel, payload}, [](RedisResult) {});
            return true;
        };
        RedisSubscriber::Events events;
        events.onMessage = [this](const std::string& channel, const std::string& payload) {
            messages.emplace_back(channel, payload);
        };
        events.onReady = [this] { ++readyCount; };
        events.onDown = [this](const std::string&) { ++downCount; };
        subscriber = RedisSubscriber::create(context, fastOptions(server.redisAddress(), "subscriber"),
                                             std::move(probe), std::move(events));
        subscriber->start();
        ASSERT_TRUE(runUntil(context, [&] { return subscriber->ready() && publisher->ready(); }));
    }

    // Subscribes and waits for the confirmation: true if confirmed.
    bool subscribeAndWait(const std::string& channel) {
        std::optional<bool> confirmed;
        subscriber->subscribe(channel, [&confirmed](bool ok) { confirmed = ok; });
        runUntil(context, [&] { return confirmed.has_value(); });
        return confirmed.value_or(false);
    }

    // Publishes through the command connection: the number of receivers Redis reports.
    std::int64_t publish(const std::string& channel, const std::string& payload) {
        std::optional<std::int64_t> receivers;
        publisher->command({"PUBLISH", channel, payload}, [&receivers](RedisResult result) {
            auto* reply = std::get_if<RedisReply>(&result);
            receivers = reply && reply->asInteger() ? *reply->asInteger() : -1;
        });
        runUntil(context, [&] { return receivers.has_value(); });
        return receivers.value_or(-1);
    }

    bool received(const std::string& channel, const std::string& payload) const {
        for (const auto& message : messages) {
            if (message.first == channel && message.second == payload) return true;
        }
        return false;
    }

    std::int64_t subscribersOf(const std::string& channel) {
        RedisReply reply = server.command({"PUBSUB", "NUMSUB", channel});
        if (!reply.isArray() || reply.elements.size() != 2) return -1;
        return reply.elements[1].asInteger().value_or(-1);
    }

    boost::asio::io_context context;
    RedisServerProcess server;
    std::shared_ptr<RedisConnection> publisher;
    std::shared_ptr<RedisSubscriber> subscriber;
    std::vector<std::pair<std::string, std::string>> messages;
    int readyCount = 0;
    int downCount = 0;
    int probesPublished = 0;
    bool canProbe = true;  // false: the owner's command connection is "down"
};

TEST_F(RedisSubscriberTest, SubscriptionIsConfirmedAndMessagesDelivered) {
    startSubscriber();
    EXPECT_EQ(readyCount, 1);
    ASSERT_TRUE(subscribeAndWait("news"));
    EXPECT_EQ(publish("news", "hello"), 1);
    ASSERT_TRUE(runUntil(context, [&] { return received("news", "hello"); }));
    EXPECT_EQ(messages.size(), 1u);
}

TEST_F(RedisSubscriberTest, UnsubscribeStopsMessages) {
    startSubscriber();
    ASSERT_TRUE(subscribeAndWait("news"));
    subscriber->unsubscribe("news");
    ASSERT_TRUE(runUntil(context, [&] { return subscribersOf("news") == 0; }));
    EXPECT_EQ(publish("news", "unheard"), 0);
    runFor(context, 100ms);
    EXPECT_TRUE(messages.empty());
}

TEST_F(RedisSubscriberTest, SubscribeRightAfterUnsubscribeOfTheSameChannelStillReceives) {
    startSubscriber();
    ASSERT_TRUE(subscribeAndWait("news"));
    // A paused server holds the UNSUBSCRIBE's confirmation back: the SUBSCRIBE comes while it
    // is unconfirmed, which hiredis 0.14 would mis-route if the SUBSCRIBE went out at once.
    server.pause();
    subscriber->unsubscribe("news");
    runFor(context, 20ms);  // the UNSUBSCRIBE leaves
    std::optional<bool> confirmed;
    subscriber->subscribe("news", [&confirmed](bool ok) { confirmed = ok; });
    runFor(context, 20ms);
    server.resume();
    ASSERT_TRUE(runUntil(context, [&] { return confirmed.has_value(); }));
    EXPECT_EQ(confirmed, true);
    EXPECT_EQ(subscribersOf("news"), 1);
    EXPECT_EQ(publish("news", "still here"), 1);
    ASSERT_TRUE(runUntil(context, [&] { return received("news", "still here"); }));
}

TEST_F(RedisSubscriberTest, TwoThousandChannelsAreSubscribedInBatches) {
    startSubscriber();
    ASSERT_EQ(server.command({"CONFIG", "RESETSTAT"}).asString(), "OK");
    constexpr int kChannels = 2000;
    int confirmed = 0;
    for (int i = 0; i < kChannels; ++i) {
        subscriber->subscribe("channel-" + std::to_string(i), [&confirmed](bool ok) { confirmed += ok ? 1 : 0; });
    }
    ASSERT_TRUE(runUntil(context, [&] { return confirmed == kChannels; }));
    RedisReply stats = server.command({"INFO", "commandstats"});
    ASSERT_TRUE(stats.asString()) << stats.describe();
    // 2,000 channels in one turn: ceil(2000 / 512) = 4 SUBSCRIBE commands.
    EXPECT_NE(stats.string.find("cmdstat_subscribe:calls=4,"), std::string::npos) << stats.string;
    RedisReply all = server.command({"PUBSUB", "CHANNELS", "channel-*"});
    ASSERT_TRUE(all.isArray());
    EXPECT_EQ(all.elements.size(), static_cast<std::size_t>(kChannels));
    EXPECT_EQ(publish("channel-1999", "last"), 1);
    ASSERT_TRUE(runUntil(context, [&] { return received("channel-1999", "last"); }));
}

TEST_F(RedisSubscriberTest, ResubscribesAfterRedisRestart) {
    startSubscriber();
    ASSERT_TRUE(subscribeAndWait("news"));
    server.kill();
    ASSERT_TRUE(runUntil(
        context, [&] { return downCount == 1; }, 1000ms));
    EXPECT_FALSE(subscriber->ready());

    // A channel added while down waits for the reconnection.
    std::optional<bool> whileDown;
    subscriber->subscribe("sports", [&whileDown](bool ok) { whileDown = ok; });
    EXPECT_EQ(whileDown, false);

    server.start();
    ASSERT_TRUE(runUntil(
        context, [&] { return readyCount == 2 && publisher->ready(); }, 3000ms));
    EXPECT_EQ(downCount, 1);
    EXPECT_EQ(publish("news", "again"), 1);
    EXPECT_EQ(publish("sports", "score"), 1);
    ASSERT_TRUE(runUntil(context, [&] { return received("news", "again") && received("sports", "score"); }));
}

TEST_F(RedisSubscriberTest, WedgedConnectionIsRestarted) {
    startSubscriber(50ms);
    ASSERT_TRUE(subscribeAndWait("news"));
    server.pause();
    // The probe does not come back within commandTimeout (300 ms): the subscriber restarts.
    ASSERT_TRUE(runUntil(
        context, [&] { return downCount == 1; }, 2000ms));
    EXPECT_FALSE(subscriber->ready());
    server.resume();
    ASSERT_TRUE(runUntil(
        context, [&] { return readyCount == 2 && publisher->ready(); }, 3000ms));
    EXPECT_EQ(publish("news", "after the wedge"), 1);
    ASSERT_TRUE(runUntil(context, [&] { return received("news", "after the wedge"); }));
}

TEST_F(RedisSubscriberTest, ProbePayloadsNeverReachOnMessageButControlMessagesDo) {
    startSubscriber(20ms);
    ASSERT_TRUE(subscribeAndWait("news"));
    runFor(context, 400ms);
    EXPECT_GE(probesPublished, 5);
    EXPECT_EQ(downCount, 0);  // every probe came back
    EXPECT_EQ(publish(kProbeChannel, "probe-someone else's"), 1);
    subscriber->unsubscribe(kProbeChannel);  // refused: the probe channel stays subscribed
    runFor(context, 100ms);
    EXPECT_EQ(subscribersOf(kProbeChannel), 1);
    EXPECT_TRUE(messages.empty());
    // The probe channel is also the node's control channel: what is not a probe is the owner's.
    EXPECT_EQ(publish(kProbeChannel, R"({"type":"ack"})"), 1);
    ASSERT_TRUE(runUntil(
        context, [&] { return !messages.empty(); }, 1s));
}

TEST_F(RedisSubscriberTest, AProbeThatCouldNotBeSentIsNotAwaited) {
    startSubscriber(20ms);
    ASSERT_TRUE(subscribeAndWait("news"));
    canProbe = false;        // the command connection is down, pub/sub is fine
    runFor(context, 800ms);  // well past commandTimeout (300 ms), when an awaited probe would fail
    EXPECT_EQ(downCount, 0) << "no probe, no verdict: the pub/sub connection stays";
    EXPECT_TRUE(subscriber->ready());
    EXPECT_EQ(publish("news", "still here"), 1);
    ASSERT_TRUE(runUntil(
        context, [&] { return !messages.empty(); }, 1s));
    canProbe = true;
    int before = probesPublished;
    runFor(context, 200ms);
    EXPECT_GT(probesPublished, before) << "probing resumes";
    EXPECT_EQ(downCount, 0);
}

TEST_F(RedisSubscriberTest, StopFailsWaitingSubscriptionsAndEndsQuietly) {
    startSubscriber();
    std::optional<bool> confirmed;
    subscriber->subscribe("news", [&confirmed](bool ok) { confirmed = ok; });
    subscriber->stop();
    EXPECT_EQ(confirmed, false);
    runFor(context, 100ms);
    EXPECT_FALSE(subscriber->ready());
    EXPECT_EQ(downCount, 0);
    EXPECT_EQ(subscribersOf(kProbeChannel), 0);
}

}  // namespace
}  // namespace wspush
