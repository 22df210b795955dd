#include "node/channel_router.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "protocol/server_message.h"

namespace wspush {
namespace {

class RecordingSubscriber : public Subscriber {
public:
    void deliver(const PublicationPtr&, const SharedFrame& frame) override { frames.push_back(frame); }
    void lost(const std::string&) override { ADD_FAILURE() << "no gap expected"; }
    std::vector<SharedFrame> frames;
};

PublicationPtr publication(std::string channel, std::uint64_t offset) {
    auto p = std::make_shared<Publication>();
    p->channel = std::move(channel);
    p->offset = offset;
    p->epoch = "ep";
    p->mid = "m-" + std::to_string(offset);
    p->timestampMs = 1700000000000;
    p->data = R"({"n":1})";
    return p;
}

using ChannelList = std::vector<std::pair<std::string, std::uint64_t>>;

TEST(ChannelRouterTest, AddReturnsTrueOnlyForTheFirstSubscriberOnTheNode) {
    ChannelRouter router;
    EXPECT_TRUE(router.addSubscriber("news", 0, true));
    EXPECT_FALSE(router.addSubscriber("news", 0, false));
    EXPECT_FALSE(router.addSubscriber("news", 1, true));
    EXPECT_TRUE(router.addSubscriber("chat:1", 1, true));
}

TEST(ChannelRouterTest, RemoveReturnsTrueOnlyForTheLastSubscriberOnTheNode) {
    ChannelRouter router;
    router.addSubscriber("news", 0, true);
    router.addSubscriber("news", 0, false);
    router.addSubscriber("news", 1, true);
    EXPECT_FALSE(router.removeSubscriber("news", 0, false));
    EXPECT_FALSE(router.removeSubscriber("news", 1, true));
    EXPECT_TRUE(router.removeSubscriber("news", 0, true));
    EXPECT_EQ(router.channelCount(), 0u);
    // The channel is gone: the next subscriber is the first again.
    EXPECT_TRUE(router.addSubscriber("news", 2, true));
}

TEST(ChannelRouterTest, RemoveOfAnUnknownChannelReturnsFalse) {
    ChannelRouter router;
    EXPECT_FALSE(router.removeSubscriber("news", 0, true));
    EXPECT_EQ(router.channelCount(), 0u);
}

TEST(ChannelRouterTest, ChannelsAreCountedAndSortedByName) {
    ChannelRouter router;
    // Enough channels to land in several shards, added out of order.
    std::vector<std::string> names;
    for (int i = 99; i >= 0; --i) names.push_back("ch" + std::to_string(i));
    for (const auto& name : names) router.addSubscriber(name, 0, true);
    router.addSubscriber("ch5", 1, true);
    router.addSubscriber("ch5", 1, false);
    router.addSubscriber("a:first", 0, true);

    ChannelList channels = router.channels();
    ASSERT_EQ(channels.size(), 101u);
    EXPECT_EQ(router.channelCount(), 101u);
    EXPECT_TRUE(std::is_sorted(channels.begin(), channels.end()));
    EXPECT_EQ(channels.front(), (std::pair<std::string, std::uint64_t>{"a:first", 1}));
    for (const auto& [name, count] : channels) EXPECT_EQ(count, name == "ch5" ? 3u : 1u) << name;

    router.removeSubscriber("ch5", 1, false);
    router.removeSubscriber("ch7", 0, true);
    channels = router.channels();
    EXPECT_EQ(channels.size(), 100u);
    EXPECT_EQ(std::count(channels.begin(), channels.end(), std::pair<std::string, std::uint64_t>{"ch5", 2}), 1);
    EXPECT_EQ(std::count_if(channels.begin(), channels.end(), [](const auto& c) { return c.first == "ch7"; }), 0);
}

TEST(ChannelRouterTest, EmptyRouterListsNoChannels) {
    ChannelRouter router;
    EXPECT_TRUE(router.channels().empty());
    EXPECT_EQ(router.channelCount(), 0u);
    EXPECT_EQ(router.publications(), 0u);
}

// The loops are never started: each test drains them with poll() on this thread.
class ChannelRouterLoopsTest : public ::testing::Test {
protected:
    ChannelRouterLoopsTest() : pool(3) { router.attach(pool.all()); }

    // Subscribes through the hub and the router the way a session does.
    void subscribe(unsigned loop, Subscriber* subscriber, const std::string& channel) {
        LocalHub& hub = pool.at(loop).hub();
        bool firstOnLoop = !hub.contains(channel);
        hub.add(channel, subscriber);
        hub.goLive(channel, subscriber, StreamPosition{0, "ep"});
        router.addSubscriber(channel, loop, firstOnLoop);
    }
    void unsubscribe(unsigned loop, Subscriber* subscriber, const std::string& channel) {
        bool lastOnLoop = pool.at(loop).hub().remove(channel, subscriber);
        router.removeSubscriber(channel, loop, lastOnLoop);
    }
    std::size_t poll(unsigned loop) {
        std::size_t handlers = pool.at(loop).context().poll();
        pool.at(loop).context().restart();
        return handlers;
    }

    EventLoopPool pool;
    ChannelRouter router;
};

TEST_F(ChannelRouterLoopsTest, PostsOnlyToLoopsWithSubscribers) {
    RecordingSubscriber on0, on2a, on2b;
    subscribe(0, &on0, "news");
    subscribe(2, &on2a, "news");
    subscribe(2, &on2b, "news");

    auto p = publication("news", 1);
    router.onPublication(p);
    EXPECT_TRUE(on0.frames.empty()) << "delivery must happen on the loop, not in onPublication";

    EXPECT_EQ(poll(0), 1u);
    EXPECT_EQ(poll(1), 0u);  // loop 1 got no handler at all
    EXPECT_EQ(poll(2), 1u);  // one handler per loop, not per subscriber

    ASSERT_EQ(on0.frames.size(), 1u);
    ASSERT_EQ(on2a.frames.size(), 1u);
    ASSERT_EQ(on2b.frames.size(), 1u);
    // Encoded once: every subscriber holds the same frame object.
    EXPECT_EQ(on0.frames[0].get(), on2a.frames[0].get());
    EXPECT_EQ(on0.frames[0].get(), on2b.frames[0].get());
    EXPECT_EQ(*on0.frames[0], encodeMessage(*p));
    EXPECT_EQ(router.publications(), 1u);
}

TEST_F(ChannelRouterLoopsTest, PublicationWithoutSubscribersPostsNothing) {
    RecordingSubscriber on1;
    subscribe(1, &on1, "news");
    router.onPublication(publication("other", 1));
    for (unsigned i = 0; i < 3; ++i) EXPECT_EQ(poll(i), 0u) << "loop " << i;
    EXPECT_TRUE(on1.frames.empty());
    EXPECT_EQ(router.publications(), 1u);  // counted even when nobody listens
}

TEST_F(ChannelRouterLoopsTest, LastSubscriberLeavingALoopClearsItsBit) {
    RecordingSubscriber on0, on2;
    subscribe(0, &on0, "news");
    subscribe(2, &on2, "news");
    unsubscribe(2, &on2, "news");

    router.onPublication(publication("news", 1));
    EXPECT_EQ(poll(0), 1u);
    EXPECT_EQ(poll(1), 0u);
    EXPECT_EQ(poll(2), 0u);
    EXPECT_EQ(on0.frames.size(), 1u);
    EXPECT_TRUE(on2.frames.empty());
}

TEST_F(ChannelRouterLoopsTest, ALoopKeepsItsBitWhileItHasSubscribersLeft) {
    RecordingSubscriber a, b;
    subscribe(1, &a, "news");
    subscribe(1, &b, "news");
    unsubscribe(1, &a, "news");

    router.onPublication(publication("news", 1));
    EXPECT_EQ(poll(1), 1u);
    EXPECT_TRUE(a.frames.empty());
    EXPECT_EQ(b.frames.size(), 1u);
}

TEST_F(ChannelRouterLoopsTest, PublicationsOfAChannelArriveInOrder) {
    RecordingSubscriber on0;
    subscribe(0, &on0, "news");
    for (std::uint64_t offset = 1; offset <= 5; ++offset) router.onPublication(publication("news", offset));
    EXPECT_EQ(poll(0), 1u) << "one handler drains every delivery waiting for the loop";
    ASSERT_EQ(on0.frames.size(), 5u);
    for (std::uint64_t offset = 1; offset <= 5; ++offset)
        EXPECT_EQ(nlohmann::json::parse(*on0.frames[offset - 1])["offset"], offset);
}

}  // namespace
}  // namespace wspush
