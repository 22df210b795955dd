#include "base/token_bucket.h"

#include <gtest/gtest.h>

namespace wspush {
namespace {

using namespace std::chrono_literals;

class TokenBucketTest : public ::testing::Test {
protected:
    TokenBucket::TimePoint start = std::chrono::steady_clock::now();
};

TEST_F(TokenBucketTest, StartsFullAndRefusesPastTheBurst) {
    TokenBucket bucket(10, 3, start);
    EXPECT_TRUE(bucket.take(start));
    EXPECT_TRUE(bucket.take(start));
    EXPECT_TRUE(bucket.take(start));
    EXPECT_FALSE(bucket.take(start));
    EXPECT_FALSE(bucket.take(start));
}

TEST_F(TokenBucketTest, RefillsAtTheRate) {
    TokenBucket bucket(10, 2, start);
    ASSERT_TRUE(bucket.take(start));
    ASSERT_TRUE(bucket.take(start));
    EXPECT_FALSE(bucket.take(start + 99ms));  // 0.99 of a token
    EXPECT_TRUE(bucket.take(start + 100ms));
    EXPECT_FALSE(bucket.take(start + 100ms));
    EXPECT_TRUE(bucket.take(start + 200ms));
}

TEST_F(TokenBucketTest, SavesAtMostTheBurst) {
    TokenBucket bucket(100, 2, start);
    ASSERT_TRUE(bucket.take(start));
    ASSERT_TRUE(bucket.take(start));
    auto later = start + 1h;  // 360,000 tokens' worth of time
    EXPECT_TRUE(bucket.full(later));
    EXPECT_DOUBLE_EQ(bucket.tokens(later), 2);
    EXPECT_TRUE(bucket.take(later));
    EXPECT_TRUE(bucket.take(later));
    EXPECT_FALSE(bucket.take(later));
}

TEST_F(TokenBucketTest, ARefusalTakesNothing) {
    TokenBucket bucket(1, 1, start);
    ASSERT_TRUE(bucket.take(start));
    for (int i = 1; i < 10; ++i) EXPECT_FALSE(bucket.take(start + i * 99ms));  // 0.891 s
    EXPECT_TRUE(bucket.take(start + 1s));  // a flood of refusals did not push the next token back
}

TEST_F(TokenBucketTest, FractionalRatesAccumulate) {
    TokenBucket bucket(0.5, 1, start);  // one token every two seconds
    ASSERT_TRUE(bucket.take(start));
    EXPECT_FALSE(bucket.take(start + 1s));
    EXPECT_FALSE(bucket.take(start + 1999ms));
    EXPECT_TRUE(bucket.take(start + 2s));
}

TEST_F(TokenBucketTest, TimeGoingBackAddsNothing) {
    TokenBucket bucket(10, 1, start);
    ASSERT_TRUE(bucket.take(start + 1s));
    EXPECT_FALSE(bucket.take(start));  // an earlier instant: no tokens, and no debt either
    EXPECT_FALSE(bucket.take(start + 1s));
    EXPECT_TRUE(bucket.take(start + 1100ms));
}

TEST_F(TokenBucketTest, FullOnlyOnceEveryTokenIsBack) {
    TokenBucket bucket(2, 4, start);
    EXPECT_TRUE(bucket.full(start));
    ASSERT_TRUE(bucket.take(start));
    EXPECT_FALSE(bucket.full(start + 499ms));
    EXPECT_TRUE(bucket.full(start + 500ms));
}

}  // namespace
}  // namespace wspush
