#include "base/string_hash.h"

#include <string>
#include <string_view>
#include <unordered_map>

#include <gtest/gtest.h>

namespace wspush {
namespace {

TEST(StringHash, FindsStringKeysByViewAndLiteral) {
    std::unordered_map<std::string, int, StringHash, std::equal_to<>> map{{"news", 1}, {"chat:1", 2}};
    std::string_view view = "chat:1";
    ASSERT_NE(map.find(view), map.end());
    EXPECT_EQ(map.find(view)->second, 2);
    EXPECT_TRUE(map.contains("news"));
    EXPECT_FALSE(map.contains(std::string_view("new")));
    EXPECT_EQ(StringHash{}(std::string("news")), StringHash{}(std::string_view("news")));
}

}  // namespace
}  // namespace wspush
