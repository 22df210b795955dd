#include "protocol/client_command.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/bounded_json.h"

namespace wspush {
namespace {

using json = nlohmann::json;

ClientCommand parseOk(std::string_view piece) {
    ParsedCommand parsed = parseClientCommand(piece);
    if (auto* error = std::get_if<CommandError>(&parsed)) {
        ADD_FAILURE() << "unexpected error " << static_cast<int>(error->code) << ": " << error->message << " for "
                      << piece;
        return {};
    }
    return std::get<ClientCommand>(parsed);
}

CommandError parseError(std::string_view piece) {
    ParsedCommand parsed = parseClientCommand(piece);
    if (std::holds_alternative<ClientCommand>(parsed)) {
        ADD_FAILURE() << "unexpectedly parsed " << piece;
        return {};
    }
    return std::get<CommandError>(parsed);
}

// --- each command ---------------------------------------------------------------------------

TEST(ParseClientCommandTest, ConnectWithAllFields) {
    ClientCommand c = parseOk(R"({"id":1,"type":"connect","token":"t0k","user":"alice","client":"sdk/1.2"})");
    EXPECT_EQ(c.type, CommandType::Connect);
    EXPECT_EQ(c.id, 1u);
    EXPECT_EQ(c.token, "t0k");
    EXPECT_EQ(c.user, "alice");
    EXPECT_EQ(c.client, "sdk/1.2");
}

TEST(ParseClientCommandTest, ConnectWithPositionsInTheTokensChannels) {
    ClientCommand c = parseOk(
        R"({"type":"connect","since":{"news:1":{"offset":7,"epoch":"e1"},"feed:a":{"offset":0,"epoch":"e2"}}})");
    ASSERT_EQ(c.channelsSince.size(), 2u);
    EXPECT_EQ(c.channelsSince.at("news:1").offset, 7u);
    EXPECT_EQ(c.channelsSince.at("news:1").epoch, "e1");
    EXPECT_EQ(c.channelsSince.at("feed:a").offset, 0u);
    EXPECT_EQ(c.channelsSince.at("feed:a").epoch, "e2");
    EXPECT_TRUE(parseOk(R"({"type":"connect","since":null})").channelsSince.empty());
}

TEST(ParseClientCommandTest, ConnectWithMalformedPositionsIsBadRequest) {
    for (const char* piece : {R"({"id":4,"type":"connect","since":[]})",
                              R"({"id":4,"type":"connect","since":{"news:1":{"offset":-1,"epoch":"e"}}})",
                              R"({"id":4,"type":"connect","since":{"news:1":{"offset":1,"epoch":""}}})",
                              R"({"id":4,"type":"connect","since":{"news:1":5}})"}) {
        CommandError e = parseError(piece);
        EXPECT_EQ(e.code, ErrorCode::BadRequest) << piece;
        EXPECT_EQ(e.id, 4u) << piece;
    }
    std::string many = R"({"type":"connect","since":{)";
    for (int i = 0; i <= 128; ++i)
        many += (i ? "," : "") + ("\"c:" + std::to_string(i) + "\":{\"offset\":1,\"epoch\":\"e\"}");
    many += "}}";
    EXPECT_EQ(parseError(many).code, ErrorCode::BadRequest);
}

TEST(ParseClientCommandTest, ConnectWithoutOptionalFields) {
    ClientCommand c = parseOk(R"({"type":"connect"})");
    EXPECT_EQ(c.type, CommandType::Connect);
    EXPECT_FALSE(c.id.has_value());
    EXPECT_FALSE(c.token.has_value());
    EXPECT_FALSE(c.user.has_value());
    EXPECT_EQ(c.client, "");
}

TEST(ParseClientCommandTest, ConnectWithNullFieldsTreatsThemAsAbsent) {
    ClientCommand c = parseOk(R"({"type":"connect","token":null,"user":null,"client":null})");
    EXPECT_FALSE(c.token.has_value());
    EXPECT_FALSE(c.user.has_value());
    EXPECT_EQ(c.client, "");
}

TEST(ParseClientCommandTest, ConnectWithEmptyTokenKeepsIt) {
    ClientCommand c = parseOk(R"({"type":"connect","token":""})");
    ASSERT_TRUE(c.token.has_value());
    EXPECT_EQ(*c.token, "");
}

TEST(ParseClientCommandTest, Subscribe) {
    ClientCommand c = parseOk(R"({"id":2,"type":"subscribe","channel":"news"})");
    EXPECT_EQ(c.type, CommandType::Subscribe);
    EXPECT_EQ(c.id, 2u);
    EXPECT_EQ(c.channel, "news");
}

TEST(ParseClientCommandTest, Unsubscribe) {
    ClientCommand c = parseOk(R"({"id":3,"type":"unsubscribe","channel":"chat:1"})");
    EXPECT_EQ(c.type, CommandType::Unsubscribe);
    EXPECT_EQ(c.id, 3u);
    EXPECT_EQ(c.channel, "chat:1");
}

TEST(ParseClientCommandTest, Publish) {
    ClientCommand c = parseOk(R"({"id":4,"type":"publish","channel":"chat:1","data":{"text":"hi"}})");
    EXPECT_EQ(c.type, CommandType::Publish);
    EXPECT_EQ(c.id, 4u);
    EXPECT_EQ(c.channel, "chat:1");
    EXPECT_EQ(c.data, R"({"text":"hi"})");
}

TEST(ParseClientCommandTest, Ping) {
    ClientCommand c = parseOk(R"({"type":"ping"})");
    EXPECT_EQ(c.type, CommandType::Ping);
    EXPECT_FALSE(c.id.has_value());
    EXPECT_EQ(parseOk(R"({"id":9,"type":"ping"})").id, 9u);
}

TEST(ParseClientCommandTest, UnknownFieldsAreIgnored) {
    ClientCommand c = parseOk(R"({"type":"subscribe","channel":"news","qos":1,"extra":{"a":[1]}})");
    EXPECT_EQ(c.channel, "news");
}

TEST(ParseClientCommandTest, SurroundingWhitespaceAndCarriageReturnAreAccepted) {
    EXPECT_EQ(parseOk(" {\"type\":\"ping\"}\r").type, CommandType::Ping);
}

// --- id -------------------------------------------------------------------------------------

TEST(ParseClientCommandTest, IdMayBeOneUpTo2Pow53) {
    EXPECT_EQ(parseOk(R"({"id":1,"type":"ping"})").id, 1u);
    EXPECT_EQ(parseOk(R"({"id":9007199254740992,"type":"ping"})").id, 9007199254740992u);
}

TEST(ParseClientCommandTest, NullIdIsLikeNoId) {
    EXPECT_FALSE(parseOk(R"({"id":null,"type":"ping"})").id.has_value());
}

TEST(ParseClientCommandTest, InvalidIdsAreBadRequests) {
    for (const char* piece : {
             R"({"id":0,"type":"ping"})",
             R"({"id":-1,"type":"ping"})",
             R"({"id":1.5,"type":"ping"})",
             R"({"id":1.0,"type":"ping"})",
             R"({"id":"1","type":"ping"})",
             R"({"id":true,"type":"ping"})",
             R"({"id":[1],"type":"ping"})",
             R"({"id":9007199254740993,"type":"ping"})",
             R"({"id":18446744073709551615,"type":"ping"})",
         }) {
        CommandError error = parseError(piece);
        EXPECT_EQ(error.code, ErrorCode::BadRequest) << piece;
        EXPECT_FALSE(error.fatal) << piece;
        EXPECT_FALSE(error.id.has_value()) << piece;  // an invalid id cannot be echoed
    }
}

// --- malformed input --------------------------------------------------------------------------

TEST(ParseClientCommandTest, NotJsonIsFatalMalformedMessage) {
    for (const char* piece : {"", "hello", "{", R"({"type":"ping")", "{'type':'ping'}", "\xff\xfe"}) {
        CommandError error = parseError(piece);
        EXPECT_EQ(error.code, ErrorCode::MalformedMessage) << piece;
        EXPECT_TRUE(error.fatal) << piece;
        EXPECT_FALSE(error.id.has_value());
    }
}

TEST(ParseClientCommandTest, JsonThatIsNotAnObjectIsFatalMalformedMessage) {
    for (const char* piece : {R"([{"type":"ping"}])", "[]", "42", R"("ping")", "null", "true"}) {
        CommandError error = parseError(piece);
        EXPECT_EQ(error.code, ErrorCode::MalformedMessage) << piece;
        EXPECT_TRUE(error.fatal) << piece;
    }
}

TEST(ParseClientCommandTest, MissingOrNonStringTypeIsBadRequest) {
    for (const char* piece :
         {R"({"id":5})", R"({"id":5,"type":1})", R"({"id":5,"type":null})", R"({"id":5,"type":["ping"]})"}) {
        CommandError error = parseError(piece);
        EXPECT_EQ(error.code, ErrorCode::BadRequest) << piece;
        EXPECT_FALSE(error.fatal) << piece;
        EXPECT_EQ(error.id, 5u) << piece;
    }
}

TEST(ParseClientCommandTest, UnknownTypeKeepsTheId) {
    CommandError error = parseError(R"({"id":7,"type":"rpc","channel":"news"})");
    EXPECT_EQ(error.code, ErrorCode::UnknownCommand);
    EXPECT_EQ(error.id, 7u);
    EXPECT_FALSE(error.fatal);
    EXPECT_NE(error.message.find("rpc"), std::string::npos);
    // Command names are case-sensitive.
    EXPECT_EQ(parseError(R"({"type":"PING"})").code, ErrorCode::UnknownCommand);
}

TEST(ParseClientCommandTest, MissingOrNonStringChannelIsBadRequest) {
    for (const char* type : {"subscribe", "unsubscribe", "publish"}) {
        for (const char* channel : {"", R"(,"channel":5)", R"(,"channel":null)", R"(,"channel":["a"])"}) {
            std::string piece = std::string(R"({"id":6,"type":")") + type + "\"" + channel + R"(,"data":1})";
            CommandError error = parseError(piece);
            EXPECT_EQ(error.code, ErrorCode::BadRequest) << piece;
            EXPECT_EQ(error.id, 6u) << piece;
            EXPECT_FALSE(error.fatal) << piece;
        }
    }
}

TEST(ParseClientCommandTest, PublishWithoutDataIsBadRequest) {
    CommandError error = parseError(R"({"id":8,"type":"publish","channel":"chat:1"})");
    EXPECT_EQ(error.code, ErrorCode::BadRequest);
    EXPECT_EQ(error.id, 8u);
}

TEST(ParseClientCommandTest, PublishDataOfEveryKindIsReDumpedCompact) {
    struct Case {
        const char* data;
        const char* compact;
    };
    for (const Case& c : {
             Case{"null", "null"},
             Case{"true", "true"},
             Case{"false", "false"},
             Case{"0", "0"},
             Case{"-12", "-12"},
             Case{"18446744073709551615", "18446744073709551615"},
             Case{"1.5", "1.5"},
             Case{R"("text")", R"("text")"},
             Case{R"( [ 1 , "two" , null ] )", R"([1,"two",null])"},
             Case{"{ \"a\" : { \"b\" : [ ] } ,\r\n\t\"c\":{} }", R"({"a":{"b":[]},"c":{}})"},
         }) {
        std::string piece = std::string(R"({"type":"publish","channel":"c","data":)") + c.data + "}";
        ClientCommand command = parseOk(piece);
        EXPECT_EQ(command.data, c.compact) << piece;
        EXPECT_EQ(json::parse(command.data), json::parse(c.data)) << piece;
    }
}

TEST(ParseClientCommandTest, PublishDataNeverContainsARawNewline) {
    // The escaped "\n" inside the string must stay escaped; the raw newlines between tokens go.
    ClientCommand command =
        parseOk("{\"type\":\"publish\",\"channel\":\"c\",\"data\":{\"text\":\"line1\\nline2\",\n\"n\":[1,\n2]}}");
    EXPECT_EQ(command.data.find('\n'), std::string::npos) << command.data;
    EXPECT_EQ(json::parse(command.data)["text"], "line1\nline2");
    EXPECT_EQ(json::parse(command.data)["n"], json::array({1, 2}));
}

TEST(ParseClientCommandTest, NestingDeeperThanTheLimitIsBadRequestButNotFatal) {
    auto nested = [](int levels) { return std::string(levels, '[') + std::string(levels, ']'); };
    auto publishOf = [](const std::string& data) {
        return R"({"id":4,"type":"publish","channel":"c","data":)" + data + "}";
    };
    // The command object is the first level, so its data may nest one level less than the limit.
    ClientCommand command = parseOk(publishOf(nested(kMaxJsonDepth - 1)));
    EXPECT_EQ(command.data, nested(kMaxJsonDepth - 1));
    for (int levels : {kMaxJsonDepth, 100'000}) {
        CommandError error = parseError(publishOf(nested(levels)));
        EXPECT_EQ(error.code, ErrorCode::BadRequest) << levels;
        EXPECT_FALSE(error.fatal) << levels;
        EXPECT_NE(error.message.find("64 levels"), std::string::npos) << error.message;
    }
}

TEST(ParseClientCommandTest, ConnectWithNonStringFieldsIsBadRequest) {
    for (const char* piece : {
             R"({"id":3,"type":"connect","token":5})",
             R"({"id":3,"type":"connect","user":{"name":"a"}})",
             R"({"id":3,"type":"connect","client":true})",
             R"({"id":3,"type":"connect","token":["x"]})",
         }) {
        CommandError error = parseError(piece);
        EXPECT_EQ(error.code, ErrorCode::BadRequest) << piece;
        EXPECT_EQ(error.id, 3u) << piece;
        EXPECT_FALSE(error.fatal) << piece;
    }
}

TEST(ParseClientCommandTest, ConnectClientIsAtMost128Characters) {
    std::string ok = R"({"type":"connect","client":")" + std::string(128, 'c') + "\"}";
    EXPECT_EQ(parseOk(ok).client.size(), 128u);
    std::string tooLong = R"({"id":2,"type":"connect","client":")" + std::string(129, 'c') + "\"}";
    CommandError error = parseError(tooLong);
    EXPECT_EQ(error.code, ErrorCode::BadRequest);
    EXPECT_EQ(error.id, 2u);
}

// --- forEachPiece -----------------------------------------------------------------------------

std::vector<std::string> pieces(std::string_view frame) {
    std::vector<std::string> out;
    forEachPiece(frame, [&](std::string_view piece) {
        out.emplace_back(piece);
        return true;
    });
    return out;
}

using Pieces = std::vector<std::string>;

TEST(ForEachPieceTest, SingleMessageWithoutTrailingNewline) {
    EXPECT_EQ(pieces(R"({"type":"ping"})"), Pieces{R"({"type":"ping"})"});
}

TEST(ForEachPieceTest, SplitsOnNewlinesInOrder) {
    EXPECT_EQ(pieces("a\nb\nc"), (Pieces{"a", "b", "c"}));
    EXPECT_EQ(pieces("a\nb\n"), (Pieces{"a", "b"}));
}

TEST(ForEachPieceTest, EmptyPiecesAreSkipped) {
    EXPECT_EQ(pieces(""), Pieces{});
    EXPECT_EQ(pieces("\n"), Pieces{});
    EXPECT_EQ(pieces("\n\n\na\n\n\nb\n\n"), (Pieces{"a", "b"}));
}

TEST(ForEachPieceTest, CarriageReturnPiecesAreSkipped) {
    EXPECT_EQ(pieces("a\r\n\r\nb\r\n"), (Pieces{"a\r", "b\r"}));
    EXPECT_EQ(pieces("\r"), Pieces{});
    EXPECT_EQ(pieces("\r\r"), Pieces{"\r\r"});  // only a lone "\r" is a line-ending artifact
}

TEST(ForEachPieceTest, StopsWhenTheCallbackReturnsFalse) {
    std::vector<std::string> seen;
    forEachPiece("a\nb\nc\nd", [&](std::string_view piece) {
        seen.emplace_back(piece);
        return piece != "b";
    });
    EXPECT_EQ(seen, (Pieces{"a", "b"}));
}

TEST(ForEachPieceTest, PiecesOfARealFrameParse) {
    std::vector<CommandType> types;
    forEachPiece("{\"type\":\"connect\"}\n{\"type\":\"subscribe\",\"channel\":\"x\"}\n{\"type\":\"ping\"}\n",
                 [&](std::string_view piece) {
                     types.push_back(parseOk(piece).type);
                     return true;
                 });
    EXPECT_EQ(types, (std::vector<CommandType>{CommandType::Connect, CommandType::Subscribe, CommandType::Ping}));
}

}  // namespace
}  // namespace wspush

namespace wspush {
namespace {

TEST(ParseClientCommandTest, SubscribeWithSince) {
    auto command = parseOk(R"({"id":2,"type":"subscribe","channel":"news","since":{"offset":40,"epoch":"E1"}})");
    ASSERT_TRUE(command.since.has_value());
    EXPECT_EQ(command.since->offset, 40u);
    EXPECT_EQ(command.since->epoch, "E1");
    EXPECT_FALSE(parseOk(R"({"type":"subscribe","channel":"news"})").since.has_value());
    EXPECT_FALSE(parseOk(R"({"type":"subscribe","channel":"news","since":null})").since.has_value());
    for (const char* bad :
         {R"({"id":2,"type":"subscribe","channel":"n","since":40})",
          R"({"id":2,"type":"subscribe","channel":"n","since":{"offset":40}})",
          R"({"id":2,"type":"subscribe","channel":"n","since":{"epoch":"E"}})",
          R"({"id":2,"type":"subscribe","channel":"n","since":{"offset":-1,"epoch":"E"}})",
          R"({"id":2,"type":"subscribe","channel":"n","since":{"offset":1,"epoch":""}})",
          R"({"id":2,"type":"subscribe","channel":"n","since":{"offset":1,"epoch":5}})",
          R"({"id":2,"type":"subscribe","channel":"n","since":{"offset":9007199254740993,"epoch":"E"}})"}) {
        CommandError error = parseError(bad);
        EXPECT_EQ(error.code, ErrorCode::BadRequest) << bad;
        EXPECT_EQ(error.id, 2u) << bad;
        EXPECT_FALSE(error.fatal);
    }
}

TEST(ParseClientCommandTest, PresenceAndPresenceStatsNeedAChannel) {
    EXPECT_EQ(parseOk(R"({"id":6,"type":"presence","channel":"room"})").type, CommandType::Presence);
    auto stats = parseOk(R"({"id":7,"type":"presence_stats","channel":"room"})");
    EXPECT_EQ(stats.type, CommandType::PresenceStats);
    EXPECT_EQ(stats.channel, "room");
    for (const char* bad : {R"({"id":6,"type":"presence"})", R"({"id":7,"type":"presence_stats","channel":5})"}) {
        auto parsed = parseClientCommand(bad);
        ASSERT_TRUE(std::holds_alternative<CommandError>(parsed)) << bad;
        EXPECT_EQ(std::get<CommandError>(parsed).code, ErrorCode::BadRequest) << bad;
    }
}

TEST(ParseClientCommandTest, HistoryWithDefaultsAndBounds) {
    auto command = parseOk(R"({"id":5,"type":"history","channel":"c"})");
    EXPECT_EQ(command.type, CommandType::History);
    EXPECT_EQ(command.channel, "c");
    EXPECT_EQ(command.historySince, 0u);
    EXPECT_EQ(command.limit, 100u);
    EXPECT_FALSE(command.reverse);
    command = parseOk(R"({"id":5,"type":"history","channel":"c","since":40,"limit":1000,"reverse":true})");
    EXPECT_EQ(command.historySince, 40u);
    EXPECT_EQ(command.limit, 1000u);
    EXPECT_TRUE(command.reverse);
    for (const char* bad : {R"({"id":5,"type":"history"})", R"({"id":5,"type":"history","channel":"c","limit":1001})",
                            R"({"id":5,"type":"history","channel":"c","limit":-1})",
                            R"({"id":5,"type":"history","channel":"c","since":"4"})",
                            R"({"id":5,"type":"history","channel":"c","reverse":1})"}) {
        CommandError error = parseError(bad);
        EXPECT_EQ(error.code, ErrorCode::BadRequest) << bad;
        EXPECT_EQ(error.id, 5u) << bad;
    }
}

}  // namespace
}  // namespace wspush
