#include "protocol/server_message.h"

#include <set>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace wspush {
namespace {

using json = nlohmann::ordered_json;  // re-dumping keeps the order, so "compact" compares byte for byte

std::set<std::string> keysOf(const json& object) {
    std::set<std::string> keys;
    for (const auto& [key, value] : object.items()) keys.insert(key);
    return keys;
}

// Every server message is a compact JSON object on one line.
json parseMessage(const std::string& text) {
    EXPECT_EQ(text.find('\n'), std::string::npos) << text;
    EXPECT_FALSE(text.empty());
    json object = json::parse(text, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(object.is_object()) << text;
    if (object.is_object()) {
        EXPECT_EQ(object.dump(), text) << "not compact";
    }
    return object;
}

Publication samplePublication() {
    Publication p;
    p.channel = "chat:room1";
    p.offset = 42;
    p.epoch = "abc123";
    p.mid = "abc123-7";
    p.timestampMs = 1700000000123;
    p.data = R"({"text":"hello\nworld","n":[1,2,{"x":null}]})";
    return p;
}

TEST(EncodeMessageTest, HasExactlyTheDocumentedFields) {
    Publication p = samplePublication();
    std::string text = encodeMessage(p);
    EXPECT_EQ(text.find('\n'), std::string::npos) << text;
    json m = json::parse(text);
    EXPECT_EQ(keysOf(m), (std::set<std::string>{"type", "channel", "offset", "epoch", "mid", "ts", "data"}));
    EXPECT_EQ(m["type"], "message");
    EXPECT_EQ(m["channel"], "chat:room1");
    EXPECT_EQ(m["offset"], 42u);
    EXPECT_EQ(m["epoch"], "abc123");
    EXPECT_EQ(m["mid"], "abc123-7");
    EXPECT_EQ(m["ts"], 1700000000123);
    EXPECT_EQ(m["data"], json::parse(p.data));
    EXPECT_EQ(m["data"]["text"], "hello\nworld");
}

TEST(EncodeMessageTest, DataOfEveryJsonKindRoundTrips) {
    for (const char* data :
         {"null", "true", "0", "18446744073709551615", "-3.25", R"("s")", "[]", "{}", R"([{"a":"\u00e9"}])"}) {
        Publication p = samplePublication();
        p.data = data;
        json m = json::parse(encodeMessage(p));
        EXPECT_EQ(m["data"], json::parse(data)) << data;
    }
}

TEST(EncodeMessageTest, LargeOffsetsAreExact) {
    Publication p = samplePublication();
    p.offset = 18446744073709551615ull;
    p.timestampMs = 0;
    json m = json::parse(encodeMessage(p));
    EXPECT_EQ(m["offset"].get<std::uint64_t>(), 18446744073709551615ull);
    EXPECT_EQ(m["ts"], 0);
}

TEST(EncodeConnectedTest, Fields) {
    ConnectedReply r{"conn-1", "alice", "s1", "r1", false, 25, 10, "node-a", "0.1.0", "phone-1"};
    json m = parseMessage(encodeConnected(1, r));
    EXPECT_EQ(keysOf(m), (std::set<std::string>{"id", "type", "client", "user", "session", "resume", "resumed",
                                                "ping_interval", "pong_timeout", "node", "version", "device"}));
    EXPECT_EQ(m["device"], "phone-1");
    EXPECT_EQ(m["session"], "s1");
    EXPECT_EQ(m["resume"], "r1");
    EXPECT_EQ(m["resumed"], false);
    EXPECT_EQ(m["id"], 1);
    EXPECT_EQ(m["type"], "connected");
    EXPECT_EQ(m["client"], "conn-1");
    EXPECT_EQ(m["user"], "alice");
    EXPECT_EQ(m["ping_interval"], 25);
    EXPECT_EQ(m["pong_timeout"], 10);
    EXPECT_EQ(m["node"], "node-a");
    EXPECT_EQ(m["version"], "0.1.0");
}

TEST(EncodeConnectedTest, InboxCounts) {
    ConnectedReply r{"c", "alice", "s", "r", false, 25, 10, "n", "v", "d1", ConnectedReply::Inbox{3, 2}};
    json m = parseMessage(encodeConnected(1, r));
    EXPECT_EQ(m["inbox"], (json{{"pending", 3}, {"dropped", 2}}));
}

TEST(EncodeConnectedTest, TheTokensSubscriptionsWithTheirPositions) {
    ConnectedReply r{"c", "alice", "s", "r", false, 25, 10, "n", "v", ""};
    EXPECT_FALSE(parseMessage(encodeConnected(1, r)).contains("subscriptions"));
    r.subscriptions = {{"news:1", StreamPosition{7, "e1"}, std::nullopt}, {"vault:a", StreamPosition{0, "e2"}, true}};
    json m = parseMessage(encodeConnected(1, r));
    EXPECT_EQ(m["subscriptions"],
              (json::array({json{{"channel", "news:1"}, {"offset", 7}, {"epoch", "e1"}},
                            json{{"channel", "vault:a"}, {"offset", 0}, {"epoch", "e2"}, {"recovered", true}}})));
}

TEST(EncodePresenceChangeTest, JoinAndLeaveCarryTheEntry) {
    PresenceEntry entry{"c1", "alice", "d1", "n1", 1700000000000, R"({"name":"Alice"})"};
    json join = parseMessage(encodePresenceChange(PresenceChange::Join, "room", entry));
    EXPECT_EQ(join, (json{{"type", "join"},
                          {"channel", "room"},
                          {"client", "c1"},
                          {"user", "alice"},
                          {"device", "d1"},
                          {"info", {{"name", "Alice"}}}}));
    entry.info.clear();
    json leave = parseMessage(encodePresenceChange(PresenceChange::Leave, "room", entry));
    EXPECT_EQ(leave["type"], "leave");
    EXPECT_FALSE(leave.contains("info"));
}

TEST(EncodeStatusTest, UsersInTheOrderAsked) {
    EXPECT_EQ(encodeStatus(4, {{"bob", true}, {"alice", false}}),
              R"({"id":4,"type":"status","users":{"bob":true,"alice":false}})");
    EXPECT_EQ(encodeStatus(std::nullopt, {{"bob", true}}, false), R"({"users":{"bob":true}})");
}

TEST(EncodeConnectedTest, WithoutIdAndAnonymousUser) {
    ConnectedReply r{"conn-2", "", "s2", "r2", true, 1.5, 0.5, "n", "v", ""};
    json m = parseMessage(encodeConnected(std::nullopt, r));
    EXPECT_FALSE(m.contains("id"));
    EXPECT_EQ(m["user"], "");
    EXPECT_DOUBLE_EQ(m["ping_interval"].get<double>(), 1.5);
    EXPECT_DOUBLE_EQ(m["pong_timeout"].get<double>(), 0.5);
}

TEST(EncodeConnectedTest, UserWithNewlineAndInvalidUtf8StaysOneLine) {
    ConnectedReply r{"c", "bad\nname\xff", "s", "r", false, 25, 10, "n", "v", ""};
    std::string text = encodeConnected(5, r);
    json m = parseMessage(text);
    EXPECT_EQ(m["id"], 5);
    EXPECT_TRUE(m["user"].is_string());
}

TEST(EncodeSubscribedTest, Fields) {
    json m = parseMessage(encodeSubscribed(2, "news", StreamPosition{41, "ep"}));
    EXPECT_EQ(keysOf(m), (std::set<std::string>{"id", "type", "channel", "offset", "epoch"}));
    EXPECT_EQ(m["id"], 2);
    EXPECT_EQ(m["type"], "subscribed");
    EXPECT_EQ(m["channel"], "news");
    EXPECT_EQ(m["offset"], 41);
    EXPECT_EQ(m["epoch"], "ep");
    EXPECT_FALSE(parseMessage(encodeSubscribed(std::nullopt, "news", StreamPosition{})).contains("id"));
    EXPECT_EQ(parseMessage(encodeSubscribed(std::nullopt, "news", StreamPosition{}))["offset"], 0);
}

TEST(EncodeUnsubscribedTest, Fields) {
    json m = parseMessage(encodeUnsubscribed(3, "news"));
    EXPECT_EQ(keysOf(m), (std::set<std::string>{"id", "type", "channel"}));
    EXPECT_EQ(m["id"], 3);
    EXPECT_EQ(m["type"], "unsubscribed");
    EXPECT_EQ(m["channel"], "news");
    EXPECT_EQ(keysOf(parseMessage(encodeUnsubscribed(std::nullopt, "news"))),
              (std::set<std::string>{"type", "channel"}));
}

TEST(EncodePublishedTest, Fields) {
    json m = parseMessage(encodePublished(4, samplePublication()));
    EXPECT_EQ(keysOf(m), (std::set<std::string>{"id", "type", "channel", "offset", "mid"}));
    EXPECT_EQ(m["id"], 4);
    EXPECT_EQ(m["type"], "published");
    EXPECT_EQ(m["channel"], "chat:room1");
    EXPECT_EQ(m["offset"], 42);
    EXPECT_EQ(m["mid"], "abc123-7");
    EXPECT_FALSE(parseMessage(encodePublished(std::nullopt, samplePublication())).contains("id"));
}

TEST(EncodePongTest, IdOnlyWhenGiven) {
    EXPECT_EQ(encodePong(std::nullopt), R"({"type":"pong"})");
    json m = parseMessage(encodePong(9007199254740992ull));
    EXPECT_EQ(keysOf(m), (std::set<std::string>{"id", "type"}));
    EXPECT_EQ(m["id"].get<std::uint64_t>(), 9007199254740992ull);
    EXPECT_EQ(m["type"], "pong");
}

TEST(EncodeErrorTest, Fields) {
    json m = parseMessage(encodeError(6, ErrorCode::AlreadySubscribed, "already subscribed to \"news\""));
    EXPECT_EQ(keysOf(m), (std::set<std::string>{"id", "type", "code", "message"}));
    EXPECT_EQ(m["id"], 6);
    EXPECT_EQ(m["type"], "error");
    EXPECT_EQ(m["code"], 105);
    EXPECT_EQ(m["message"], "already subscribed to \"news\"");
}

TEST(EncodeErrorTest, WithoutIdAndWithNewlineInMessage) {
    json m = parseMessage(encodeError(std::nullopt, ErrorCode::MalformedMessage, "line1\nline2"));
    EXPECT_EQ(keysOf(m), (std::set<std::string>{"type", "code", "message"}));
    EXPECT_EQ(m["code"], 112);
    EXPECT_EQ(m["message"], "line1\nline2");
}

TEST(EncodeDisconnectTest, Fields) {
    json m = parseMessage(encodeDisconnect(disconnects::kSlowConsumer));
    EXPECT_EQ(keysOf(m), (std::set<std::string>{"type", "code", "reason", "reconnect"}));
    EXPECT_EQ(m["type"], "disconnect");
    EXPECT_EQ(m["code"], 4001);
    EXPECT_EQ(m["reason"], "slow consumer");
    EXPECT_EQ(m["reconnect"], true);

    json bad = parseMessage(encodeDisconnect(disconnects::kBadRequest));
    EXPECT_EQ(bad["code"], 4500);
    EXPECT_EQ(bad["reason"], "bad request");
    EXPECT_EQ(bad["reconnect"], false);
}

TEST(DisconnectsTest, MatchTheCloseCodeTable) {
    struct Row {
        Disconnect d;
        std::uint16_t code;
        const char* reason;
        bool reconnect;
    };
    for (const Row& row : {Row{disconnects::kShutdown, 1001, "shutdown", true},
                           Row{disconnects::kSlowConsumer, 4001, "slow consumer", true},
                           Row{disconnects::kNoPong, 4002, "no pong", true},
                           Row{disconnects::kConnectTimeout, 4003, "connect timeout", true},
                           Row{disconnects::kInternalError, 4004, "internal error", true},
                           Row{disconnects::kBadRequest, 4500, "bad request", false},
                           Row{disconnects::kUnauthorized, 4501, "unauthorized", false}}) {
        EXPECT_EQ(row.d.code, row.code);
        EXPECT_EQ(row.d.reason, row.reason);
        EXPECT_EQ(row.d.reconnect, row.reconnect) << row.code;
        json m = parseMessage(encodeDisconnect(row.d));
        EXPECT_EQ(m["code"], row.code);
        EXPECT_EQ(m["reason"], row.reason);
        EXPECT_EQ(m["reconnect"], row.reconnect);
    }
}

}  // namespace
}  // namespace wspush

namespace wspush {
namespace {

TEST(EncodeSubscribedTest, RecoveredOnlyWhenAsked) {
    EXPECT_EQ(encodeSubscribed(2, "news", StreamPosition{41, "ep"}, true),
              R"({"id":2,"type":"subscribed","channel":"news","offset":41,"epoch":"ep","recovered":true})");
    EXPECT_EQ(encodeSubscribed(2, "news", StreamPosition{41, "ep"}, false),
              R"({"id":2,"type":"subscribed","channel":"news","offset":41,"epoch":"ep","recovered":false})");
    EXPECT_FALSE(nlohmann::json::parse(encodeSubscribed(2, "news", StreamPosition{41, "ep"})).contains("recovered"));
}

TEST(EncodeUnsubscribedTest, ServerPush) {
    EXPECT_EQ(encodeUnsubscribedPush("news", "insufficient state", true),
              R"({"type":"unsubscribed","channel":"news","reason":"insufficient state","resubscribe":true})");
}

TEST(EncodePresenceTest, EntriesAndStatsInTheDocumentedShape) {
    std::vector<PresenceEntry> entries{{"c1", "alice", "", "n1", 1700000000000, R"({"name":"A"})"},
                                       {"c2", "", "", "n2", 1700000000001, ""}};
    EXPECT_EQ(
        encodePresence(6, "room", entries),
        R"({"id":6,"type":"presence","channel":"room","clients":[)"
        R"({"client":"c1","user":"alice","device":"","node":"n1","connected_at":1700000000000,"info":{"name":"A"}},)"
        R"({"client":"c2","user":"","device":"","node":"n2","connected_at":1700000000001}]})");
    EXPECT_EQ(encodePresenceStats(7, "room", PresenceStats{3, 2}),
              R"({"id":7,"type":"presence_stats","channel":"room","clients":3,"users":2})");
    EXPECT_EQ(encodePresenceStats(std::nullopt, "room", PresenceStats{3, 2}, false),
              R"({"channel":"room","clients":3,"users":2})");
    EXPECT_EQ(encodePresence(std::nullopt, "room", {}, false), R"({"channel":"room","clients":[]})");
}

TEST(EncodeHistoryTest, PublicationsInPageOrderWithTheirData) {
    HistoryPage page;
    page.position = StreamPosition{42, "ep"};
    for (std::uint64_t offset : {41u, 42u}) {
        auto p = std::make_shared<Publication>();
        p->channel = "c";
        p->offset = offset;
        p->epoch = "ep";
        p->mid = "m" + std::to_string(offset);
        p->timestampMs = 1700000000000;
        p->data = offset == 41 ? R"({"a":[1,"x"]})" : "null";
        p->qos = offset == 42 ? 1 : 0;
        page.publications.push_back(p);
    }
    std::string text = encodeHistory(5, "c", page);
    EXPECT_EQ(text, R"({"id":5,"type":"history","channel":"c","epoch":"ep","offset":42,"publications":[)"
                    R"({"offset":41,"mid":"m41","ts":1700000000000,"data":{"a":[1,"x"]}},)"
                    R"({"offset":42,"mid":"m42","ts":1700000000000,"data":null,"qos":1}]})");
    EXPECT_TRUE(nlohmann::json::accept(text));
    EXPECT_EQ(encodeHistoryBody("c", HistoryPage{StreamPosition{0, "e"}, {}}),
              R"({"channel":"c","epoch":"e","offset":0,"publications":[]})");
}

}  // namespace
}  // namespace wspush
