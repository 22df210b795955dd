#include "api/http_api.h"
#include "support/one_node_engine.h"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/memory/memory_broker.h"
#include "support/fake_cluster_broker.h"
#include "wspush/channel_name.h"

namespace wspush {
namespace {

using json = nlohmann::json;

const std::string kKey = "0123456789abcdef-key";

// ["c0", "c1", …]: `count` valid channel names.
json channelNames(int count) {
    json names = json::array();
    // Not "c" + std::to_string(i): at -O3, GCC 12 reports a false -Wrestrict (an overlapping
    // memcpy of 2^63 bytes) in the operator+(const char*, std::string&&) it inlines.
    for (int i = 0; i < count; ++i) names.push_back(std::string("c").append(std::to_string(i)));
    return names;
}

Config testConfig(std::vector<std::string> keys = {}, const std::function<void(Config&)>& adjust = {}) {
    Config config;
    config.namespaces["chat"] = NamespaceConfig{};
    for (auto& key : keys) config.api.keys.push_back(ApiKey{"key", std::move(key)});
    if (adjust) adjust(config);
    return config;
}

class HttpApiTest : public ::testing::Test {
protected:
    explicit HttpApiTest(std::vector<std::string> keys = {}, const std::function<void(Config&)>& adjust = {})
        : node(testConfig(std::move(keys), adjust), "node-test",
               testing::oneNodeEngine(
                   std::make_unique<MemoryBroker>("inst", [] { return std::int64_t{1700000000000}; }))),
          pool(1),
          api(node) {
        node.attach(pool);
    }

    ApiResponse call(const ApiRequest& request, ListenerRoutes routes = {}) {
        int calls = 0;
        ApiResponse response;
        api.handle(request, routes, [&](ApiResponse r) {
            ++calls;
            response = std::move(r);
        });
        EXPECT_EQ(calls, 1) << request.method << " " << request.path << ": respond must run exactly once";
        return response;
    }

    static ApiRequest get(std::string path, bool loopback = true) {
        ApiRequest request;
        request.method = "GET";
        request.path = std::move(path);
        request.fromLoopback = loopback;
        return request;
    }

    static ApiRequest post(std::string path, std::string body, std::string contentType = "application/json") {
        ApiRequest request;
        request.method = "POST";
        request.path = std::move(path);
        request.body = std::move(body);
        request.contentType = std::move(contentType);
        request.fromLoopback = true;
        return request;
    }

    static json bodyOf(const ApiResponse& response) {
        json body = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
        EXPECT_FALSE(body.is_discarded()) << response.body;
        return body;
    }

    // Checks an error response: status, content type and the {"error":{"code","message"}} body.
    static void expectError(const ApiResponse& response, unsigned status, int code) {
        EXPECT_EQ(response.status, status) << response.body;
        EXPECT_EQ(response.contentType, "application/json");
        json body = bodyOf(response);
        ASSERT_TRUE(body.contains("error")) << response.body;
        EXPECT_EQ(body["error"]["code"], code) << response.body;
        EXPECT_TRUE(body["error"]["message"].is_string()) << response.body;
        EXPECT_FALSE(response.wasPublish);
    }

    Node node;
    EventLoopPool pool;
    HttpApi api;
};

class HttpApiWithKeysTest : public HttpApiTest {
protected:
    HttpApiWithKeysTest() : HttpApiTest({kKey, "another-key-0123456789"}) {}
};

// --- routing ----------------------------------------------------------------------------------

TEST_F(HttpApiTest, HealthzAnswersOk) {
    ApiResponse response = call(get("/healthz"));
    EXPECT_EQ(response.status, 200u);
    EXPECT_EQ(bodyOf(response), (json{{"status", "ok"}}));
    EXPECT_EQ(response.contentType, "application/json");
}

TEST_F(HttpApiTest, HeadIsAcceptedWhereGetIs) {
    ApiRequest request = get("/healthz");
    request.method = "HEAD";
    EXPECT_EQ(call(request).status, 200u);
    request.path = "/api/info";
    EXPECT_EQ(call(request).status, 200u);
}

TEST_F(HttpApiTest, UnknownPathIs404) {
    expectError(call(get("/nope")), 404, 40401);
    expectError(call(get("/api")), 404, 40401);
    expectError(call(get("/api/publish/x")), 404, 40401);
    expectError(call(get("/healthz/")), 404, 40401);
    expectError(call(post("/api/unknown", "{}")), 404, 40401);
}

TEST_F(HttpApiTest, WrongMethodIs405WithAllow) {
    ApiResponse response = call(get("/api/publish"));
    expectError(response, 405, 40501);
    EXPECT_EQ(response.allow, "POST");

    response = call(get("/api/broadcast"));
    expectError(response, 405, 40501);
    EXPECT_EQ(response.allow, "POST");

    response = call(post("/healthz", "{}"));
    expectError(response, 405, 40501);
    EXPECT_EQ(response.allow, "GET");

    ApiRequest request = get("/api/channels");
    request.method = "DELETE";
    response = call(request);
    expectError(response, 405, 40501);
    EXPECT_EQ(response.allow, "GET");

    request = post("/api/publish", R"({"channel":"news","data":1})");
    request.method = "HEAD";  // HEAD only stands in for GET
    response = call(request);
    expectError(response, 405, 40501);
    EXPECT_EQ(response.allow, "POST");
}

TEST_F(HttpApiTest, MethodIsCheckedBeforeAuthorization) {
    // http-api.md, "Order of checks": 405 comes before 403/401.
    expectError(call(get("/api/publish", /*loopback=*/false)), 405, 40501);
}

TEST_F(HttpApiTest, AuthorizationIsCheckedBeforeTheBody) {
    ApiRequest request = post("/api/publish", "not json", "text/plain");
    request.fromLoopback = false;
    expectError(call(request), 403, 40301);
}

// --- authorization ----------------------------------------------------------------------------

TEST_F(HttpApiTest, WithoutKeysLoopbackClientsAreAllowed) {
    EXPECT_EQ(call(get("/api/info", true)).status, 200u);
    EXPECT_EQ(call(get("/metrics", true)).status, 200u);
}

TEST_F(HttpApiTest, WithoutKeysOtherClientsAreForbidden) {
    expectError(call(get("/api/info", false)), 403, 40301);
    expectError(call(get("/api/channels", false)), 403, 40301);
    expectError(call(get("/metrics", false)), 403, 40301);
    ApiRequest request = post("/api/publish", R"({"channel":"news","data":1})");
    request.fromLoopback = false;
    expectError(call(request), 403, 40301);
    // A bearer header does not help when no key is configured.
    request.authorization = "Bearer " + kKey;
    expectError(call(request), 403, 40301);
}

TEST_F(HttpApiTest, HealthzNeedsNoAuthorization) {
    EXPECT_EQ(call(get("/healthz", false)).status, 200u);
}

TEST_F(HttpApiWithKeysTest, MissingKeyIs401EvenFromLoopback) {
    expectError(call(get("/api/info", true)), 401, 40101);
    expectError(call(get("/api/info", false)), 401, 40101);
}

TEST_F(HttpApiWithKeysTest, WrongKeyIs401) {
    for (const std::string& authorization :
         std::vector<std::string>{"Bearer wrong-key-0123456789", "Bearer " + kKey.substr(0, kKey.size() - 1),
                                  "Bearer " + kKey + "x", "Bearer ", "Basic " + kKey, kKey, "Bearer  " + kKey}) {
        ApiRequest request = get("/api/info");
        request.authorization = authorization;
        expectError(call(request), 401, 40101);
    }
}

TEST_F(HttpApiWithKeysTest, TheBearerSchemeIsCaseInsensitive) {
    for (const std::string& authorization : {"bearer " + kKey, "BEARER " + kKey, "BeArEr " + kKey}) {
        ApiRequest request = get("/api/info");
        request.authorization = authorization;
        EXPECT_EQ(call(request).status, 200u) << authorization;
    }
}

TEST_F(HttpApiWithKeysTest, RightKeyIsAcceptedFromAnywhere) {
    for (const std::string& key : {kKey, std::string("another-key-0123456789")}) {
        ApiRequest request = get("/api/info", false);
        request.authorization = "Bearer " + key;
        EXPECT_EQ(call(request).status, 200u) << key;
    }
}

TEST_F(HttpApiWithKeysTest, HealthzNeedsNoKey) {
    EXPECT_EQ(call(get("/healthz", false)).status, 200u);
}

TEST_F(HttpApiWithKeysTest, PublishWithKey) {
    ApiRequest request = post("/api/publish", R"({"channel":"news","data":{"a":1}})");
    request.fromLoopback = false;
    request.authorization = "Bearer " + kKey;
    ApiResponse response = call(request);
    EXPECT_EQ(response.status, 200u) << response.body;
    EXPECT_EQ(bodyOf(response)["offset"], 1);
}

TEST_F(HttpApiTest, APublishIsAnsweredWithCompactJsonInTheDocumentedKeyOrder) {
    ApiResponse response = call(post("/api/publish", R"({"channel":"chat:room-1/a.b_c@d","data":{"a":1}})"));
    ASSERT_EQ(response.status, 200u) << response.body;
    json body = bodyOf(response);
    nlohmann::ordered_json expected{
        {"channel", "chat:room-1/a.b_c@d"}, {"offset", 1}, {"epoch", body["epoch"]}, {"mid", body["mid"]}};
    EXPECT_EQ(response.body, expected.dump());
    EXPECT_TRUE(response.wasPublish);
}

// --- API key scopes -----------------------------------------------------------------------------

class HttpApiScopesTest : public HttpApiTest {
protected:
    HttpApiScopesTest() {
        node.credentials().replace(
            Credentials{{ApiKey{"orders", kPublishKey, kScopePublish}, ApiKey{"dashboard", kReadKey, kScopeRead},
                         ApiKey{"ops", kAdminKey, kScopeAdmin}},
                        nullptr});
    }
    static inline const std::string kPublishKey = "publish-only-key-0123";
    static inline const std::string kReadKey = "read-only-key-0123456";
    static inline const std::string kAdminKey = "admin-only-key-012345";

    ApiResponse callWith(ApiRequest request, const std::string& key) {
        request.fromLoopback = false;
        request.authorization = "Bearer " + key;
        return call(request);
    }
    static ApiRequest del(std::string path) {
        ApiRequest request = get(std::move(path));
        request.method = "DELETE";
        return request;
    }
};

TEST_F(HttpApiScopesTest, APublishKeyPublishesButReadsNothing) {
    EXPECT_EQ(callWith(post("/api/publish", R"({"channel":"news","data":1})"), kPublishKey).status, 200u);
    EXPECT_EQ(callWith(post("/api/send", R"({"user":"alice","data":1})"), kPublishKey).status, 200u);
    ApiRequest history = get("/api/history");
    history.query = "channel=news";
    expectError(callWith(history, kPublishKey), 403, 40302);
    expectError(callWith(get("/api/users/alice/inbox"), kPublishKey), 403, 40302);
    expectError(callWith(get("/metrics"), kPublishKey), 403, 40302);
    expectError(callWith(get("/api/users/alice"), kPublishKey), 403, 40302);
    expectError(callWith(post("/api/disconnect", R"({"user":"alice"})"), kPublishKey), 403, 40302);
}

TEST_F(HttpApiScopesTest, AReadKeyReadsButNeitherPublishesNorAdministers) {
    EXPECT_EQ(callWith(get("/api/info"), kReadKey).status, 200u);
    EXPECT_EQ(callWith(get("/metrics"), kReadKey).status, 200u);
    EXPECT_EQ(callWith(post("/api/users/status", R"({"users":["alice"]})"), kReadKey).status, 200u);
    ApiResponse refused = callWith(post("/api/publish", R"({"channel":"news","data":1})"), kReadKey);
    expectError(refused, 403, 40302);
    EXPECT_NE(refused.body.find("publish"), std::string::npos) << "the error names the missing scope";
    expectError(callWith(del("/api/users/alice/inbox"), kReadKey), 403, 40302);
    expectError(callWith(post("/api/disconnect", R"({"user":"alice"})"), kReadKey), 403, 40302);
}

TEST_F(HttpApiScopesTest, AnAdminKeyDisconnectsAndDeletesInboxesOnly) {
    EXPECT_EQ(callWith(post("/api/disconnect", R"({"user":"alice"})"), kAdminKey).status, 202u);
    expectError(callWith(post("/api/publish", R"({"channel":"news","data":1})"), kAdminKey), 403, 40302);
    expectError(callWith(get("/api/info"), kAdminKey), 403, 40302);
}

TEST_F(HttpApiScopesTest, ReplacedKeysTakeEffectAtTheNextRequest) {
    ApiRequest info = get("/api/info");
    EXPECT_EQ(callWith(info, kReadKey).status, 200u);
    node.credentials().replace(Credentials{{ApiKey{"dashboard-2", "rotated-read-key-0123", kScopeRead}}, nullptr});
    expectError(callWith(info, kReadKey), 401, 40101);
    EXPECT_EQ(callWith(info, "rotated-read-key-0123").status, 200u);
}

// --- request bodies ---------------------------------------------------------------------------

TEST_F(HttpApiTest, NonJsonContentTypeIs415) {
    expectError(call(post("/api/publish", R"({"channel":"news","data":1})", "text/plain")), 415, 41501);
    expectError(call(post("/api/publish", R"({"channel":"news","data":1})", "")), 415, 41501);
    expectError(call(post("/api/publish", R"({"channel":"news","data":1})", "application/jsonp")), 415, 41501);
    expectError(call(post("/api/broadcast", R"({"channels":["news"],"data":1})", "application/x-www-form-urlencoded")),
                415, 41501);
}

TEST_F(HttpApiTest, JsonContentTypeVariantsAreAccepted) {
    for (const char* contentType :
         {"application/json", "application/json; charset=utf-8", "Application/JSON", "application/json ;charset=UTF-8"})
        EXPECT_EQ(call(post("/api/publish", R"({"channel":"news","data":1})", contentType)).status, 200u)
            << contentType;
}

TEST_F(HttpApiTest, PublishErrors) {
    expectError(call(post("/api/publish", R"({"channel":"news",)")), 400, 40001);
    expectError(call(post("/api/publish", "")), 400, 40001);
    expectError(call(post("/api/publish", R"(["news"])")), 400, 40003);
    expectError(call(post("/api/publish", R"("news")")), 400, 40003);
    expectError(call(post("/api/publish", R"({"data":1})")), 400, 40002);
    expectError(call(post("/api/publish", R"({"channel":5,"data":1})")), 400, 40003);
    expectError(call(post("/api/publish", R"({"channel":null,"data":1})")), 400, 40003);
    expectError(call(post("/api/publish", R"({"channel":"news"})")), 400, 40002);
    expectError(call(post("/api/publish", R"({"channel":"bad channel","data":1})")), 400, 40004);
    expectError(call(post("/api/publish", R"({"channel":"","data":1})")), 400, 40004);
    expectError(call(post("/api/publish", R"({"channel":"nope:1","data":1})")), 400, 40005);
    expectError(call(post("/api/publish", "{\"channel\":\"news\",\"data\":\"\xff\"}")), 400, 40001);
    EXPECT_EQ(node.totals().publications, 0u) << "nothing may be published by a refused request";
}

TEST_F(HttpApiTest, PublishFieldChecksRunInTheDocumentedOrder) {
    // channel present -> its type -> data present -> channel name -> namespace
    expectError(call(post("/api/publish", R"({})")), 400, 40002);
    expectError(call(post("/api/publish", R"({"channel":5})")), 400, 40003);
    expectError(call(post("/api/publish", R"({"channel":"bad channel"})")), 400, 40002);
    expectError(call(post("/api/publish", R"({"channel":"nope:x"})")), 400, 40002);
    expectError(call(post("/api/broadcast", R"({"channels":5})")), 400, 40003);
    expectError(call(post("/api/broadcast", R"({"channels":["bad channel"]})")), 400, 40002);
}

TEST_F(HttpApiTest, PublishRespondsWithThePublication) {
    ApiResponse response = call(post("/api/publish", R"({"channel":"chat:1","data":{"text":"hi"}})"));
    EXPECT_EQ(response.status, 200u) << response.body;
    EXPECT_TRUE(response.wasPublish);
    EXPECT_EQ(response.contentType, "application/json");
    json body = bodyOf(response);
    EXPECT_EQ(body.size(), 4u) << response.body;
    EXPECT_EQ(body["channel"], "chat:1");
    EXPECT_EQ(body["offset"], 1);
    EXPECT_TRUE(body["epoch"].is_string());
    EXPECT_FALSE(body["epoch"].get<std::string>().empty());
    EXPECT_TRUE(body["mid"].is_string());
    EXPECT_EQ(response.body, R"({"channel":"chat:1","offset":1,"epoch":")" + body["epoch"].get<std::string>() +
                                 R"(","mid":")" + body["mid"].get<std::string>() + R"("})")
        << "compact, in the documented order";

    // `null` counts as present.
    json second = bodyOf(call(post("/api/publish", R"({"channel":"chat:1","data":null})")));
    EXPECT_EQ(second["offset"], 2);
    EXPECT_EQ(second["epoch"], body["epoch"]);
    EXPECT_NE(second["mid"], body["mid"]);
    EXPECT_EQ(node.totals().publications, 2u);
}

TEST_F(HttpApiTest, PublishedDataReachesSubscribersCompact) {
    struct Recorder : Subscriber {
        void deliver(const PublicationPtr&, const SharedFrame& frame) override { frames.push_back(*frame); }
        void lost(const std::string&) override { ADD_FAILURE() << "no gap expected"; }
        std::vector<std::string> frames;
    } subscriber;
    pool.at(0).hub().add("news", &subscriber);
    node.subscribe("news", 0, true, std::nullopt, [&](auto result) {
        pool.at(0).hub().goLive("news", &subscriber, std::get<SubscribeOutcome>(result).position);
    });

    ApiResponse response = call(post("/api/publish", "{\"channel\":\"news\",\n \"data\": { \"text\" : \"a\\nb\" } }"));
    ASSERT_EQ(response.status, 200u) << response.body;
    pool.at(0).context().poll();
    ASSERT_EQ(subscriber.frames.size(), 1u);
    EXPECT_EQ(subscriber.frames[0].find('\n'), std::string::npos);
    json message = json::parse(subscriber.frames[0]);
    EXPECT_EQ(message["type"], "message");
    EXPECT_EQ(message["data"], (json{{"text", "a\nb"}}));
    EXPECT_EQ(message["mid"], bodyOf(response)["mid"]);
}

// --- broadcast --------------------------------------------------------------------------------

TEST_F(HttpApiTest, BroadcastReportsEveryChannelInRequestOrder) {
    call(post("/api/publish", R"({"channel":"news","data":0})"));
    ApiResponse response =
        call(post("/api/broadcast", R"({"channels":["news","bad channel","chat:1","nope:x","news"],"data":{"a":1}})"));
    EXPECT_EQ(response.status, 200u) << response.body;
    EXPECT_TRUE(response.wasPublish);
    json body = bodyOf(response);
    ASSERT_TRUE(body["results"].is_array()) << response.body;
    const json& results = body["results"];
    ASSERT_EQ(results.size(), 5u) << response.body;

    EXPECT_EQ(results[0]["channel"], "news");
    EXPECT_EQ(results[0]["offset"], 2);
    EXPECT_TRUE(results[0]["epoch"].is_string());
    EXPECT_TRUE(results[0]["mid"].is_string());
    EXPECT_FALSE(results[0].contains("error"));

    EXPECT_EQ(results[1]["channel"], "bad channel");
    EXPECT_EQ(results[1]["error"]["code"], 40004);
    EXPECT_TRUE(results[1]["error"]["message"].is_string());
    EXPECT_FALSE(results[1].contains("offset"));

    EXPECT_EQ(results[2]["channel"], "chat:1");
    EXPECT_EQ(results[2]["offset"], 1);

    EXPECT_EQ(results[3]["channel"], "nope:x");
    EXPECT_EQ(results[3]["error"]["code"], 40005);

    EXPECT_EQ(results[4]["channel"], "news");
    EXPECT_EQ(results[4]["offset"], 3);
    EXPECT_NE(results[4]["mid"], results[0]["mid"]);

    EXPECT_EQ(node.totals().publications, 4u);  // 1 publish + 3 valid broadcast channels
}

TEST_F(HttpApiTest, BroadcastOfOnlyInvalidChannelsStillAnswers) {
    ApiResponse response = call(post("/api/broadcast", R"({"channels":["a b"],"data":1})"));
    EXPECT_EQ(response.status, 200u);
    EXPECT_EQ(bodyOf(response)["results"][0]["error"]["code"], 40004);
}

TEST_F(HttpApiTest, BroadcastErrors) {
    expectError(call(post("/api/broadcast", "{")), 400, 40001);
    expectError(call(post("/api/broadcast", "[]")), 400, 40003);
    expectError(call(post("/api/broadcast", R"({"data":1})")), 400, 40002);
    expectError(call(post("/api/broadcast", R"({"channels":"news","data":1})")), 400, 40003);
    expectError(call(post("/api/broadcast", R"({"channels":[],"data":1})")), 400, 40003);
    expectError(call(post("/api/broadcast", R"({"channels":["news",5],"data":1})")), 400, 40003);
    expectError(call(post("/api/broadcast", R"({"channels":["news"]})")), 400, 40002);
    json tooMany = json{{"channels", channelNames(1001)}, {"data", 1}};
    expectError(call(post("/api/broadcast", tooMany.dump())), 400, 40003);
    EXPECT_EQ(node.totals().publications, 0u);
}

TEST_F(HttpApiTest, BatchPublishesInOrderAndReportsEachPublication) {
    ApiResponse response = call(post("/api/batch", R"({"publications":[
        {"channel":"news","data":1},
        {"channel":"news","data":{"b":2},"qos":1},
        {"channel":"bad channel","data":3},
        {"channel":"chat:1","data":4},
        {"channel":"nope:x","data":5},
        {"channel":"news","data":6}]})"));
    EXPECT_EQ(response.status, 200u) << response.body;
    EXPECT_TRUE(response.wasPublish);
    const json results = bodyOf(response)["results"];
    ASSERT_EQ(results.size(), 6u) << response.body;
    EXPECT_EQ(results[0]["channel"], "news");
    EXPECT_EQ(results[0]["offset"], 1);
    EXPECT_EQ(results[1]["offset"], 2);  // one channel's publications keep the request's order
    EXPECT_EQ(results[2]["error"]["code"], 40004);
    EXPECT_EQ(results[3]["channel"], "chat:1");
    EXPECT_EQ(results[3]["offset"], 1);
    EXPECT_EQ(results[4]["error"]["code"], 40005);
    EXPECT_EQ(results[5]["offset"], 3);
    EXPECT_EQ(node.totals().publications, 4u);
}

TEST_F(HttpApiTest, BatchErrorsFailTheWholeRequestBeforeAnythingIsPublished) {
    expectError(call(post("/api/batch", "{")), 400, 40001);
    expectError(call(post("/api/batch", R"({})")), 400, 40002);
    expectError(call(post("/api/batch", R"({"publications":[]})")), 400, 40003);
    expectError(call(post("/api/batch", R"({"publications":{"channel":"news"}})")), 400, 40003);
    expectError(call(post("/api/batch", R"({"publications":[{"channel":"news","data":1},5]})")), 400, 40003);
    expectError(call(post("/api/batch", R"({"publications":[{"channel":"news","data":1},{"data":1}]})")), 400, 40002);
    expectError(call(post("/api/batch", R"({"publications":[{"channel":"news","data":1},{"channel":7,"data":1}]})")),
                400, 40003);
    expectError(call(post("/api/batch", R"({"publications":[{"channel":"news","data":1},{"channel":"news"}]})")), 400,
                40002);
    expectError(call(post("/api/batch",
                          R"({"publications":[{"channel":"news","data":1},{"channel":"news","data":1,"qos":3}]})")),
                400, 40003);
    ApiResponse named = call(post("/api/batch", R"({"publications":[{"channel":"news","data":1},{"data":1}]})"));
    EXPECT_NE(bodyOf(named)["error"]["message"].get<std::string>().find("publications[1]"), std::string::npos);
    json tooMany = json{{"publications", json::array()}};
    for (int i = 0; i < 1001; ++i) tooMany["publications"].push_back(json{{"channel", "news"}, {"data", i}});
    expectError(call(post("/api/batch", tooMany.dump())), 400, 40003);
    EXPECT_EQ(node.totals().publications, 0u);
}

TEST_F(HttpApiTest, KeyedBatchIsReplayed) {
    const std::string body =
        R"({"publications":[{"channel":"news","data":1},{"channel":"news","data":2}],"mid":"k-1"})";
    ApiResponse first = call(post("/api/batch", body));
    ASSERT_EQ(first.status, 200u) << first.body;
    ApiResponse again = call(post("/api/batch", body));
    EXPECT_TRUE(again.replayed);
    EXPECT_EQ(again.body, first.body);
    EXPECT_EQ(node.totals().publications, 2u);
}

TEST_F(HttpApiTest, BroadcastOf1000ChannelsIsAllowed) {
    json request = json{{"channels", channelNames(1000)}, {"data", 1}};
    ApiResponse response = call(post("/api/broadcast", request.dump()));
    EXPECT_EQ(response.status, 200u);
    EXPECT_EQ(bodyOf(response)["results"].size(), 1000u);
}

// --- channels, info, metrics ------------------------------------------------------------------

TEST_F(HttpApiTest, ChannelsListsSubscribedChannelsSorted) {
    EXPECT_EQ(bodyOf(call(get("/api/channels"))), (json{{"scope", "node"}, {"channels", json::array()}}));
    node.join("news", 0, true, [](auto) {});
    node.join("news", 0, false, [](auto) {});
    node.join("chat:1", 0, true, [](auto) {});
    ApiResponse response = call(get("/api/channels"));
    EXPECT_EQ(response.status, 200u);
    json expected = json::object();
    expected["scope"] = "node";  // this node's subscribers; /api/nodes is the cluster's view
    expected["channels"] =
        json::array({json{{"channel", "chat:1"}, {"subscribers", 1}}, json{{"channel", "news"}, {"subscribers", 2}}});
    EXPECT_EQ(bodyOf(response), expected);
}

TEST_F(HttpApiTest, InfoFields) {
    node.join("news", 0, true, [](auto) {});
    call(post("/api/publish", R"({"channel":"news","data":1})"));
    pool.at(0).metrics().websocketConnections.add(3);
    pool.at(0).metrics().messagesIn.add(5);
    pool.at(0).metrics().messagesOut.add(7);
    ApiResponse response = call(get("/api/info"));
    EXPECT_EQ(response.status, 200u);
    json body = bodyOf(response);
    EXPECT_EQ(body.size(), 13u) << response.body;
    EXPECT_EQ(body["scope"], "node");
    EXPECT_EQ(body["node"], "node-test");
    EXPECT_EQ(body["version"], Node::version());
    EXPECT_TRUE(body["uptime_seconds"].is_number());
    EXPECT_GE(body["uptime_seconds"].get<double>(), 0.0);
    EXPECT_EQ(body["connections"], 3);
    EXPECT_EQ(body["channels"], 1);
    EXPECT_EQ(body["publications"], 1);
    EXPECT_EQ(body["threads"], 1);
    EXPECT_EQ(body["engine"], "memory");
    EXPECT_EQ(body["sessions"], 0);
    EXPECT_EQ(body["messages_in"], 5);
    EXPECT_EQ(body["messages_out"], 7);
    EXPECT_EQ(body["shards"], json::array()) << "the memory engine has no shards";
}

// --- the admin console ------------------------------------------------------------------------

TEST_F(HttpApiTest, TheAdminConsoleIsNotServedUnlessTurnedOn) {
    ASSERT_FALSE(node.config().admin.console);
    for (const char* path : {"/admin", "/admin/", "/admin/console.js"}) expectError(call(get(path)), 404, 40401);
}

class AdminConsoleTest : public HttpApiTest {
protected:
    AdminConsoleTest() : HttpApiTest({}, [](Config& config) { config.admin.console = true; }) {}

    static std::string headerOf(const ApiResponse& response, const std::string& name) {
        for (const auto& [header, value] : response.headers)
            if (header == name) return value;
        return "";
    }
};

TEST_F(AdminConsoleTest, ServesItsPagesWithAStrictPolicy) {
    struct Expected {
        const char* path;
        const char* contentType;
        const char* contains;
    };
    for (const Expected& page : {Expected{"/admin/", "text/html; charset=utf-8", "<script src=\"console.js\""},
                                 Expected{"/admin/index.html", "text/html; charset=utf-8", "console.css"},
                                 Expected{"/admin/console.js", "text/javascript; charset=utf-8", "/api/info"},
                                 Expected{"/admin/console.css", "text/css; charset=utf-8", "body"},
                                 Expected{"/admin/favicon.svg", "image/svg+xml", "<svg"}}) {
        ApiResponse response = call(get(page.path, false));  // no key: the page holds no secret
        EXPECT_EQ(response.status, 200u) << page.path;
        EXPECT_EQ(response.contentType, page.contentType) << page.path;
        EXPECT_NE(response.body.find(page.contains), std::string::npos) << page.path;
        EXPECT_EQ(response.cacheControl, "no-store") << page.path;
        EXPECT_EQ(headerOf(response, "Content-Security-Policy"),
                  "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; frame-ancestors 'none'")
            << page.path;
        EXPECT_EQ(headerOf(response, "Referrer-Policy"), "no-referrer") << page.path;
    }
}

TEST_F(AdminConsoleTest, TheBarePathRedirectsToTheFolder) {
    ApiResponse response = call(get("/admin"));
    EXPECT_EQ(response.status, 308u);
    EXPECT_EQ(response.location, "/admin/");
}

TEST_F(AdminConsoleTest, UnknownFilesAndOtherMethodsAreRefused) {
    expectError(call(get("/admin/nope.js")), 404, 40401);
    expectError(call(get("/admin/console.js/")), 404, 40401);
    expectError(call(get("/administrator")), 404, 40401);
    ApiRequest request = post("/admin/", "{}");
    ApiResponse response = call(request);
    expectError(response, 405, 40501);
    EXPECT_EQ(response.allow, "GET, HEAD");
    request = get("/admin/console.js");
    request.method = "HEAD";
    EXPECT_EQ(call(request).status, 200u);
}

TEST_F(AdminConsoleTest, OnlyWhereTheApiIsServed) {
    // A public listener beside a separate api.listen serves neither the API nor its console.
    expectError(call(get("/admin/"), ListenerRoutes{true, false}), 404, 40401);
    EXPECT_EQ(call(get("/admin/"), ListenerRoutes{false, true}).status, 200u);
}

TEST_F(HttpApiTest, MetricsIsPrometheusText) {
    pool.at(0).metrics().websocketConnections.add(2);
    pool.at(0).metrics().publishLatency.observe(std::chrono::microseconds(300));
    ApiResponse response = call(get("/metrics"));
    EXPECT_EQ(response.status, 200u);
    EXPECT_EQ(response.contentType, "text/plain; version=0.0.4");
    const std::string& text = response.body;
    EXPECT_NE(text.find("# TYPE wspush_connections gauge\nwspush_connections 2\n"), std::string::npos) << text;
    EXPECT_NE(text.find("# TYPE wspush_publish_latency_seconds histogram\n"), std::string::npos) << text;
    EXPECT_NE(text.find("wspush_publish_latency_seconds_bucket{le=\"0.00025\"} 0\n"), std::string::npos) << text;
    EXPECT_NE(text.find("wspush_publish_latency_seconds_bucket{le=\"0.0005\"} 1\n"), std::string::npos) << text;
    EXPECT_NE(text.find("wspush_publish_latency_seconds_bucket{le=\"+Inf\"} 1\n"), std::string::npos) << text;
    EXPECT_NE(text.find("wspush_publish_latency_seconds_count 1\n"), std::string::npos) << text;
    EXPECT_NE(text.find("wspush_publish_latency_seconds_sum 0.0003\n"), std::string::npos) << text;
}

// --- listener routes --------------------------------------------------------------------------

TEST_F(HttpApiTest, PublicListenerWithSeparateApiHidesTheApi) {
    ListenerRoutes publicOnly{.websocket = true, .api = false};
    expectError(call(get("/api/info"), publicOnly), 404, 40401);
    expectError(call(get("/api/channels"), publicOnly), 404, 40401);
    expectError(call(get("/metrics"), publicOnly), 404, 40401);
    expectError(call(post("/api/publish", R"({"channel":"news","data":1})"), publicOnly), 404, 40401);
    expectError(call(post("/api/broadcast", R"({"channels":["news"],"data":1})"), publicOnly), 404, 40401);
    EXPECT_EQ(call(get("/healthz"), publicOnly).status, 200u);
    EXPECT_EQ(node.totals().publications, 0u);
}

TEST(HttpApiErrorTest, StatusIsTheFirstThreeDigitsOfTheCode) {
    ApiResponse response = HttpApi::error(ApiErrorCode::PayloadTooLarge, "too \"big\"");
    EXPECT_EQ(response.status, 413u);
    EXPECT_EQ(json::parse(response.body), (json{{"error", {{"code", 41301}, {"message", "too \"big\""}}}}));
    EXPECT_EQ(HttpApi::error(ApiErrorCode::Unavailable, "x").status, 503u);
    EXPECT_EQ(HttpApi::error(ApiErrorCode::Internal, "x").status, 500u);
}

// --- idempotent publishing --------------------------------------------------------------------

ApiRequest keyed(ApiRequest request, std::string key) {
    request.idempotencyKey = std::move(key);
    return request;
}

TEST_F(HttpApiTest, KeyedPublishIsReplayedIdenticallyAndPublishesNothing) {
    const std::string body = R"({"channel":"news","data":{"n":1}})";
    ApiResponse first = call(keyed(post("/api/publish", body), "order-17"));
    ASSERT_EQ(first.status, 200u) << first.body;
    EXPECT_FALSE(first.replayed);
    EXPECT_TRUE(first.wasPublish);
    EXPECT_EQ(bodyOf(first)["offset"], 1);

    for (int i = 0; i < 3; ++i) {
        ApiResponse again = call(keyed(post("/api/publish", body), "order-17"));
        EXPECT_EQ(again.status, 200u);
        EXPECT_EQ(again.body, first.body) << "same offset, epoch and mid";
        EXPECT_EQ(again.contentType, first.contentType);
        EXPECT_TRUE(again.replayed);
        EXPECT_FALSE(again.wasPublish) << "a replay is not a publish (no latency observation)";
    }
    EXPECT_EQ(node.totals().publications, 1u);
    // The channel's offset did not advance: the next real publication is 2.
    ApiResponse next = call(post("/api/publish", body));
    EXPECT_FALSE(next.replayed);
    EXPECT_EQ(bodyOf(next)["offset"], 2);
    EXPECT_NE(bodyOf(next)["mid"], bodyOf(first)["mid"]);
}

TEST_F(HttpApiTest, KeyedPublishWithADifferentBodyIs409) {
    ASSERT_EQ(call(keyed(post("/api/publish", R"({"channel":"news","data":1})"), "k")).status, 200u);
    ApiResponse conflict = call(keyed(post("/api/publish", R"({"channel":"news","data":2})"), "k"));
    expectError(conflict, 409, 40901);
    EXPECT_FALSE(conflict.replayed);
    // Byte-identical, not JSON-equal: whitespace makes a different body.
    expectError(call(keyed(post("/api/publish", R"({"channel":"news", "data":1})"), "k")), 409, 40901);
    EXPECT_EQ(node.totals().publications, 1u);
    // The conflict changed nothing: the original body still replays.
    EXPECT_TRUE(call(keyed(post("/api/publish", R"({"channel":"news","data":1})"), "k")).replayed);
}

TEST_F(HttpApiTest, MidInTheBodyIsTheKeyWithoutAHeader) {
    const std::string body = R"({"channel":"news","data":1,"mid":"backend-42"})";
    ApiResponse first = call(post("/api/publish", body));
    ASSERT_EQ(first.status, 200u) << first.body;
    EXPECT_FALSE(first.replayed);
    ApiResponse again = call(post("/api/publish", body));
    EXPECT_TRUE(again.replayed);
    EXPECT_EQ(again.body, first.body);
    expectError(call(post("/api/publish", R"({"channel":"news","data":2,"mid":"backend-42"})")), 409, 40901);
    EXPECT_EQ(node.totals().publications, 1u);
    // The body's mid and a header with the same value are the same key.
    EXPECT_TRUE(call(keyed(post("/api/publish", body), "backend-42")).replayed);
}

TEST_F(HttpApiTest, TheHeaderWinsOverTheBodyMid) {
    const std::string body = R"({"channel":"news","data":1,"mid":"body-key"})";
    ASSERT_FALSE(call(keyed(post("/api/publish", body), "header-key")).replayed);
    // Without the header the body's mid is a key that has not been used yet.
    ApiResponse byMid = call(post("/api/publish", body));
    EXPECT_FALSE(byMid.replayed);
    EXPECT_EQ(bodyOf(byMid)["offset"], 2);
    EXPECT_TRUE(call(keyed(post("/api/publish", body), "header-key")).replayed);
    // With a header, the body's mid is not even validated.
    ApiResponse invalidMid = call(keyed(post("/api/publish", R"({"channel":"news","data":1,"mid":5})"), "h2"));
    EXPECT_EQ(invalidMid.status, 200u) << invalidMid.body;
    EXPECT_EQ(node.totals().publications, 3u);
}

TEST_F(HttpApiTest, InvalidIdempotencyKeysAre400) {
    const std::string body = R"({"channel":"news","data":1})";
    for (const std::string& key :
         {std::string(), std::string(129, 'k'), std::string("tab\there"), std::string("new\nline"),
          std::string("caf\xc3\xa9"), std::string("del\x7f"), std::string(1, '\0')}) {
        expectError(call(keyed(post("/api/publish", body), key)), 400, 40006);
        expectError(call(keyed(post("/api/broadcast", R"({"channels":["news"],"data":1})"), key)), 400, 40006);
    }
    for (const char* invalid :
         {R"({"channel":"news","data":1,"mid":""})", R"({"channel":"news","data":1,"mid":5})",
          R"({"channel":"news","data":1,"mid":null})", R"({"channel":"news","data":1,"mid":["a"]})",
          "{\"channel\":\"news\",\"data\":1,\"mid\":\"caf\xc3\xa9\"}"})
        expectError(call(post("/api/publish", invalid)), 400, 40006);
    EXPECT_EQ(node.totals().publications, 0u);

    // The limits: 1 and 128 printable characters, space and punctuation included.
    for (const std::string& key : {std::string("x"), std::string(128, 'k'), std::string(" a b ~!\"#{}")})
        EXPECT_EQ(call(keyed(post("/api/publish", body), key)).status, 200u) << key;
}

TEST_F(HttpApiTest, IdempotencyKeyIsCheckedAfterTheJsonAndBeforeTheFields) {
    expectError(call(keyed(post("/api/publish", "{nope"), "")), 400, 40001);
    expectError(call(keyed(post("/api/publish", R"({"channel":"news","data":1})", "text/plain"), "")), 415, 41501);
    expectError(call(keyed(post("/api/publish", R"({})"), "")), 400, 40006);
    expectError(call(post("/api/publish", R"({"mid":""})")), 400, 40006);
}

TEST_F(HttpApiTest, RefusedRequestsDoNotUseTheKey) {
    // A 400 is not remembered: the client fixes the body and retries with the same key.
    expectError(call(keyed(post("/api/publish", R"({"channel":"bad channel","data":1})"), "k")), 400, 40004);
    ApiResponse fixed = call(keyed(post("/api/publish", R"({"channel":"news","data":1})"), "k"));
    EXPECT_EQ(fixed.status, 200u);
    EXPECT_FALSE(fixed.replayed);
    // And an invalid body with a used key is still a 400, not a 409.
    expectError(call(keyed(post("/api/publish", R"({"channel":"news"})"), "k")), 400, 40002);
}

TEST_F(HttpApiTest, PublishAndBroadcastKeysAreSeparate) {
    ApiResponse publish = call(keyed(post("/api/publish", R"({"channel":"news","data":1})"), "same"));
    ApiResponse broadcast = call(keyed(post("/api/broadcast", R"({"channels":["news"],"data":1})"), "same"));
    EXPECT_FALSE(publish.replayed);
    EXPECT_FALSE(broadcast.replayed);
    EXPECT_EQ(broadcast.status, 200u) << broadcast.body;
    EXPECT_EQ(node.totals().publications, 2u);
}

TEST_F(HttpApiTest, KeyedBroadcastIsReplayed) {
    const std::string body = R"({"channels":["news","chat:1","bad channel"],"data":{"a":1},"mid":"b-1"})";
    ApiResponse first = call(post("/api/broadcast", body));
    ASSERT_EQ(first.status, 200u) << first.body;
    EXPECT_FALSE(first.replayed);
    EXPECT_TRUE(first.wasPublish);
    ApiResponse again = call(post("/api/broadcast", body));
    EXPECT_TRUE(again.replayed);
    EXPECT_FALSE(again.wasPublish);
    EXPECT_EQ(again.body, first.body);
    expectError(call(post("/api/broadcast", R"({"channels":["news"],"data":{"a":1},"mid":"b-1"})")), 409, 40901);
    EXPECT_EQ(node.totals().publications, 2u);
}

TEST_F(HttpApiTest, RequestsWithoutAKeyAreNeverReplayed) {
    const std::string body = R"({"channel":"news","data":1})";
    EXPECT_EQ(bodyOf(call(post("/api/publish", body)))["offset"], 1);
    ApiResponse second = call(post("/api/publish", body));
    EXPECT_FALSE(second.replayed);
    EXPECT_EQ(bodyOf(second)["offset"], 2);
}

// A broker that holds publish completions until the test releases them, or fails them.
class ControlledBroker final : public Broker {
public:
    const char* name() const override { return "controlled"; }
    ControlledBroker() : inner_("ctl", [] { return std::int64_t{1700000000000}; }) {}
    bool clustered() const override { return false; }
    void setEventHandler(BrokerEventHandler* handler, std::string nodeName) override {
        inner_.setEventHandler(handler, std::move(nodeName));
    }
    void publish(PublishRequest request, PublishCompletion done) override {
        ++publishes;
        if (failNext) {
            failNext = false;
            held.push_back([done = std::move(done)] { done(BrokerError{ApiErrorCode::Unavailable, "engine down"}); });
            return;
        }
        held.push_back([this, request = std::move(request), done = std::move(done)]() mutable {
            inner_.publish(std::move(request), std::move(done));
        });
    }
    void subscribe(std::string_view channel, SubscribeCompletion done) override {
        inner_.subscribe(channel, std::move(done));
    }
    void unsubscribe(std::string_view channel) override { inner_.unsubscribe(channel); }
    void history(std::string_view channel, HistoryQuery query, HistoryCompletion done) override {
        inner_.history(channel, query, std::move(done));
    }
    EngineStats stats() const override { return inner_.stats(); }
    std::vector<EngineShardHealth> health() const override { return {}; }
    void publishEvent(std::string_view channel, std::string frame) override {
        inner_.publishEvent(channel, std::move(frame));
    }
    void trimHistory(std::string_view channel, StreamPosition upTo) override { inner_.trimHistory(channel, upTo); }
    void publishControl(std::string_view target, std::string payload) override {
        inner_.publishControl(target, std::move(payload));
    }
    void heartbeat(NodeHeartbeat heartbeat, std::chrono::milliseconds ttl) override {
        inner_.heartbeat(std::move(heartbeat), ttl);
    }
    void nodes(NodesCompletion done) override { inner_.nodes(std::move(done)); }

    void releaseAll() {
        auto completions = std::move(held);
        held.clear();
        for (auto& completion : completions) completion();
    }

    int publishes = 0;
    bool failNext = false;
    std::vector<std::function<void()>> held;

private:
    MemoryBroker inner_;
};

class HttpApiInFlightTest : public ::testing::Test {
protected:
    HttpApiInFlightTest() {
        auto owned = std::make_unique<ControlledBroker>();
        broker = owned.get();
        node.emplace(testConfig(), "node-test", testing::oneNodeEngine(std::move(owned)));
        node->attach(pool);
        api.emplace(*node);
    }

    // Starts a request; its responses are appended to `into`.
    void start(const ApiRequest& request, std::vector<ApiResponse>& into) {
        api->handle(request, {}, [&into](ApiResponse response) { into.push_back(std::move(response)); });
    }

    static ApiRequest keyedPublish(std::string body, std::string key) {
        ApiRequest request;
        request.method = "POST";
        request.path = "/api/publish";
        request.body = std::move(body);
        request.contentType = "application/json";
        request.fromLoopback = true;
        request.idempotencyKey = std::move(key);
        return request;
    }

    EventLoopPool pool{1};
    ControlledBroker* broker = nullptr;
    std::optional<Node> node;
    std::optional<HttpApi> api;
};

TEST_F(HttpApiInFlightTest, DuplicatesWaitForTheFirstAndGetItsResponse) {
    const std::string body = R"({"channel":"news","data":1})";
    std::vector<ApiResponse> first, second, third, conflict;
    start(keyedPublish(body, "k"), first);
    start(keyedPublish(body, "k"), second);
    start(keyedPublish(body, "k"), third);
    start(keyedPublish(R"({"channel":"news","data":2})", "k"), conflict);
    EXPECT_EQ(broker->publishes, 1) << "only the first request publishes";
    EXPECT_TRUE(first.empty());
    EXPECT_TRUE(second.empty()) << "a duplicate waits for the request in flight";
    ASSERT_EQ(conflict.size(), 1u) << "a different body is refused at once, even while in flight";
    EXPECT_EQ(conflict[0].status, 409u);

    broker->releaseAll();
    ASSERT_EQ(first.size(), 1u);
    ASSERT_EQ(second.size(), 1u);
    ASSERT_EQ(third.size(), 1u);
    EXPECT_EQ(first[0].status, 200u);
    EXPECT_FALSE(first[0].replayed);
    EXPECT_TRUE(first[0].wasPublish);
    for (const auto* waiter : {&second, &third}) {
        EXPECT_EQ((*waiter)[0].body, first[0].body);
        EXPECT_TRUE((*waiter)[0].replayed);
        EXPECT_FALSE((*waiter)[0].wasPublish);
    }
    EXPECT_EQ(node->totals().publications, 1u);
}

TEST_F(HttpApiInFlightTest, AFailureIsNotRememberedAndWaitersShareIt) {
    const std::string body = R"({"channel":"news","data":1})";
    std::vector<ApiResponse> first, waiter, retry;
    broker->failNext = true;
    start(keyedPublish(body, "k"), first);
    start(keyedPublish(body, "k"), waiter);
    broker->releaseAll();
    ASSERT_EQ(first.size(), 1u);
    ASSERT_EQ(waiter.size(), 1u);
    EXPECT_EQ(first[0].status, 503u);
    EXPECT_FALSE(first[0].replayed);
    EXPECT_EQ(waiter[0].status, 503u) << "the waiter waited for that attempt";
    EXPECT_EQ(waiter[0].body, first[0].body);
    EXPECT_TRUE(waiter[0].replayed);

    // The key was released: a retry publishes (with any body).
    start(keyedPublish(R"({"channel":"news","data":"other"})", "k"), retry);
    EXPECT_EQ(broker->publishes, 2);
    broker->releaseAll();
    ASSERT_EQ(retry.size(), 1u);
    EXPECT_EQ(retry[0].status, 200u) << retry[0].body;
    EXPECT_FALSE(retry[0].replayed);
    EXPECT_EQ(json::parse(retry[0].body)["offset"], 1);
}

TEST(HttpApiIdempotencyWindowTest, TheWindowAndTheCapComeFromTheConfig) {
    Config config = testConfig();
    config.api.idempotency_window = Seconds{60};
    config.api.idempotency_max_entries = 2;
    Node node(
        config, "node-test",
        testing::oneNodeEngine(std::make_unique<MemoryBroker>("inst", [] { return std::int64_t{1700000000000}; })));
    EventLoopPool pool(1);
    node.attach(pool);
    auto now = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
    HttpApi api(node, [&now] { return now; });
    auto publish = [&](std::string key, int data) {
        ApiRequest request;
        request.method = "POST";
        request.path = "/api/publish";
        request.body = json{{"channel", "news"}, {"data", data}}.dump();
        request.contentType = "application/json";
        request.fromLoopback = true;
        request.idempotencyKey = std::move(key);
        ApiResponse out;
        api.handle(request, {}, [&out](ApiResponse response) { out = std::move(response); });
        return out;
    };
    ASSERT_FALSE(publish("a", 1).replayed);
    now += std::chrono::seconds(59);
    EXPECT_TRUE(publish("a", 1).replayed);
    now += std::chrono::seconds(1);
    EXPECT_FALSE(publish("a", 2).replayed) << "expired: the key is free again";

    // Cap 2: a third key evicts the oldest ("a").
    ASSERT_FALSE(publish("b", 1).replayed);
    ASSERT_FALSE(publish("c", 1).replayed);
    EXPECT_TRUE(publish("b", 1).replayed);
    EXPECT_TRUE(publish("c", 1).replayed);
    ApiResponse afterEviction = publish("a", 2);
    EXPECT_FALSE(afterEviction.replayed) << "evicted";
    EXPECT_EQ(afterEviction.status, 200u);
    EXPECT_EQ(node.totals().publications, 4u) << "the engine still remembered (\"a\", body 2): published once";
}

}  // namespace
}  // namespace wspush

// --- a clustered engine: health, readiness, nodes, disconnect, an unavailable engine ----------

namespace wspush {
namespace {

class ClusterApiTest : public ::testing::Test {
protected:
    ClusterApiTest()
        : node(testConfig(), "n1", testing::oneNodeEngine(std::make_unique<fakes::FakeClusterBroker>(cluster))),
          pool(1),
          api(node) {
        node.attach(pool);
    }

    // Answers the request; nullopt when it has not answered (yet). Delays asked for with
    // ApiRequest::after are kept in `timers`.
    std::optional<ApiResponse> call(ApiRequest request, ListenerRoutes routes = {}) {
        auto response = std::make_shared<std::optional<ApiResponse>>();
        request.after = [this](std::chrono::milliseconds delay, std::function<void()> task) {
            timers.emplace_back(delay, std::move(task));
        };
        api.handle(request, routes, [response](ApiResponse r) { *response = std::move(r); });
        responses.push_back(response);
        return *response;
    }
    static ApiRequest get(std::string path) {
        ApiRequest request;
        request.method = "GET";
        request.path = std::move(path);
        request.fromLoopback = true;
        return request;
    }
    static ApiRequest post(std::string path, std::string body) {
        ApiRequest request = get(std::move(path));
        request.method = "POST";
        request.body = std::move(body);
        request.contentType = "application/json";
        return request;
    }
    static json bodyOf(const std::optional<ApiResponse>& response) {
        EXPECT_TRUE(response.has_value());
        return response ? json::parse(response->body) : json();
    }
    static void expectError(const std::optional<ApiResponse>& response, unsigned status, int code) {
        ASSERT_TRUE(response.has_value());
        EXPECT_EQ(response->status, status) << response->body;
        EXPECT_EQ(json::parse(response->body)["error"]["code"], code) << response->body;
    }

    fakes::FakeCluster cluster;
    Node node;
    EventLoopPool pool;
    HttpApi api;
    std::vector<std::pair<std::chrono::milliseconds, std::function<void()>>> timers;
    std::vector<std::shared_ptr<std::optional<ApiResponse>>> responses;
};

TEST_F(ClusterApiTest, HealthzStaysUpAndReadyzFollowsTheShards) {
    cluster.health = {{"10.0.0.1:6379", true, ""}, {"10.0.0.2:6379", true, ""}};
    EXPECT_EQ(bodyOf(call(get("/healthz"))), (json{{"status", "ok"}}));
    auto ready = call(get("/readyz"));
    EXPECT_EQ(ready->status, 200u);
    EXPECT_EQ(bodyOf(ready), (json{{"status", "ready"}}));

    cluster.health[1] = {"10.0.0.2:6379", false, "connection refused"};
    json shards = json::array({json{{"shard", "10.0.0.1:6379"}, {"ok", true}, {"error", ""}},
                               json{{"shard", "10.0.0.2:6379"}, {"ok", false}, {"error", "connection refused"}}});
    auto health = call(get("/healthz"));
    EXPECT_EQ(health->status, 200u) << "the process is alive: no restart for a Redis outage";
    EXPECT_EQ(bodyOf(health), (json{{"status", "degraded"}, {"redis", shards}}));
    ready = call(get("/readyz"));
    EXPECT_EQ(ready->status, 503u);
    EXPECT_EQ(bodyOf(ready), (json{{"status", "unavailable"}, {"redis", shards}}));

    cluster.health[1].ok = true;
    EXPECT_EQ(call(get("/readyz"))->status, 200u);
    api.beginDraining();
    ready = call(get("/readyz"));
    EXPECT_EQ(ready->status, 503u);
    EXPECT_EQ(bodyOf(ready), (json{{"status", "draining"}}));
    EXPECT_EQ(call(get("/healthz"))->status, 200u);
}

TEST_F(ClusterApiTest, InfoNamesEveryShardWithItsHealth) {
    cluster.health = {{"10.0.0.1:6379", true, ""}, {"10.0.0.2:6379", false, "connection refused"}};
    EXPECT_EQ(bodyOf(call(get("/api/info")))["shards"],
              json::array({json{{"shard", "10.0.0.1:6379"}, {"ok", true}, {"error", ""}},
                           json{{"shard", "10.0.0.2:6379"}, {"ok", false}, {"error", "connection refused"}}}));
}

TEST_F(ClusterApiTest, ReadyzIsServedWhereHealthzIsWithoutAKey) {
    ListenerRoutes publicOnly{true, false};
    ApiRequest request = get("/readyz");
    request.fromLoopback = false;
    EXPECT_EQ(call(request, publicOnly)->status, 200u);
    request.method = "HEAD";
    EXPECT_EQ(call(request, publicOnly)->status, 200u);
    request.method = "POST";
    EXPECT_EQ(call(request, publicOnly)->status, 405u);
    expectError(call(get("/api/nodes"), publicOnly), 404, 40401);
}

TEST_F(ClusterApiTest, NodesListsEveryHeartbeat) {
    node.heartbeat(NodeHeartbeat{"n1", R"({"address":"10.0.0.1:8080","version":"0.1.0","connections":3,)"
                                       R"("subscriptions":5,"uptime_s":12,"extra":true})"},
                   std::chrono::seconds(15));
    node.heartbeat(NodeHeartbeat{"n2", "not json"}, std::chrono::seconds(15));
    auto response = call(get("/api/nodes"));
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200u);
    json expected = json::parse(R"({"nodes":[{"name":"n1","address":"10.0.0.1:8080","version":"0.1.0",
        "connections":3,"subscriptions":5,"uptime_s":12},{"name":"n2"}]})");
    EXPECT_EQ(bodyOf(response), expected);

    cluster.failure = BrokerError{ApiErrorCode::Internal, "no answer"};
    expectError(call(get("/api/nodes")), 503, 50301);
}

TEST_F(ClusterApiTest, DisconnectIsSentToEveryNode) {
    auto response = call(post("/api/disconnect", R"({"user":"alice"})"));
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 202u);
    EXPECT_EQ(bodyOf(response), (json{{"status", "sent"}, {"scope", "cluster"}}));
    ASSERT_EQ(cluster.controls.size(), 1u);
    EXPECT_EQ(json::parse(cluster.controls[0]),
              (json{{"type", "disconnect"}, {"reconnect", false}, {"user", "alice"}}));

    EXPECT_EQ(call(post("/api/disconnect", R"({"client":"c1","reconnect":true})"))->status, 202u);
    EXPECT_EQ(json::parse(cluster.controls[1]), (json{{"type", "disconnect"}, {"reconnect", true}, {"client", "c1"}}));
}

TEST_F(ClusterApiTest, DisconnectRefusesBadBodies) {
    expectError(call(post("/api/disconnect", "{}")), 400, 40002);
    expectError(call(post("/api/disconnect", R"({"reconnect":true})")), 400, 40002);
    expectError(call(post("/api/disconnect", R"({"user":"a","client":"b"})")), 400, 40003);
    expectError(call(post("/api/disconnect", R"({"user":1})")), 400, 40003);
    expectError(call(post("/api/disconnect", R"({"user":""})")), 400, 40003);
    expectError(call(post("/api/disconnect", R"({"user":"a b"})")), 400, 40003);
    expectError(call(post("/api/disconnect", R"({"client":""})")), 400, 40003);
    expectError(call(post("/api/disconnect", R"({"client":")" + std::string(129, 'c') + R"("})")), 400, 40003);
    expectError(call(post("/api/disconnect", R"({"user":"a","reconnect":"yes"})")), 400, 40003);
    expectError(call(post("/api/disconnect", "[1]")), 400, 40003);
    expectError(call(post("/api/disconnect", "{")), 400, 40001);
    EXPECT_TRUE(cluster.controls.empty());
}

TEST_F(ClusterApiTest, AnUnavailableEngineIs503OnEveryRouteThatUsesIt) {
    cluster.failure = BrokerError{ApiErrorCode::Unavailable, "redis 10.0.0.1:6379: connection refused"};
    expectError(call(post("/api/publish", R"({"channel":"news","data":1})")), 503, 50301);
    expectError(call(post("/api/publish", R"({"channel":"news","data":1,"qos":1,"wait":{"acks":1,"timeout_ms":10}})")),
                503, 50301);
    expectError(call(post("/api/broadcast", R"({"channels":["a","b"],"data":1})")), 503, 50301);
    expectError(call(post("/api/batch", R"({"publications":[{"channel":"a","data":1}]})")), 503, 50301);
    expectError(call(post("/api/send", R"({"user":"u","data":1})")), 503, 50301);
    ApiRequest history = get("/api/history");
    history.query = "channel=news";
    expectError(call(history), 503, 50301);
}

TEST_F(ClusterApiTest, ABatchWithNothingPublishedForAnUnavailableEngineIs503) {
    // Nothing published because of the engine: a 503 to retry, not a 200 an idempotency key would keep.
    cluster.failure = BrokerError{ApiErrorCode::Unavailable, "down"};
    auto response =
        call(post("/api/batch", R"({"publications":[{"channel":"a","data":1},{"channel":"$x","data":1}]})"));
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 503u) << "the valid item failed for the engine: retry";
    cluster.failure.reset();
    response = call(post("/api/batch", R"({"publications":[{"channel":"a","data":1},{"channel":"$x","data":1}]})"));
    EXPECT_EQ(response->status, 200u);
    EXPECT_EQ(bodyOf(response)["results"][1]["error"]["code"], 40004);
}

TEST_F(ClusterApiTest, AClusteredSendEndsAfterItsLifetimeWhenANodeNeverReports) {
    // Another node holds the user's connection and never reports (it died, or its message was lost).
    Node other(testConfig(), "n2", testing::oneNodeEngine(std::make_unique<fakes::FakeClusterBroker>(cluster)));
    EventLoopPool otherLoops(1);
    other.attach(otherLoops);
    other.join(personalChannel("u"), 0, true, [](std::optional<BrokerError>) {});

    auto response = call(post("/api/send", R"({"user":"u","data":1})"));
    EXPECT_FALSE(response.has_value()) << "waiting for n2's report";
    ASSERT_EQ(timers.size(), 1u);
    EXPECT_EQ(timers[0].first, std::chrono::milliseconds(3000));
    timers[0].second();
    ASSERT_TRUE(responses.back()->has_value());
    EXPECT_EQ((*responses.back())->status, 200u);
    EXPECT_EQ(bodyOf(*responses.back())["reached"], 0);
    other.unsubscribe(personalChannel("u"), 0, true);
}

}  // namespace
}  // namespace wspush
