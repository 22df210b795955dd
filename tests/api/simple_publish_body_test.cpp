#include "api/simple_publish_body.h"

#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace wspush {
namespace {

using json = nlohmann::ordered_json;  // as HttpApi parses bodies

// What the full parse makes of `body`: the channel and the compact data.
std::pair<std::string, std::string> parsedByNlohmann(const std::string& body) {
    json parsed = json::parse(body);
    return {parsed.at("channel").get<std::string>(), parsed.at("data").dump()};
}

TEST(SimplePublishBody, TakesWhatTheFullParseWouldMakeTheSame) {
    const std::vector<std::string> bodies = {
        R"({"channel":"news","data":1})",
        R"({"data":"x","channel":"news"})",
        R"( { "channel" : "chat:room-1" , "data" : { "t" : 17 , "s" : -3 , "p" : "xxxx" } } )",
        "{\n\t\"channel\":\"a\",\r\n\"data\":[1, [2, {}], [], {\"a\": null, \"b\": true, \"c\": false}]}\n",
        R"({"channel":"news","data":{"t":1733480000000000000,"s":999999999999999999,"p":"a b/c"}})",
        R"({"channel":"news","data":0})",
        R"({"channel":"news","data":-12})",
        R"({"channel":"news","data":[18446744073709551615,-9223372036854775808]})",
        R"({"channel":"news","data":[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]})",
        R"({"channel":"","data":null})",  // the checks after the parse refuse it, as they would
    };
    for (const auto& body : bodies) {
        auto simple = readSimplePublishBody(body);
        ASSERT_TRUE(simple) << body;
        auto [channel, data] = parsedByNlohmann(body);
        EXPECT_EQ(simple->channel, channel) << body;
        EXPECT_EQ(simple->data, data) << body;
    }
}

TEST(SimplePublishBody, LeavesEverythingElseToTheFullParse) {
    const std::vector<std::string> bodies = {
        "",
        "{}",
        "[]",
        R"({"channel":"news"})",
        R"({"data":1})",
        R"({"channel":"news","data":1,"qos":1})",
        R"({"channel":"news","data":1,"mid":"m1"})",
        R"({"channel":"news","channel":"other","data":1})",
        R"({"channel":"news","data":1,"data":2})",
        R"({"channel":"news","data":{"a":1,"a":2}})",  // nlohmann keeps one of them
        R"({"channel":"news","data":1.5})",            // nlohmann may print it otherwise
        R"({"channel":"news","data":1e3})",
        R"({"channel":"news","data":-0})",                    // becomes 0
        R"({"channel":"news","data":18446744073709551616})",  // becomes a double
        R"({"channel":"news","data":-9223372036854775809})",
        R"({"channel":"news","data":01})",
        R"({"channel":"news","data":"caf\u00e9"})",         // escapes are rewritten
        "{\"channel\":\"news\",\"data\":\"caf\xc3\xa9\"}",  // non-ASCII: UTF-8 to validate
        R"({"channel":"news","data":"a\"b"})",
        "{\"channel\":\"news\",\"data\":\"tab\there\"}",
        R"({"channel":7,"data":1})",
        R"({"channel":"news","data":1} x)",
        R"({"channel":"news","data":1)",
        R"({"channel":"news","data":[1,]})",
        R"({"channel":"news","data":tru})",
        R"({"channel":"news","data":[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]})",  // 17 levels
        "\xef\xbb\xbf{\"channel\":\"news\",\"data\":1}",                   // a byte order mark
    };
    for (const auto& body : bodies) EXPECT_FALSE(readSimplePublishBody(body)) << body;
}

TEST(SimplePublishBody, AnObjectWithManyKeysIsLeftToTheFullParse) {
    std::string data = "{";
    for (int i = 0; i < 40; ++i) data += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":1";
    data += "}";
    EXPECT_FALSE(readSimplePublishBody(R"({"channel":"news","data":)" + data + "}"));
}

// Mutations of a body: whatever the fast path takes, the full parse takes the same way.
TEST(SimplePublishBody, NeverDisagreesWithTheFullParse) {
    const std::string seed = R"({"channel":"news","data":{"t":-17,"s":[0,true,null,"x y"],"p":{"q":false}}})";
    const std::string alphabet = "{}[]\",:-0123456789. \ntruefalsenull\\a";
    std::mt19937 random(20261206);
    int taken = 0;
    for (int i = 0; i < 20000; ++i) {
        std::string body = seed;
        for (int edits = 1 + static_cast<int>(random() % 3); edits > 0; --edits) {
            std::size_t at = random() % body.size();
            char c = alphabet[random() % alphabet.size()];
            switch (random() % 3) {
                case 0: body.insert(body.begin() + static_cast<std::ptrdiff_t>(at), c); break;
                case 1: body.erase(at, 1); break;
                default: body[at] = c; break;
            }
        }
        auto simple = readSimplePublishBody(body);
        if (!simple) continue;
        ++taken;
        json parsed = json::parse(body, nullptr, false);
        ASSERT_FALSE(parsed.is_discarded()) << body;
        ASSERT_TRUE(parsed.is_object() && parsed.size() == 2 && parsed.contains("channel") && parsed.contains("data"))
            << body;
        EXPECT_EQ(simple->channel, parsed["channel"].get<std::string>()) << body;
        EXPECT_EQ(simple->data, parsed["data"].dump()) << body;
    }
    EXPECT_GT(taken, 100) << "the mutations should leave some bodies the fast path takes";
}

}  // namespace
}  // namespace wspush
