#include "session/inbox_progress.h"

#include <gtest/gtest.h>

namespace wspush {
namespace {

Publication message(std::uint64_t offset, std::string epoch = "e") {
    Publication publication;
    publication.offset = offset;
    publication.epoch = std::move(epoch);
    return publication;
}

TEST(InboxProgressTest, StartsAtTheDevicesCursor) {
    InboxProgress progress(StreamPosition{7, "e"});
    EXPECT_EQ(progress.cursor().offset, 7u);
    EXPECT_EQ(progress.cursor().epoch, "e");
}

TEST(InboxProgressTest, QosZeroIsFinishedWhenDelivered) {
    InboxProgress progress(StreamPosition{0, "e"});
    progress.delivered(message(1), true);
    progress.delivered(message(2), true);
    EXPECT_EQ(progress.cursor().offset, 2u);
}

TEST(InboxProgressTest, AnUnacknowledgedMessageHoldsTheCursorBelowIt) {
    InboxProgress progress(StreamPosition{0, "e"});
    progress.delivered(message(1), false);
    progress.delivered(message(2), false);
    progress.delivered(message(3), true);
    EXPECT_EQ(progress.cursor().offset, 0u);
    progress.finished(2);  // acknowledged out of order: 1 is still open
    EXPECT_EQ(progress.cursor().offset, 0u);
    progress.finished(1);
    EXPECT_EQ(progress.cursor().offset, 3u);
    progress.finished(9);  // unknown: ignored
    EXPECT_EQ(progress.cursor().offset, 3u);
}

TEST(InboxProgressTest, ANewEpochStartsOver) {
    InboxProgress progress(StreamPosition{40, "old"});
    progress.delivered(message(1, "new"), false);
    EXPECT_EQ(progress.cursor().offset, 0u);
    EXPECT_EQ(progress.cursor().epoch, "new");
    progress.finished(1);
    EXPECT_EQ(progress.cursor().offset, 1u);
}

}  // namespace
}  // namespace wspush
