#include "node/local_hub.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace wspush {
namespace {

class RecordingSubscriber : public Subscriber {
public:
    void deliver(const PublicationPtr& publication, const SharedFrame& frame) override {
        frames.push_back(frame);
        offsets.push_back(publication->offset);
    }
    void lost(const std::string& channel) override { lostChannels.push_back(channel); }
    std::vector<std::string> texts() const {
        std::vector<std::string> out;
        for (const auto& f : frames) out.push_back(*f);
        return out;
    }
    std::vector<SharedFrame> frames;
    std::vector<std::uint64_t> offsets;
    std::vector<std::string> lostChannels;
};

PublicationPtr publication(std::string channel, std::uint64_t offset, std::string epoch = "E") {
    auto p = std::make_shared<Publication>();
    p->channel = std::move(channel);
    p->offset = offset;
    p->epoch = std::move(epoch);
    return p;
}

SharedFrame frame(std::string text) {
    return std::make_shared<const std::string>(std::move(text));
}

// Adds `s` to `channel` already live at {offset, "E"}.
void addLive(LocalHub& hub, const std::string& channel, Subscriber* s, std::uint64_t offset = 0) {
    hub.add(channel, s);
    hub.goLive(channel, s, StreamPosition{offset, "E"});
}

void deliver(LocalHub& hub, const std::string& channel, std::uint64_t offset, std::string epoch = "E") {
    hub.deliver(publication(channel, offset, std::move(epoch)), frame(channel + "#" + std::to_string(offset)));
}

using Offsets = std::vector<std::uint64_t>;

TEST(LocalHubTest, AddRemoveContains) {
    LocalHub hub;
    RecordingSubscriber a;
    EXPECT_FALSE(hub.contains("news"));
    addLive(hub, "news", &a);
    EXPECT_TRUE(hub.contains("news"));
    EXPECT_EQ(hub.channelCount(), 1u);
    EXPECT_TRUE(hub.remove("news", &a)) << "the last subscriber of the channel on this loop";
    EXPECT_FALSE(hub.contains("news"));
    EXPECT_FALSE(hub.remove("news", &a)) << "unknown now";
    EXPECT_FALSE(hub.remove("other", &a));
}

TEST(LocalHubTest, RemoveReturnsTrueOnlyForTheLastSubscriber) {
    LocalHub hub;
    RecordingSubscriber a, b;
    addLive(hub, "news", &a);
    addLive(hub, "news", &b);
    EXPECT_FALSE(hub.remove("news", &a));
    deliver(hub, "news", 1);
    EXPECT_TRUE(a.offsets.empty()) << "removed: gets nothing";
    EXPECT_EQ(b.offsets, Offsets{1});
    EXPECT_TRUE(hub.remove("news", &b));
}

TEST(LocalHubTest, DeliversTheSameSharedFrameToEverySubscriberOfThatChannelOnly) {
    LocalHub hub;
    RecordingSubscriber a, b, other;
    addLive(hub, "news", &a);
    addLive(hub, "news", &b);
    addLive(hub, "sport", &other);
    auto shared = frame("payload");
    EXPECT_EQ(hub.deliver(publication("news", 1), shared), 2u);
    ASSERT_EQ(a.frames.size(), 1u);
    EXPECT_EQ(a.frames[0].get(), shared.get()) << "encoded once, shared";
    EXPECT_EQ(b.frames[0].get(), shared.get());
    EXPECT_TRUE(other.frames.empty());
    EXPECT_EQ(hub.deliver(publication("nobody", 1), shared), 0u);
}

TEST(LocalHubTest, LiveEntriesSkipWhatTheyHaveAndTakeTheNextOne) {
    LocalHub hub;
    RecordingSubscriber a, b;
    addLive(hub, "news", &a, 5);
    addLive(hub, "news", &b, 6);
    deliver(hub, "news", 5);  // a has it (recovered), b too
    deliver(hub, "news", 6);
    deliver(hub, "news", 7);
    deliver(hub, "news", 7);  // a repeat changes nothing
    EXPECT_EQ(a.offsets, (Offsets{6, 7}));
    EXPECT_EQ(b.offsets, (Offsets{7}));
    EXPECT_TRUE(a.lostChannels.empty());
    EXPECT_EQ(hub.positionOf("news", &a)->offset, 7u);
    EXPECT_EQ(hub.positionOf("news", &a)->epoch, "E");
}

TEST(LocalHubTest, AGapLosesTheSubscriptionAndNothingMoreIsDelivered) {
    LocalHub hub;
    RecordingSubscriber a, b;
    addLive(hub, "news", &a, 3);
    addLive(hub, "news", &b, 4);
    deliver(hub, "news", 5);  // a misses 4: never a silent gap
    EXPECT_TRUE(a.offsets.empty());
    EXPECT_EQ(a.lostChannels, std::vector<std::string>{"news"});
    EXPECT_EQ(b.offsets, Offsets{5});
    deliver(hub, "news", 6);
    EXPECT_TRUE(a.offsets.empty()) << "a lost entry takes nothing until it is removed";
    EXPECT_EQ(a.lostChannels.size(), 1u) << "told once";
    EXPECT_FALSE(hub.positionOf("news", &a));
    EXPECT_FALSE(hub.remove("news", &a));
    EXPECT_TRUE(hub.remove("news", &b));
}

TEST(LocalHubTest, AnotherEpochLosesTheSubscriptionEvenAtAnOffsetItHad) {
    LocalHub hub;
    RecordingSubscriber a;
    addLive(hub, "news", &a, 10);
    deliver(hub, "news", 1, "F");  // the stream restarted
    EXPECT_TRUE(a.offsets.empty());
    EXPECT_EQ(a.lostChannels, std::vector<std::string>{"news"});
}

TEST(LocalHubTest, BuffersUntilThePositionIsKnownThenDeliversWhatLiesPastIt) {
    LocalHub hub;
    RecordingSubscriber a;
    hub.add("news", &a);
    deliver(hub, "news", 41);
    deliver(hub, "news", 42);
    deliver(hub, "news", 43);
    EXPECT_TRUE(a.offsets.empty()) << "position unknown: buffered";
    EXPECT_FALSE(hub.positionOf("news", &a));
    hub.goLive("news", &a, StreamPosition{41, "E"});  // recovery delivered up to 41
    EXPECT_EQ(a.offsets, (Offsets{42, 43}));
    deliver(hub, "news", 44);
    EXPECT_EQ(a.offsets, (Offsets{42, 43, 44}));
    EXPECT_TRUE(a.lostChannels.empty());
}

TEST(LocalHubTest, ABufferThatStartsAfterAGapIsLostAtGoLive) {
    LocalHub hub;
    RecordingSubscriber a;
    hub.add("news", &a);
    deliver(hub, "news", 45);
    hub.goLive("news", &a, StreamPosition{43, "E"});
    EXPECT_TRUE(a.offsets.empty());
    EXPECT_EQ(a.lostChannels, std::vector<std::string>{"news"});
}

TEST(LocalHubTest, ABufferOverflowIsLostAtGoLiveNotBefore) {
    LocalHub hub;
    RecordingSubscriber a;
    hub.add("news", &a);
    for (std::uint64_t offset = 1; offset <= LocalHub::kMaxBuffered + 1; ++offset) deliver(hub, "news", offset);
    EXPECT_TRUE(a.lostChannels.empty()) << "told when the subscriber can act on it";
    hub.goLive("news", &a, StreamPosition{0, "E"});
    EXPECT_TRUE(a.offsets.empty());
    EXPECT_EQ(a.lostChannels, std::vector<std::string>{"news"});
}

TEST(LocalHubTest, GoLiveAndPositionOfIgnoreUnknownChannelsAndSubscribers) {
    LocalHub hub;
    RecordingSubscriber a, b;
    hub.goLive("news", &a, StreamPosition{1, "E"});
    EXPECT_FALSE(hub.positionOf("news", &a));
    addLive(hub, "news", &a);
    hub.goLive("news", &b, StreamPosition{1, "E"});
    EXPECT_FALSE(hub.positionOf("news", &b));
    EXPECT_EQ(hub.positionOf("news", &a)->offset, 0u);
}

TEST(LocalHubTest, SameSubscriberOnSeveralChannelsHasAPositionInEach) {
    LocalHub hub;
    RecordingSubscriber a;
    addLive(hub, "news", &a, 0);
    addLive(hub, "sport", &a, 10);
    deliver(hub, "news", 1);
    deliver(hub, "sport", 11);
    EXPECT_EQ(a.offsets, (Offsets{1, 11}));
    EXPECT_EQ(hub.positionOf("news", &a)->offset, 1u);
    EXPECT_EQ(hub.positionOf("sport", &a)->offset, 11u);
}

}  // namespace
}  // namespace wspush
