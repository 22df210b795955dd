#include "base/constant_time.h"

#include <string>

#include <gtest/gtest.h>

namespace wspush {
namespace {

TEST(ConstantTimeEquals, IsEqualityOfTheBytes) {
    EXPECT_TRUE(constantTimeEquals("", ""));
    EXPECT_TRUE(constantTimeEquals("0123456789abcdef", "0123456789abcdef"));
    EXPECT_FALSE(constantTimeEquals("0123456789abcdef", "1123456789abcdef")) << "first byte";
    EXPECT_FALSE(constantTimeEquals("0123456789abcdef", "0123456789abcdee")) << "last byte";
    EXPECT_FALSE(constantTimeEquals("0123456789abcdef", "0123456789abcde")) << "a prefix";
    EXPECT_FALSE(constantTimeEquals("", "x"));
    EXPECT_TRUE(constantTimeEquals(std::string("a\0b", 3), std::string("a\0b", 3)));
    EXPECT_FALSE(constantTimeEquals(std::string("a\0b", 3), std::string("a\0c", 3))) << "past a NUL";
}

}  // namespace
}  // namespace wspush
