#include "session/command_rate_limit.h"

#include <gtest/gtest.h>

namespace wspush {
namespace {

using namespace std::chrono_literals;
using Verdict = CommandRateLimit::Verdict;

LimitsConfig limits(double commandsPerSecond, std::size_t burst, double history = 0, double presence = 0) {
    LimitsConfig config;
    config.commands_per_second = commandsPerSecond;
    config.commands_burst = burst;
    config.history_reads_per_second = history;
    config.presence_reads_per_second = presence;
    return config;
}

class CommandRateLimitTest : public ::testing::Test {
protected:
    CommandRateLimit::TimePoint start = std::chrono::steady_clock::now();
};

TEST_F(CommandRateLimitTest, WithoutLimitsEverythingIsAllowed) {
    CommandRateLimit rates(limits(0, 0), start);
    EXPECT_FALSE(rates.active());
    for (int i = 0; i < 10000; ++i) ASSERT_EQ(rates.check(CommandType::Publish, start), Verdict::Allowed);
}

TEST_F(CommandRateLimitTest, TheBurstThenTheRate) {
    CommandRateLimit rates(limits(10, 5), start);
    EXPECT_TRUE(rates.active());
    for (int i = 0; i < 5; ++i) EXPECT_EQ(rates.check(CommandType::Publish, start), Verdict::Allowed) << i;
    EXPECT_EQ(rates.check(CommandType::Subscribe, start), Verdict::TooFast);
    EXPECT_EQ(rates.check(CommandType::Publish, start + 100ms), Verdict::Allowed);
    EXPECT_EQ(rates.check(CommandType::Publish, start + 100ms), Verdict::TooFast);
}

TEST_F(CommandRateLimitTest, TheBurstDefaultsToTwiceTheRate) {
    EXPECT_EQ(CommandRateLimit::commandsBurst(limits(50, 0)), 100);
    EXPECT_EQ(CommandRateLimit::commandsBurst(limits(50, 7)), 7);
    EXPECT_EQ(CommandRateLimit::commandsBurst(limits(0.2, 0)), 1);
    CommandRateLimit rates(limits(2, 0), start);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(rates.check(CommandType::Ping, start), Verdict::Allowed);
    EXPECT_EQ(rates.check(CommandType::Ping, start), Verdict::TooFast);
}

TEST_F(CommandRateLimitTest, QosAnswersAreNeverRefusedAndCostNothing) {
    CommandRateLimit rates(limits(1, 1), start);
    ASSERT_EQ(rates.check(CommandType::Publish, start), Verdict::Allowed);
    for (int i = 0; i < 1000; ++i) {
        ASSERT_EQ(rates.check(CommandType::Ack, start), Verdict::Allowed);
        ASSERT_EQ(rates.check(CommandType::Rec, start), Verdict::Allowed);
        ASSERT_EQ(rates.check(CommandType::Comp, start), Verdict::Allowed);
        ASSERT_EQ(rates.check(CommandType::Pubrel, start), Verdict::Allowed);
    }
    EXPECT_EQ(rates.check(CommandType::Publish, start + 1s), Verdict::Allowed);
}

TEST_F(CommandRateLimitTest, PiecesThatDidNotParseCostATokenToo) {
    CommandRateLimit rates(limits(1, 2), start);
    EXPECT_EQ(rates.check(std::nullopt, start), Verdict::Allowed);
    EXPECT_EQ(rates.check(std::nullopt, start), Verdict::Allowed);
    EXPECT_EQ(rates.check(std::nullopt, start), Verdict::TooFast);
}

TEST_F(CommandRateLimitTest, MoreThanABurstOfRefusalsInARowIsAFlood) {
    CommandRateLimit rates(limits(10, 3), start);
    for (int i = 0; i < 3; ++i) ASSERT_EQ(rates.check(CommandType::Publish, start), Verdict::Allowed);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(rates.check(CommandType::Publish, start), Verdict::TooFast) << i;
    EXPECT_EQ(rates.check(CommandType::Publish, start), Verdict::Flooding);
}

TEST_F(CommandRateLimitTest, AClientThatSlowsDownIsNeverAFlood) {
    // Twice as fast as allowed, for a long time: half is refused, but a command gets through
    // between refusals, so the connection stays.
    CommandRateLimit rates(limits(10, 2), start);
    int allowed = 0;
    for (int i = 0; i < 2000; ++i) {
        Verdict verdict = rates.check(CommandType::Publish, start + i * 50ms);
        ASSERT_NE(verdict, Verdict::Flooding) << i;
        allowed += verdict == Verdict::Allowed;
    }
    EXPECT_NEAR(allowed, 1000, 5);
}

TEST_F(CommandRateLimitTest, AcksBetweenRefusalsDoNotResetTheFloodCount) {
    CommandRateLimit rates(limits(10, 2), start);
    for (int i = 0; i < 2; ++i) ASSERT_EQ(rates.check(CommandType::Publish, start), Verdict::Allowed);
    EXPECT_EQ(rates.check(CommandType::Publish, start), Verdict::TooFast);
    EXPECT_EQ(rates.check(CommandType::Ack, start), Verdict::Allowed);
    EXPECT_EQ(rates.check(CommandType::Publish, start), Verdict::TooFast);
    EXPECT_EQ(rates.check(CommandType::Publish, start), Verdict::Flooding);
}

TEST_F(CommandRateLimitTest, HistoryAndPresenceReadsHaveBucketsOfTheirOwn) {
    CommandRateLimit rates(limits(100, 100, 2, 1), start);
    EXPECT_EQ(rates.check(CommandType::History, start), Verdict::Allowed);
    EXPECT_EQ(rates.check(CommandType::History, start), Verdict::Allowed);
    EXPECT_EQ(rates.check(CommandType::History, start), Verdict::HistoryTooFast);
    EXPECT_EQ(rates.check(CommandType::Presence, start), Verdict::Allowed);
    EXPECT_EQ(rates.check(CommandType::PresenceStats, start), Verdict::PresenceTooFast);
    EXPECT_EQ(rates.check(CommandType::Publish, start), Verdict::Allowed);  // other commands go on
    EXPECT_EQ(rates.check(CommandType::History, start + 500ms), Verdict::Allowed);
    EXPECT_EQ(rates.check(CommandType::PresenceStats, start + 1s), Verdict::Allowed);
}

TEST_F(CommandRateLimitTest, ReadRefusalsNeverCloseTheConnection) {
    CommandRateLimit rates(limits(1000, 1000, 1, 0), start);
    ASSERT_EQ(rates.check(CommandType::History, start), Verdict::Allowed);
    for (int i = 0; i < 500; ++i) ASSERT_EQ(rates.check(CommandType::History, start), Verdict::HistoryTooFast);
}

TEST_F(CommandRateLimitTest, ReadLimitsWorkWithoutACommandLimit) {
    CommandRateLimit rates(limits(0, 0, 1, 0), start);
    EXPECT_TRUE(rates.active());
    EXPECT_EQ(rates.check(CommandType::History, start), Verdict::Allowed);
    EXPECT_EQ(rates.check(CommandType::History, start), Verdict::HistoryTooFast);
    EXPECT_EQ(rates.check(CommandType::Presence, start), Verdict::Allowed);
}

}  // namespace
}  // namespace wspush
