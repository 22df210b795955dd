#include "node/local_hub.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace wspush {
namespace {

class RecordingSubscriber : public Subscriber {
public:
    void deliver(const PublicationPtr&, const SharedFrame& frame) override { frames.push_back(frame); }
    std::vector<std::string> texts() const {
        std::vector<std::string> out;
        for (const auto& f : frames) out.push_back(*f);
        return out;
    }
    std::vector<SharedFrame> frames;
};

PublicationPtr publication(std::string channel, std::uint64_t offset) {
    auto p = std::make_shared<Publication>();
    p->channel = std::move(channel);
    p->offset = offset;
    return p;
}

SharedFrame frame(std::string text) {
    return std::make_shared<const std::string>(std::move(text));
}

using Texts = std::vector<std::string>;

TEST(LocalHubTest, AddRemoveContains) {
    LocalHub hub;
    RecordingSubscriber a;
    EXPECT_FALSE(hub.contains("news"));
    EXPECT_EQ(hub.channelCount(), 0u);
    hub.add("news", &a, 0);
    EXPECT_TRUE(hub.contains("news"));
    EXPECT_FALSE(hub.contains("new"));
    EXPECT_EQ(hub.channelCount(), 1u);
    hub.add("chat:1", &a, 0);
    EXPECT_EQ(hub.channelCount(), 2u);
    EXPECT_TRUE(hub.remove("news", &a));
    EXPECT_FALSE(hub.contains("news"));
    EXPECT_TRUE(hub.contains("chat:1"));
    EXPECT_EQ(hub.channelCount(), 1u);
}

TEST(LocalHubTest, RemoveReturnsTrueOnlyForTheLastSubscriber) {
    LocalHub hub;
    RecordingSubscriber a, b, c;
    hub.add("news", &a, 0);
    hub.add("news", &b, 0);
    hub.add("news", &c, 0);
    EXPECT_FALSE(hub.remove("news", &b));
    EXPECT_TRUE(hub.contains("news"));
    EXPECT_FALSE(hub.remove("news", &a));
    EXPECT_TRUE(hub.remove("news", &c));
    EXPECT_FALSE(hub.contains("news"));
}

TEST(LocalHubTest, RemovingAnUnknownSubscriberOrChannelReturnsFalse) {
    LocalHub hub;
    RecordingSubscriber a, b;
    EXPECT_FALSE(hub.remove("news", &a));
    hub.add("news", &a, 0);
    EXPECT_FALSE(hub.remove("news", &b));
    EXPECT_TRUE(hub.contains("news"));
    EXPECT_FALSE(hub.remove("other", &a));
}

TEST(LocalHubTest, RemovedSubscriberGetsNothingAndOthersStillDo) {
    LocalHub hub;
    RecordingSubscriber a, b, c;
    hub.add("news", &a, 0);
    hub.add("news", &b, 0);
    hub.add("news", &c, 0);
    hub.remove("news", &a);  // the swap-with-last removal must keep b and c
    hub.deliver(publication("news", 1), frame("m1"));
    EXPECT_TRUE(a.frames.empty());
    EXPECT_EQ(b.texts(), Texts{"m1"});
    EXPECT_EQ(c.texts(), Texts{"m1"});
}

TEST(LocalHubTest, DeliversTheSameSharedFrameToEverySubscriber) {
    LocalHub hub;
    RecordingSubscriber a, b;
    hub.add("news", &a, 0);
    hub.add("news", &b, 0);
    SharedFrame f = frame("payload");
    hub.deliver(publication("news", 1), f);
    ASSERT_EQ(a.frames.size(), 1u);
    ASSERT_EQ(b.frames.size(), 1u);
    EXPECT_EQ(a.frames[0].get(), f.get());
    EXPECT_EQ(b.frames[0].get(), f.get());
}

TEST(LocalHubTest, DeliversOnlyToSubscribersOfThatChannel) {
    LocalHub hub;
    RecordingSubscriber news, chat;
    hub.add("news", &news, 0);
    hub.add("chat:1", &chat, 0);
    hub.deliver(publication("news", 1), frame("n1"));
    hub.deliver(publication("chat:1", 1), frame("c1"));
    EXPECT_EQ(news.texts(), Texts{"n1"});
    EXPECT_EQ(chat.texts(), Texts{"c1"});
}

TEST(LocalHubTest, SinceOffsetFiltersPublicationsAtOrBelowIt) {
    LocalHub hub;
    RecordingSubscriber a;
    hub.add("news", &a, 5);
    for (std::uint64_t offset = 4; offset <= 7; ++offset)
        hub.deliver(publication("news", offset), frame(std::to_string(offset)));
    EXPECT_EQ(a.texts(), (Texts{"6", "7"}));
}

TEST(LocalHubTest, SinceOffsetIsPerSubscriber) {
    LocalHub hub;
    RecordingSubscriber early, late;
    hub.add("news", &early, 0);
    hub.add("news", &late, 2);
    for (std::uint64_t offset = 1; offset <= 3; ++offset)
        hub.deliver(publication("news", offset), frame(std::to_string(offset)));
    EXPECT_EQ(early.texts(), (Texts{"1", "2", "3"}));
    EXPECT_EQ(late.texts(), (Texts{"3"}));
}

TEST(LocalHubTest, HoldAllHoldsEverythingUntilSetSince) {
    LocalHub hub;
    RecordingSubscriber a, other;
    hub.add("news", &other, 0);
    hub.add("news", &a, LocalHub::kHoldAll);
    hub.deliver(publication("news", 1), frame("1"));
    hub.deliver(publication("news", 2), frame("2"));
    EXPECT_TRUE(a.frames.empty());
    EXPECT_EQ(other.texts(), (Texts{"1", "2"}));
    hub.setSince("news", &a, 2);
    hub.deliver(publication("news", 2), frame("2 again"));
    hub.deliver(publication("news", 3), frame("3"));
    EXPECT_EQ(a.texts(), (Texts{"3"}));
    // `other` had offset 2 already: each entry remembers its last offset, so no repeat reaches it.
    EXPECT_EQ(other.texts(), (Texts{"1", "2", "3"}));
}

TEST(LocalHubTest, EachEntryRemembersItsLastOffsetForMovesAndRepeats) {
    LocalHub hub;
    RecordingSubscriber a, stand_in;
    hub.add("news", &a, 0);
    hub.deliver(publication("news", 4), frame("4"));
    EXPECT_EQ(hub.sinceOf("news", &a), 4u);
    hub.deliver(publication("news", 3), frame("late 3"));
    EXPECT_EQ(a.texts(), (Texts{"4"}));
    hub.replace("news", &a, &stand_in, 6);
    hub.deliver(publication("news", 6), frame("6"));
    hub.deliver(publication("news", 7), frame("7"));
    EXPECT_EQ(stand_in.texts(), (Texts{"7"}));
    EXPECT_EQ(a.texts(), (Texts{"4"}));
    EXPECT_EQ(hub.sinceOf("news", &stand_in), 7u);
    EXPECT_EQ(hub.sinceOf("news", &a), 0u);
}

TEST(LocalHubTest, SetSinceOnUnknownChannelOrSubscriberIsANoOp) {
    LocalHub hub;
    RecordingSubscriber a, b;
    hub.setSince("news", &a, 0);
    EXPECT_FALSE(hub.contains("news"));
    hub.add("news", &a, LocalHub::kHoldAll);
    hub.setSince("news", &b, 0);
    hub.deliver(publication("news", 1), frame("1"));
    EXPECT_TRUE(a.frames.empty());
}

TEST(LocalHubTest, SameSubscriberOnSeveralChannels) {
    LocalHub hub;
    RecordingSubscriber a;
    hub.add("x", &a, 0);
    hub.add("y", &a, LocalHub::kHoldAll);
    hub.setSince("y", &a, 0);
    hub.deliver(publication("x", 1), frame("x1"));
    hub.deliver(publication("y", 1), frame("y1"));
    EXPECT_EQ(a.texts(), (Texts{"x1", "y1"}));
    EXPECT_TRUE(hub.remove("x", &a));
    hub.deliver(publication("x", 2), frame("x2"));
    hub.deliver(publication("y", 2), frame("y2"));
    EXPECT_EQ(a.texts(), (Texts{"x1", "y1", "y2"}));
}

TEST(LocalHubTest, DeliverForUnknownChannelIsANoOp) {
    LocalHub hub;
    RecordingSubscriber a;
    hub.add("news", &a, 0);
    hub.deliver(publication("other", 1), frame("o"));
    EXPECT_TRUE(a.frames.empty());
    EXPECT_FALSE(hub.contains("other"));
    EXPECT_EQ(hub.channelCount(), 1u);
}

}  // namespace
}  // namespace wspush
