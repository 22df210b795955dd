#include "base/bounded_json.h"

#include <string>

#include <gtest/gtest.h>

namespace wspush {
namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

std::string nestedArrays(int levels) {
    return std::string(levels, '[') + std::string(levels, ']');
}

// A publish body carrying `data`.
std::string publishOf(const std::string& data) {
    return R"({"channel":"news","data":)" + data + "}";
}

// {"a":{"a":…{"a":1}…}} with `levels` objects.
std::string nestedObjects(int levels) {
    std::string text;
    for (int i = 0; i < levels; ++i) text += R"({"a":)";
    text += '1';
    text += std::string(levels, '}');
    return text;
}

TEST(BoundedJson, NestingUpToTheLimitIsParsed) {
    for (int levels : {1, kMaxJsonDepth - 1, kMaxJsonDepth}) {
        auto arrays = parseBoundedJson<json>(nestedArrays(levels));
        EXPECT_EQ(arrays.error, JsonParseError::None) << levels;
        EXPECT_EQ(arrays.value.dump(), nestedArrays(levels));
        auto objects = parseBoundedJson<ordered_json>(nestedObjects(levels));
        EXPECT_EQ(objects.error, JsonParseError::None) << levels;
        EXPECT_EQ(objects.value.dump(), nestedObjects(levels));
    }
}

TEST(BoundedJson, OneLevelMoreIsRefused) {
    auto arrays = parseBoundedJson<json>(nestedArrays(kMaxJsonDepth + 1));
    EXPECT_EQ(arrays.error, JsonParseError::TooDeep);
    EXPECT_TRUE(arrays.value.is_discarded());
    EXPECT_EQ(parseBoundedJson<ordered_json>(nestedObjects(kMaxJsonDepth + 1)).error, JsonParseError::TooDeep);
}

TEST(BoundedJson, ArraysAndObjectsCountAlike) {
    // An object holding 64 levels of arrays is 65 levels deep.
    EXPECT_EQ(parseBoundedJson<ordered_json>(publishOf(nestedArrays(kMaxJsonDepth))).error, JsonParseError::TooDeep);
    EXPECT_EQ(parseBoundedJson<ordered_json>(publishOf(nestedArrays(kMaxJsonDepth - 1))).error, JsonParseError::None);
}

TEST(BoundedJson, DepthIsNestingNotSize) {
    // Many siblings at a shallow depth are fine: only the path from the root counts.
    std::string text = "[";
    for (int i = 0; i < 10000; ++i) text += (i ? ",[[1]]" : "[[1]]");
    text += "]";
    auto parsed = parseBoundedJson<json>(text);
    EXPECT_EQ(parsed.error, JsonParseError::None);
    EXPECT_EQ(parsed.value.size(), 10000u);
}

TEST(BoundedJson, AHundredThousandLevelsAreRefusedWithoutExhaustingTheStack) {
    // The body that used to kill the daemon: recursive dump() or copy of the value overflowed the stack.
    auto parsed = parseBoundedJson<ordered_json>(publishOf(nestedArrays(100'000)));
    EXPECT_EQ(parsed.error, JsonParseError::TooDeep);
    EXPECT_TRUE(parsed.value.is_discarded());
    EXPECT_EQ(parseBoundedJson<json>(nestedObjects(100'000)).error, JsonParseError::TooDeep);
    // Unterminated: refused for its depth before the parser reaches the missing end.
    EXPECT_EQ(parseBoundedJson<json>(std::string(100'000, '[')).error, JsonParseError::TooDeep);
}

TEST(BoundedJson, MalformedInputIsNotTooDeep) {
    for (const char* text : {"", "{", "[1,]", "{nope", "\xff", "[1] x", "// comment\n{}"}) {
        auto parsed = parseBoundedJson<json>(text);
        EXPECT_EQ(parsed.error, JsonParseError::Malformed) << text;
        EXPECT_TRUE(parsed.value.is_discarded()) << text;
    }
}

TEST(BoundedJson, ScalarsAndCommentsWhenAsked) {
    EXPECT_EQ(parseBoundedJson<json>("42").value, 42);
    EXPECT_EQ(parseBoundedJson<json>("\"x\"").value, "x");
    auto commented = parseBoundedJson<json>("// the loop count\n{\"threads\": 2 /* two */}", /*ignoreComments=*/true);
    EXPECT_EQ(commented.error, JsonParseError::None);
    EXPECT_EQ(commented.value, (json{{"threads", 2}}));
}

TEST(BoundedJson, TheRefusalNamesTheLimit) {
    EXPECT_NE(kJsonTooDeep.find(std::to_string(kMaxJsonDepth) + " levels"), std::string_view::npos);
}

TEST(BoundedJson, OrderedJsonKeepsKeyOrder) {
    EXPECT_EQ(parseBoundedJson<ordered_json>(R"({"b":1,"a":2})").value.dump(), R"({"b":1,"a":2})");
}

}  // namespace
}  // namespace wspush
