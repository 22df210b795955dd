#include "wspush/channel_name.h"

#include <string>

#include <gtest/gtest.h>

namespace wspush {
namespace {

TEST(ChannelNameTest, LengthIsOneTo255Bytes) {
    EXPECT_FALSE(isValidChannelName(""));
    EXPECT_TRUE(isValidChannelName("a"));
    EXPECT_TRUE(isValidChannelName(std::string(255, 'a')));
    EXPECT_FALSE(isValidChannelName(std::string(256, 'a')));
    EXPECT_EQ(kMaxChannelNameLength, 255u);
}

TEST(ChannelNameTest, LettersAndDigitsAreAllowed) {
    EXPECT_TRUE(isValidChannelName("abcdefghijklmnopqrstuvwxyz"));
    EXPECT_TRUE(isValidChannelName("ABCDEFGHIJKLMNOPQRSTUVWXYZ"));
    EXPECT_TRUE(isValidChannelName("0123456789"));
}

TEST(ChannelNameTest, EveryAllowedPunctuationCharacter) {
    for (char c : std::string("_-.:@/=+!#,")) {
        EXPECT_EQ(isValidChannelName(std::string(1, c)), c != ':') << c;  // ':' may not lead: no empty namespace
        EXPECT_TRUE(isValidChannelName(std::string{'a', c, 'b'})) << c;
    }
}

TEST(ChannelNameTest, DisallowedCharacters) {
    for (std::string bad : {" ", "\"", "\\", "\n", "\r", "\t", "$", "%", "&", "*", "?", "'", ";",
                            "<", ">",  "[",  "]",  "{",  "}",  "(", ")", "|", "~", "^", "`"}) {
        EXPECT_FALSE(isValidChannelName(bad)) << static_cast<int>(bad[0]);
        EXPECT_FALSE(isValidChannelName("news" + bad)) << static_cast<int>(bad[0]);
    }
    EXPECT_FALSE(isValidChannelName(std::string("a\0b", 3)));
}

TEST(ChannelNameTest, NonAsciiBytesAreDisallowed) {
    EXPECT_FALSE(isValidChannelName("caf\xc3\xa9"));  // "café" in UTF-8
    EXPECT_FALSE(isValidChannelName("\x80"));
    EXPECT_FALSE(isValidChannelName("\xff"));
    EXPECT_FALSE(isValidChannelName("\x7f"));
}

TEST(ChannelNameTest, EveryByteOutsideTheAllowedSetIsRejected) {
    const std::string allowed = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.:@/=+!#,";
    int accepted = 0;
    for (int byte = 0; byte < 256; ++byte) {
        char c = static_cast<char>(byte);
        bool expected = allowed.find(c) != std::string::npos && c != ':';
        EXPECT_EQ(isValidChannelName(std::string(1, c)), expected) << "byte " << byte;
        accepted += isValidChannelName(std::string(1, c)) ? 1 : 0;
    }
    EXPECT_EQ(accepted, static_cast<int>(allowed.size()) - 1);
}

TEST(NamespaceNameTest, IsAChannelNameWithoutColon) {
    EXPECT_TRUE(isValidNamespaceName("chat"));
    EXPECT_TRUE(isValidNamespaceName("a.b-c_d@e/f=g+h!i#j"));
    EXPECT_TRUE(isValidNamespaceName(std::string(255, 'n')));
    EXPECT_FALSE(isValidNamespaceName(std::string(256, 'n')));
    EXPECT_FALSE(isValidNamespaceName(""));
    EXPECT_FALSE(isValidNamespaceName("chat:room"));
    EXPECT_FALSE(isValidNamespaceName(":"));
    EXPECT_FALSE(isValidNamespaceName("has space"));
}

TEST(ChannelNamespaceTest, IsThePartBeforeTheFirstColon) {
    EXPECT_EQ(channelNamespace("chat:room1"), "chat");
    EXPECT_EQ(channelNamespace("chat:room:1"), "chat");
    EXPECT_EQ(channelNamespace("news"), "");
    EXPECT_EQ(channelNamespace(""), "");
    EXPECT_EQ(channelNamespace(":x"), "");
    EXPECT_EQ(channelNamespace("a:"), "a");
}

}  // namespace
}  // namespace wspush

namespace wspush {
namespace {

TEST(PersonalChannelTest, UserIdsHaveNoCommaBecauseItSeparatesTheUsersOfAUserLimitedChannel) {
    EXPECT_EQ(personalChannel("alice"), "$user:alice");
    EXPECT_EQ(personalChannel("alice,bob"), "");
}

}  // namespace
}  // namespace wspush
