#include "node/user_connection_count.h"

#include <vector>

#include <gtest/gtest.h>

namespace wspush {
namespace {

TEST(UserConnectionCount, RefusesPastTheLimitPerUser) {
    UserConnectionCount count(2);
    auto a = count.admit("alice");
    auto b = count.admit("alice");
    ASSERT_TRUE(a && b);
    EXPECT_FALSE(count.admit("alice"));
    EXPECT_TRUE(count.admit("bob"));  // bob's slot ends at once
    EXPECT_EQ(count.connectionsOf("alice"), 2u);

    a->reset();
    EXPECT_EQ(count.connectionsOf("alice"), 1u);
    EXPECT_TRUE(count.admit("alice"));
}

TEST(UserConnectionCount, AnonymousConnectionsAreNotCounted) {
    UserConnectionCount count(1);
    std::vector<UserConnectionCount::Slot> slots;
    for (int i = 0; i < 10; ++i) {
        auto slot = count.admit("");
        ASSERT_TRUE(slot);
        slots.push_back(std::move(*slot));
    }
    EXPECT_EQ(count.users(), 0u);
}

TEST(UserConnectionCount, WithoutALimitNothingIsCounted) {
    UserConnectionCount count(0);
    auto slot = count.admit("alice");
    ASSERT_TRUE(slot);
    EXPECT_EQ(count.connectionsOf("alice"), 0u);
    EXPECT_EQ(count.users(), 0u);
}

TEST(UserConnectionCount, AUserIsForgottenWithItsLastConnection) {
    UserConnectionCount count(3);
    {
        auto a = count.admit("alice");
        UserConnectionCount::Slot moved = std::move(*a);
        EXPECT_EQ(count.users(), 1u);
    }
    EXPECT_EQ(count.users(), 0u);
    EXPECT_EQ(count.connectionsOf("alice"), 0u);
}

}  // namespace
}  // namespace wspush
