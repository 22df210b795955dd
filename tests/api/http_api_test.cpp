#include "api/http_api.h"

#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/memory/memory_broker.h"

namespace wspush {
namespace {

using json = nlohmann::json;

const std::string kKey = "0123456789abcdef-key";

Config testConfig(std::vector<std::string> keys = {}) {
    Config config;
    config.namespaces["chat"] = NamespaceConfig{};
    config.api.keys = std::move(keys);
    return config;
}

class HttpApiTest : public ::testing::Test {
protected:
    explicit HttpApiTest(std::vector<std::string> keys = {})
        : node(testConfig(std::move(keys)), "node-test",
               std::make_unique<MemoryBroker>("inst", [] { return std::int64_t{1700000000000}; })),
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
                                  "Bearer " + kKey + "x", "Bearer ", "Basic " + kKey, kKey, "Bearer  " + kKey,
                                  "bearer " + kKey, "BEARER " + kKey}) {
        ApiRequest request = get("/api/info");
        request.authorization = authorization;
        expectError(call(request), 401, 40101);
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

// --- request bodies ---------------------------------------------------------------------------

TEST_F(HttpApiTest, NonJsonContentTypeIs415) {
    expectError(call(post("/api/publish", R"({"channel":"news","data":1})", "text/plain")), 415, 41501);
    expectError(call(post("/api/publish", R"({"channel":"news","data":1})", "")), 415, 41501);
    expectError(call(post("/api/publish", R"({"channel":"news","data":1})", "application/jsonp")), 415, 41501);
    expectError(call(post("/api/broadcast", R"({"channels":["news"],"data":1})", "application/x-www-form-urlencoded")),
                415, 41501);
}

TEST_F(HttpApiTest, JsonContentTypeVariantsAreAccepted) {
    for (const char* contentType : {"application/json", "application/json; charset=utf-8", "Application/JSON",
                                    "application/json ;charset=UTF-8"})
        EXPECT_EQ(call(post("/api/publish", R"({"channel":"news","data":1})", contentType)).status, 200u) << contentType;
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
    EXPECT_EQ(node.router().publications(), 0u) << "nothing may be published by a refused request";
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
    EXPECT_EQ(response.body, body.dump()) << "compact, keys in alphabetical order";

    // `null` counts as present.
    json second = bodyOf(call(post("/api/publish", R"({"channel":"chat:1","data":null})")));
    EXPECT_EQ(second["offset"], 2);
    EXPECT_EQ(second["epoch"], body["epoch"]);
    EXPECT_NE(second["mid"], body["mid"]);
    EXPECT_EQ(node.router().publications(), 2u);
}

TEST_F(HttpApiTest, PublishedDataReachesSubscribersCompact) {
    struct Recorder : Subscriber {
        void deliver(const SharedFrame& frame) override { frames.push_back(*frame); }
        std::vector<std::string> frames;
    } subscriber;
    pool.at(0).hub().add("news", &subscriber, 0);
    node.router().addSubscriber("news", 0, true);

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

    EXPECT_EQ(node.router().publications(), 4u);  // 1 publish + 3 valid broadcast channels
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
    json tooMany = json{{"channels", json::array()}, {"data", 1}};
    for (int i = 0; i < 1001; ++i) tooMany["channels"].push_back("c" + std::to_string(i));
    expectError(call(post("/api/broadcast", tooMany.dump())), 400, 40003);
    EXPECT_EQ(node.router().publications(), 0u);
}

TEST_F(HttpApiTest, BroadcastOf1000ChannelsIsAllowed) {
    json request = json{{"channels", json::array()}, {"data", 1}};
    for (int i = 0; i < 1000; ++i) request["channels"].push_back("c" + std::to_string(i));
    ApiResponse response = call(post("/api/broadcast", request.dump()));
    EXPECT_EQ(response.status, 200u);
    EXPECT_EQ(bodyOf(response)["results"].size(), 1000u);
}

// --- channels, info, metrics ------------------------------------------------------------------

TEST_F(HttpApiTest, ChannelsListsSubscribedChannelsSorted) {
    EXPECT_EQ(bodyOf(call(get("/api/channels"))), (json{{"channels", json::array()}}));
    node.router().addSubscriber("news", 0, true);
    node.router().addSubscriber("news", 0, false);
    node.router().addSubscriber("chat:1", 0, true);
    ApiResponse response = call(get("/api/channels"));
    EXPECT_EQ(response.status, 200u);
    json expected = json::object();
    expected["channels"] = json::array({json{{"channel", "chat:1"}, {"subscribers", 1}},
                                        json{{"channel", "news"}, {"subscribers", 2}}});
    EXPECT_EQ(bodyOf(response), expected);
}

TEST_F(HttpApiTest, InfoFields) {
    node.router().addSubscriber("news", 0, true);
    call(post("/api/publish", R"({"channel":"news","data":1})"));
    pool.at(0).metrics().websocketConnections.add(3);
    ApiResponse response = call(get("/api/info"));
    EXPECT_EQ(response.status, 200u);
    json body = bodyOf(response);
    EXPECT_EQ(body.size(), 8u) << response.body;
    EXPECT_EQ(body["node"], "node-test");
    EXPECT_EQ(body["version"], Node::version());
    EXPECT_TRUE(body["uptime_seconds"].is_number());
    EXPECT_GE(body["uptime_seconds"].get<double>(), 0.0);
    EXPECT_EQ(body["connections"], 3);
    EXPECT_EQ(body["channels"], 1);
    EXPECT_EQ(body["publications"], 1);
    EXPECT_EQ(body["threads"], 1);
    EXPECT_EQ(body["engine"], "memory");
}

TEST_F(HttpApiTest, MetricsIsPrometheusText) {
    pool.at(0).metrics().websocketConnections.add(2);
    pool.at(0).metrics().observePublishLatency(std::chrono::microseconds(300));
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
    EXPECT_EQ(node.router().publications(), 0u);
}

TEST(HttpApiErrorTest, StatusIsTheFirstThreeDigitsOfTheCode) {
    ApiResponse response = HttpApi::error(ApiErrorCode::PayloadTooLarge, "too \"big\"");
    EXPECT_EQ(response.status, 413u);
    EXPECT_EQ(json::parse(response.body), (json{{"error", {{"code", 41301}, {"message", "too \"big\""}}}}));
    EXPECT_EQ(HttpApi::error(ApiErrorCode::Unavailable, "x").status, 503u);
    EXPECT_EQ(HttpApi::error(ApiErrorCode::Internal, "x").status, 500u);
}

}  // namespace
}  // namespace wspush
