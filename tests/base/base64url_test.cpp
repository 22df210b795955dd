#include "base/base64url.h"

#include <string>

#include <gtest/gtest.h>

namespace wspush {
namespace {

TEST(Base64Url, EncodesTheRfc4648VectorsWithoutPadding) {
    EXPECT_EQ(encodeBase64Url(""), "");
    EXPECT_EQ(encodeBase64Url("f"), "Zg");
    EXPECT_EQ(encodeBase64Url("fo"), "Zm8");
    EXPECT_EQ(encodeBase64Url("foo"), "Zm9v");
    EXPECT_EQ(encodeBase64Url("foob"), "Zm9vYg");
    EXPECT_EQ(encodeBase64Url("fooba"), "Zm9vYmE");
    EXPECT_EQ(encodeBase64Url("foobar"), "Zm9vYmFy");
}

TEST(Base64Url, UsesDashAndUnderscoreWherePlainBase64HasPlusAndSlash) {
    EXPECT_EQ(encodeBase64Url("\xfb\xff"), "-_8");
    EXPECT_EQ(decodeBase64Url("-_8"), "\xfb\xff");
    EXPECT_EQ(decodeBase64Url("+/8"), std::nullopt);
}

TEST(Base64Url, DecodesWhatItEncodes) {
    std::string every;
    for (int i = 0; i < 256; ++i) every += static_cast<char>(i);
    for (std::size_t length = 0; length <= every.size(); ++length) {
        std::string bytes = every.substr(every.size() - length);
        EXPECT_EQ(decodeBase64Url(encodeBase64Url(bytes)), bytes) << length;
    }
}

TEST(Base64Url, RefusesPadding) {
    EXPECT_EQ(decodeBase64Url("Zg=="), std::nullopt);
    EXPECT_EQ(decodeBase64Url("Zm8="), std::nullopt);
    EXPECT_EQ(decodeBase64Url("Zm9v===="), std::nullopt);
}

TEST(Base64Url, RefusesCharactersOutsideTheAlphabet) {
    for (std::string text : {"Zm9v Yg", "Zm9v\nYg", "Zm9v.Yg", "Zm9v\xc3\xa9"}) {
        EXPECT_EQ(decodeBase64Url(text), std::nullopt) << text;
    }
    EXPECT_EQ(decodeBase64Url(std::string("Zm9v\0Yg", 7)), std::nullopt);
}

TEST(Base64Url, RefusesALengthNoByteCountEncodesTo) {
    EXPECT_EQ(decodeBase64Url("Z"), std::nullopt);
    EXPECT_EQ(decodeBase64Url("Zm9vY"), std::nullopt);
}

TEST(Base64Url, RefusesBitsSetPastTheLastByte) {
    // "Zg" is "f"; "Zh" has the same first byte and a stray bit after it: a second encoding of "f".
    EXPECT_EQ(decodeBase64Url("Zg"), "f");
    EXPECT_EQ(decodeBase64Url("Zh"), std::nullopt);
    EXPECT_EQ(decodeBase64Url("Zm8"), "fo");
    EXPECT_EQ(decodeBase64Url("Zm9"), std::nullopt);
}

}  // namespace
}  // namespace wspush
