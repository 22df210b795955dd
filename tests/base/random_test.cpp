#include "base/random.h"

#include <string>
#include <unordered_set>

#include <gtest/gtest.h>

namespace wspush {
namespace {

TEST(RandomHex, HasTwoLowercaseHexDigitsPerByte) {
    for (std::size_t bytes : {0u, 1u, 4u, 8u, 16u, 32u, 100u}) {
        std::string text = randomHex(bytes);
        EXPECT_EQ(text.size(), 2 * bytes);
        EXPECT_EQ(text.find_first_not_of("0123456789abcdef"), std::string::npos) << text;
    }
}

TEST(RandomHex, ManyDrawsAreDistinct) {
    // 64-bit draws: a repeat among 100,000 has a probability of about 3e-10.
    std::unordered_set<std::string> seen;
    for (int i = 0; i < 100'000; ++i) EXPECT_TRUE(seen.insert(randomHex(8)).second) << "repeated after " << i;
}

TEST(RandomHex, UsesEveryDigitInEveryPosition) {
    // A stuck nibble (a broken hex encoding) would leave some digit out of some position.
    std::unordered_set<char> digits[32];
    for (int i = 0; i < 2000; ++i) {
        std::string text = randomHex(16);
        for (std::size_t position = 0; position < text.size(); ++position) digits[position].insert(text[position]);
    }
    for (const auto& seen : digits) EXPECT_EQ(seen.size(), 16u);
}

}  // namespace
}  // namespace wspush
