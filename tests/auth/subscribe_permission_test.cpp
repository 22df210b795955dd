#include "auth/subscribe_permission.h"

#include <gtest/gtest.h>

namespace wspush {
namespace {

VerifiedToken tokenFor(std::string user, std::string channel) {
    VerifiedToken token;
    token.subject = std::move(user);
    token.channel = std::move(channel);
    return token;
}

TEST(SubscribePermissionTest, PublicChannelsAreOpenToAnonymousConnections) {
    EXPECT_EQ(subscribeRefusal(SubscribePermission::Public, "news", "", nullptr), std::nullopt);
}

TEST(SubscribePermissionTest, AuthenticatedChannelsNeedAUser) {
    EXPECT_NE(subscribeRefusal(SubscribePermission::Authenticated, "team:a", "", nullptr), std::nullopt);
    EXPECT_EQ(subscribeRefusal(SubscribePermission::Authenticated, "team:a", "alice", nullptr), std::nullopt);
}

TEST(SubscribePermissionTest, UserLimitedChannelsOpenOnlyToTheUsersTheyList) {
    EXPECT_EQ(subscribeRefusal(SubscribePermission::UserLimited, "dialog:alice,bob", "alice", nullptr), std::nullopt);
    EXPECT_EQ(subscribeRefusal(SubscribePermission::UserLimited, "dialog:alice,bob", "bob", nullptr), std::nullopt);
    EXPECT_NE(subscribeRefusal(SubscribePermission::UserLimited, "dialog:alice,bob", "carol", nullptr), std::nullopt);
    EXPECT_NE(subscribeRefusal(SubscribePermission::UserLimited, "dialog:alice,bob", "", nullptr), std::nullopt);
    // Whole names only: neither a prefix nor a suffix of a listed user.
    EXPECT_NE(subscribeRefusal(SubscribePermission::UserLimited, "dialog:alice,bob", "ali", nullptr), std::nullopt);
    EXPECT_NE(subscribeRefusal(SubscribePermission::UserLimited, "dialog:alice,bob", "bobby", nullptr), std::nullopt);
    EXPECT_NE(subscribeRefusal(SubscribePermission::UserLimited, "dialog:alice,bob", "dialog", nullptr), std::nullopt);
}

TEST(SubscribePermissionTest, ChannelListsUserReadsTheNamesAfterTheNamespace) {
    EXPECT_TRUE(channelListsUser("dialog:alice", "alice"));
    EXPECT_TRUE(channelListsUser("dialog:a:b,c", "a:b"));  // the first ':' ends the namespace
    EXPECT_FALSE(channelListsUser("alice", "alice"));      // the default namespace lists nobody
    EXPECT_FALSE(channelListsUser("dialog:,", ""));
    EXPECT_FALSE(channelListsUser("dialog:alice,,bob", ""));
}

TEST(SubscribePermissionTest, TokenChannelsNeedATokenForThisChannelAndThisUser) {
    VerifiedToken right = tokenFor("alice", "secret:room1");
    VerifiedToken otherChannel = tokenFor("alice", "secret:room2");
    VerifiedToken otherUser = tokenFor("bob", "secret:room1");
    EXPECT_NE(subscribeRefusal(SubscribePermission::Token, "secret:room1", "alice", nullptr), std::nullopt);
    EXPECT_EQ(subscribeRefusal(SubscribePermission::Token, "secret:room1", "alice", &right), std::nullopt);
    EXPECT_NE(subscribeRefusal(SubscribePermission::Token, "secret:room1", "alice", &otherChannel), std::nullopt);
    EXPECT_NE(subscribeRefusal(SubscribePermission::Token, "secret:room1", "alice", &otherUser), std::nullopt);
}

}  // namespace
}  // namespace wspush
