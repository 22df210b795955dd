// History reads through the real daemon: the WebSocket `history` command and GET /api/history,
// both directions, paging, and every refusal.
#include <gtest/gtest.h>

#include "support/test_helpers.h"

namespace wspush::testing {
namespace {

using json = nlohmann::json;
using Offsets = std::vector<std::uint64_t>;

json historyConfig() {
    return json{
        {"channel_defaults", {{"history_size", 100}}},
        {"namespaces", {{"open", {{"history_size", 100}, {"client_history", true}}}, {"bare", json::object()}}}};
}

Offsets offsetsOf(const json& page) {
    Offsets offsets;
    for (const auto& p : page.value("publications", json::array())) offsets.push_back(p.value("offset", 0u));
    return offsets;
}

class History : public ::testing::Test {
protected:
    History() : daemon(historyConfig()), api(daemon.apiPort()) {
        for (int i = 1; i <= 10; ++i) {
            HttpResult result = api.postJson("/api/publish", {{"channel", "open:c"}, {"data", {{"n", i}}}});
            EXPECT_EQ(result.status, 200u) << result.body;
            epoch = result.json().value("epoch", "");
        }
        EXPECT_TRUE(client.connectProtocol(daemon.port())) << client.lastError();
    }

    json history(json fields) {
        fields["type"] = "history";
        auto reply = client.request(fields);
        EXPECT_TRUE(reply);
        return reply.value_or(json::object());
    }

    DaemonProcess daemon;
    HttpTestClient api;
    WsTestClient client;
    std::string epoch;
};

TEST_F(History, CommandReadsForwardReverseAndPages) {
    json page = history({{"channel", "open:c"}, {"since", 3}, {"limit", 4}});
    EXPECT_EQ(typeOf(page), "history") << page.dump();
    EXPECT_EQ(page.value("channel", ""), "open:c");
    EXPECT_EQ(page.value("epoch", ""), epoch);
    EXPECT_EQ(page.value("offset", 0), 10);
    EXPECT_EQ(offsetsOf(page), (Offsets{4, 5, 6, 7}));
    const json& first = page["publications"][0];
    EXPECT_EQ(first["data"], (json{{"n", 4}}));
    EXPECT_TRUE(first["mid"].is_string() && first["ts"].is_number_integer()) << first.dump();

    EXPECT_EQ(offsetsOf(history({{"channel", "open:c"}, {"reverse", true}, {"limit", 3}})), (Offsets{10, 9, 8}));
    EXPECT_EQ(offsetsOf(history({{"channel", "open:c"}, {"since", 8}, {"reverse", true}, {"limit", 3}})),
              (Offsets{7, 6, 5}));
    EXPECT_EQ(offsetsOf(history({{"channel", "open:c"}})).size(), 10u) << "default: from the oldest, up to 100";

    // Forward pages: each ends where the next begins.
    Offsets all;
    std::uint64_t since = 0;
    for (int pageNumber = 0; pageNumber < 5; ++pageNumber) {
        Offsets got = offsetsOf(history({{"channel", "open:c"}, {"since", since}, {"limit", 4}}));
        if (got.empty()) break;
        all.insert(all.end(), got.begin(), got.end());
        since = got.back();
    }
    EXPECT_EQ(all, (Offsets{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));

    json empty = history({{"channel", "open:never"}});
    EXPECT_EQ(typeOf(empty), "history");
    EXPECT_EQ(empty.value("offset", -1), 0);
    EXPECT_TRUE(empty["publications"].empty());
}

TEST_F(History, CommandRefusals) {
    EXPECT_EQ(errorCodeOf(history({{"channel", "news"}})), 103) << "client_history is off by default";
    EXPECT_EQ(errorCodeOf(history({{"channel", "open:c"}, {"limit", 1001}})), 107);
    EXPECT_EQ(errorCodeOf(history({{"channel", "open:c"}, {"since", -1}})), 107);
    EXPECT_EQ(errorCodeOf(history({{"channel", "open:c"}, {"reverse", "yes"}})), 107);
    EXPECT_EQ(errorCodeOf(history({{"channel", "bad channel"}})), 110);
    EXPECT_EQ(errorCodeOf(history({{"channel", "nope:c"}})), 102);
    EXPECT_EQ(typeOf(client.request(json{{"type", "ping"}}).value_or(json::object())), "pong") << "still connected";
}

TEST_F(History, HttpReadsLikeTheCommand) {
    HttpResult result = api.get("/api/history?channel=open%3Ac&since=3&limit=4");
    ASSERT_EQ(result.status, 200u) << result.body;
    json page = result.json();
    EXPECT_EQ(page.value("channel", ""), "open:c");
    EXPECT_EQ(page.value("epoch", ""), epoch);
    EXPECT_EQ(page.value("offset", 0), 10);
    EXPECT_FALSE(page.contains("type"));
    EXPECT_EQ(offsetsOf(page), (Offsets{4, 5, 6, 7}));
    EXPECT_EQ(offsetsOf(api.get("/api/history?channel=open:c&reverse=true&limit=2").json()), (Offsets{10, 9}));
    EXPECT_EQ(offsetsOf(api.get("/api/history?channel=open:c&since=9&reverse=false").json()), (Offsets{10}));
    // The API reads any channel, whatever client_history says; one without history is empty.
    HttpResult bare = api.get("/api/history?channel=bare:x");
    ASSERT_EQ(bare.status, 200u);
    EXPECT_EQ(
        bare.json(),
        (json{{"channel", "bare:x"}, {"epoch", bare.json()["epoch"]}, {"offset", 0}, {"publications", json::array()}}));
}

TEST_F(History, HttpRefusals) {
    auto codeOf = [&](const std::string& target) {
        HttpResult result = api.get(target);
        EXPECT_EQ(result.status, 400u) << target << ": " << result.body;
        return result.json()["error"].value("code", 0);
    };
    EXPECT_EQ(codeOf("/api/history"), 40002);
    EXPECT_EQ(codeOf("/api/history?channel=open:c&limit=1001"), 40003);
    EXPECT_EQ(codeOf("/api/history?channel=open:c&limit=-1"), 40003);
    EXPECT_EQ(codeOf("/api/history?channel=open:c&since=abc"), 40003);
    EXPECT_EQ(codeOf("/api/history?channel=open:c&reverse=1"), 40003);
    EXPECT_EQ(codeOf("/api/history?channel=open:c&since=%zz"), 40003);
    EXPECT_EQ(codeOf("/api/history?channel=bad%20channel"), 40004);
    EXPECT_EQ(codeOf("/api/history?channel=nope:c"), 40005);
    EXPECT_EQ(api.request("POST", "/api/history", "", {}).status, 405u);
}

}  // namespace
}  // namespace wspush::testing
