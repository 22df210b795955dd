// The HTTP API through the real daemon: authentication, request validation, the separate API
// listener, and HTTP/1.1 keep-alive with pipelining.
#include <gtest/gtest.h>

#include "support/test_helpers.h"

namespace wspush::testing {
namespace {

using json = nlohmann::json;

const std::string kApiKey = "0123456789abcdef0123";
const Headers kAuthorized{{"Authorization", "Bearer " + kApiKey}};

// The error code of an API error body, 0 if the body is not one.
int apiErrorCode(const HttpResult& result) {
    json body = result.json();
    if (!body.is_object() || !body.contains("error") || !body["error"].is_object()) return 0;
    return body["error"].value("code", 0);
}

TEST(HttpApi, ApiKeysAreEnforcedOnTheApiButNotOnHealthz) {
    DaemonProcess daemon(json{{"api", {{"keys", {kApiKey}}}}});
    HttpTestClient http(daemon.apiPort());
    const json publication{{"channel", "news"}, {"data", 1}};

    HttpResult anonymous = http.postJson("/api/publish", publication);
    EXPECT_EQ(anonymous.status, 401u) << anonymous.body;
    EXPECT_EQ(apiErrorCode(anonymous), 40101);
    EXPECT_EQ(anonymous.header("WWW-Authenticate"), "Bearer");

    HttpResult wrongKey =
        http.postJson("/api/publish", publication, {{"Authorization", "Bearer 0123456789abcdef0124"}});
    EXPECT_EQ(wrongKey.status, 401u) << wrongKey.body;
    EXPECT_EQ(apiErrorCode(wrongKey), 40101);
    HttpResult notBearer = http.postJson("/api/publish", publication, {{"Authorization", kApiKey}});
    EXPECT_EQ(notBearer.status, 401u) << notBearer.body;

    HttpResult authorized = http.postJson("/api/publish", publication, kAuthorized);
    EXPECT_EQ(authorized.status, 200u) << authorized.body;
    EXPECT_EQ(authorized.json().value("offset", -1), 1) << "only the authorized publish happened";

    EXPECT_EQ(http.get("/metrics").status, 401u);
    EXPECT_EQ(http.get("/api/info").status, 401u);
    EXPECT_EQ(http.get("/api/channels", kAuthorized).status, 200u);
    HttpResult health = http.get("/healthz");
    EXPECT_EQ(health.status, 200u);
    EXPECT_EQ(health.json(), (json{{"status", "ok"}}));
}

TEST(HttpApi, BadRequestsGetTheirStatusAndErrorCode) {
    DaemonProcess daemon(
        json{{"api", {{"keys", {kApiKey}}, {"max_body_size", 1024}}}, {"namespaces", {{"chat", json::object()}}}});
    HttpTestClient http(daemon.apiPort());
    struct Case {
        const char* what;
        std::string body;
        std::string contentType;
        unsigned status;
        int code;
    };
    const std::vector<Case> cases{
        {"not JSON content", R"({"channel":"news","data":1})", "text/plain", 415, 41501},
        {"no content type", R"({"channel":"news","data":1})", "", 415, 41501},
        {"malformed JSON", "{nope", "application/json", 400, 40001},
        {"not an object", "[1,2]", "application/json", 400, 40003},
        {"missing channel", R"({"data":1})", "application/json", 400, 40002},
        {"channel not a string", R"({"channel":5,"data":1})", "application/json", 400, 40003},
        {"missing data", R"({"channel":"news"})", "application/json", 400, 40002},
        {"invalid channel", R"({"channel":"no spaces","data":1})", "application/json", 400, 40004},
        {"unknown namespace", R"({"channel":"nowhere:x","data":1})", "application/json", 400, 40005},
        {"too large", R"({"channel":"news","data":")" + std::string(2048, 'x') + "\"}", "application/json", 413, 41301},
    };
    for (const auto& c : cases) {
        HttpResult result = http.post("/api/publish", c.body, c.contentType, kAuthorized);
        EXPECT_EQ(result.status, c.status) << c.what << ": " << result.body << result.error;
        EXPECT_EQ(apiErrorCode(result), c.code) << c.what << ": " << result.body;
        EXPECT_EQ(result.header("Content-Type"), "application/json") << c.what;
    }

    // Parameters on the media type are fine, and a configured namespace is accepted.
    HttpResult withCharset =
        http.post("/api/publish", R"({"channel":"chat:1","data":1})", "Application/JSON; charset=utf-8", kAuthorized);
    EXPECT_EQ(withCharset.status, 200u) << withCharset.body;

    HttpResult unknownPath = http.get("/api/nothing-here", kAuthorized);
    EXPECT_EQ(unknownPath.status, 404u);
    EXPECT_EQ(apiErrorCode(unknownPath), 40401);

    HttpResult wrongMethod = http.get("/api/publish", kAuthorized);
    EXPECT_EQ(wrongMethod.status, 405u);
    EXPECT_EQ(apiErrorCode(wrongMethod), 40501);
    EXPECT_EQ(wrongMethod.header("Allow"), "POST");

    HttpResult broadcastWithoutChannels = http.postJson("/api/broadcast", {{"data", 1}}, kAuthorized);
    EXPECT_EQ(broadcastWithoutChannels.status, 400u);
    EXPECT_EQ(apiErrorCode(broadcastWithoutChannels), 40002);
    HttpResult broadcastEmpty =
        http.postJson("/api/broadcast", {{"channels", json::array()}, {"data", 1}}, kAuthorized);
    EXPECT_EQ(broadcastEmpty.status, 400u);
    EXPECT_EQ(apiErrorCode(broadcastEmpty), 40003);
}

TEST(HttpApi, BodiesNestedTooDeepAreRefusedAndTheDaemonLivesOn) {
    DaemonProcess daemon;
    HttpTestClient http(daemon.apiPort());
    // 100,000 nested arrays, a 200 KB body: its recursive dump() used to exhaust the daemon's stack.
    auto nested = [](int levels) { return std::string(levels, '[') + std::string(levels, ']'); };
    const std::string deep = nested(100'000);
    const std::vector<std::pair<std::string, std::string>> requests{
        {"/api/publish", R"({"channel":"news","data":)" + deep + "}"},
        {"/api/broadcast", R"({"channels":["news"],"data":)" + deep + "}"},
        {"/api/send", R"({"user":"ann","data":)" + deep + "}"},
        {"/api/batch", R"({"publications":[{"channel":"news","data":)" + deep + "}]}"},
    };
    for (const auto& [path, body] : requests) {
        HttpResult refused = http.post(path, body);
        EXPECT_EQ(refused.status, 400u) << path << ": " << refused.body << refused.error;
        EXPECT_EQ(apiErrorCode(refused), 40001) << path << ": " << refused.body;
        EXPECT_NE(refused.body.find("64 levels"), std::string::npos) << path << ": " << refused.body;
    }

    // The daemon still publishes, data nested as deep as allowed (the body object is level 1) included.
    HttpResult published = http.postJson("/api/publish", {{"channel", "news"}, {"data", 1}});
    EXPECT_EQ(published.status, 200u) << published.body << published.error;
    const std::string deepestAllowed = nested(63);
    HttpResult deepest = http.post("/api/publish", R"({"channel":"news","data":)" + deepestAllowed + "}");
    EXPECT_EQ(deepest.status, 200u) << deepest.body << deepest.error;
    EXPECT_EQ(deepest.json().value("offset", -1), 2);
}

TEST(HttpApi, WithApiListenThePublicPortServesOnlyWebSocketsAndHealthz) {
    DaemonProcess daemon(json{{"api", {{"listen", "127.0.0.1:0"}}}});
    ASSERT_NE(daemon.port(), daemon.apiPort());

    WsTestClient subscriber;
    ASSERT_TRUE(subscriber.connectProtocol(daemon.port())) << subscriber.lastError();
    ASSERT_TRUE(subscribeOk(subscriber, "split"));

    HttpTestClient publicHttp(daemon.port());
    EXPECT_EQ(publicHttp.get("/healthz").status, 200u);
    HttpResult publicPublish = publicHttp.postJson("/api/publish", {{"channel", "split"}, {"data", 1}});
    EXPECT_EQ(publicPublish.status, 404u) << publicPublish.body;
    EXPECT_EQ(publicHttp.get("/metrics").status, 404u);
    EXPECT_EQ(publicHttp.get("/api/info").status, 404u);

    HttpTestClient apiHttp(daemon.apiPort());
    HttpResult apiPublish = apiHttp.postJson("/api/publish", {{"channel", "split"}, {"data", 2}});
    EXPECT_EQ(apiPublish.status, 200u) << apiPublish.body;
    EXPECT_EQ(apiPublish.json().value("offset", -1), 1) << "the public port published nothing";
    EXPECT_EQ(apiHttp.get("/metrics").status, 200u);

    auto message = subscriber.nextMessage();
    ASSERT_TRUE(message);
    EXPECT_EQ((*message)["data"], 2);

    WsTestClient onApiPort;
    EXPECT_FALSE(onApiPort.connect(daemon.apiPort())) << "the API listener must not upgrade to WebSocket";
}

TEST(HttpApi, KeepAliveConnectionsServePipelinedRequestsInOrder) {
    DaemonProcess daemon;
    HttpTestClient http(daemon.apiPort());
    const std::string publishBody = R"({"channel":"piped","data":"x"})";
    std::vector<HttpResult> responses = http.pipeline({
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        "POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
            std::to_string(publishBody.size()) + "\r\n\r\n" + publishBody,
        "GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    });
    ASSERT_EQ(responses.size(), 3u) << "fewer responses than pipelined requests";
    EXPECT_EQ(responses[0].status, 200u);
    EXPECT_EQ(responses[0].json(), (json{{"status", "ok"}}));
    EXPECT_EQ(responses[1].status, 200u) << responses[1].body;
    EXPECT_EQ(responses[1].json().value("channel", ""), "piped");
    EXPECT_EQ(responses[2].status, 200u);
    EXPECT_EQ(responses[2].json().value("publications", -1), 1) << "answered before the publish: " << responses[2].body;
    for (const auto& response : responses) EXPECT_NE(response.header("Connection"), "close");

    // Sequential requests on one connection: once the pipelining connection is gone, the daemon
    // counts a single HTTP connection however many requests it serves.
    for (int i = 0; i < 5; ++i) ASSERT_EQ(http.get("/healthz").status, 200u);
    EXPECT_TRUE(eventually([&] { return metricValue(http.get("/metrics").body, "wspush_http_connections") == 1; }));
    for (int i = 0; i < 5; ++i) ASSERT_EQ(http.get("/healthz").status, 200u);
    EXPECT_EQ(metricValue(http.get("/metrics").body, "wspush_http_connections"), 1);
}

std::string rawPublish(const std::string& body) {
    return "POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
}

TEST(HttpApi, PipelinedRequestsAreServedOneAtATimeAndAnsweredInOrder) {
    DaemonProcess daemon(json{{"channel_defaults", {{"history_size", 10}}}});
    WsTestClient silent;  // receives the QoS 1 publication and never acknowledges it
    ASSERT_TRUE(silent.connectProtocol(daemon.port())) << silent.lastError();
    ASSERT_TRUE(silent.subscribe("piped"));
    HttpTestClient http(daemon.apiPort());
    const std::string large(200 * 1024, 'x');
    std::vector<HttpResult> responses = http.pipeline({
        // Nobody acknowledges: answered when the wait times out.
        rawPublish(R"({"channel":"piped","data":1,"qos":1,"wait":{"acks":1,"timeout_ms":300}})"),
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        rawPublish(R"({"channel":"piped","data":)"),  // malformed: an error between successes
        rawPublish(json{{"channel", "piped"}, {"data", large}}.dump()),
        "GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    });
    ASSERT_EQ(responses.size(), 5u) << "fewer responses than pipelined requests";
    EXPECT_EQ(responses[0].status, 200u) << responses[0].body;
    EXPECT_EQ(responses[0].json().value("offset", -1), 1);
    EXPECT_EQ(responses[0].json().value("reached", -1), 1) << responses[0].body;
    EXPECT_EQ(responses[0].json().value("acked", -1), 0) << responses[0].body;
    EXPECT_EQ(responses[1].json(), (json{{"status", "ok"}}));
    EXPECT_EQ(responses[2].status, 400u);
    EXPECT_EQ(apiErrorCode(responses[2]), 40001) << responses[2].body;
    EXPECT_EQ(responses[3].status, 200u) << responses[3].body;
    EXPECT_EQ(responses[3].json().value("offset", -1), 2);
    EXPECT_EQ(responses[4].json().value("publications", -1), 2) << responses[4].body;

    // The publish behind the waiting one was served only once that one was answered.
    json history = http.get("/api/history?channel=piped").json();
    ASSERT_EQ(history["publications"].size(), 2u) << history.dump();
    EXPECT_GE(
        history["publications"][1]["ts"].get<std::int64_t>() - history["publications"][0]["ts"].get<std::int64_t>(),
        250)
        << history.dump();
}

TEST(HttpApi, ManyPipelinedRequestsAreAllAnsweredInOrder) {
    DaemonProcess daemon;
    HttpTestClient http(daemon.apiPort());
    std::vector<std::string> requests;
    for (int i = 0; i < 300; ++i)
        requests.push_back(i % 7 == 3 ? "GET /nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                                      : rawPublish(json{{"channel", "many"}, {"data", i}}.dump()));
    std::vector<HttpResult> responses = http.pipeline(requests);
    ASSERT_EQ(responses.size(), requests.size());
    int offset = 0;
    for (int i = 0; i < 300; ++i) {
        if (i % 7 == 3) {
            EXPECT_EQ(responses[i].status, 404u) << "request " << i;
            continue;
        }
        ASSERT_EQ(responses[i].status, 200u) << "request " << i << ": " << responses[i].body;
        EXPECT_EQ(responses[i].json().value("offset", -1), ++offset) << "request " << i;
    }
}

TEST(HttpApi, APipelinedRequestOverALimitIsAnsweredAfterThoseBeforeIt) {
    DaemonProcess daemon(json{{"api", {{"max_body_size", 1000}}}});
    HttpTestClient http(daemon.apiPort());
    std::vector<HttpResult> responses = http.pipeline({
        rawPublish(R"({"channel":"limits","data":1})"),
        rawPublish(json{{"channel", "limits"}, {"data", std::string(2000, 'x')}}.dump()),
        rawPublish(R"({"channel":"limits","data":3})"),
    });
    ASSERT_EQ(responses.size(), 2u) << "the connection closes after the 413";
    EXPECT_EQ(responses[0].status, 200u) << responses[0].body;
    EXPECT_EQ(responses[1].status, 413u);
    EXPECT_EQ(responses[1].header("Connection"), "close");
}

TEST(HttpApi, ConnectionCloseIsHonoured) {
    DaemonProcess daemon;
    HttpTestClient http(daemon.apiPort());
    std::vector<HttpResult> responses = http.pipeline({
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    });
    ASSERT_EQ(responses.size(), 1u) << "answered after Connection: close";
    EXPECT_EQ(responses[0].header("Connection"), "close");
}

}  // namespace
}  // namespace wspush::testing
