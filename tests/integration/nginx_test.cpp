// nginx in front of wspush, for real: docker/nginx/wspush.conf, rendered by
// docker/nginx/render-conf.sh with nothing but ports and paths (tests/support/nginx_process.h),
// run by Debian's nginx with TLS on, in front of two nodes on a real redis-server. Through it: a
// wss client receives what a backend publishes through nginx's API server; the public side
// serves only /ws and /healthz; the heartbeat crosses nginx and its timeouts outlast it; the nodes
// count each client by the address nginx forwards (proxy.trusted); and the clients of a node
// killed with SIGKILL come back through nginx on the other node and recover every publication.
//
// Clients that must count as different addresses connect to nginx from different loopback
// addresses (127.0.0.0/8 all reaches it on 127.0.0.1); nginx itself connects to the nodes from
// 127.0.0.1, which the nodes trust.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <sstream>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "support/nginx_process.h"
#include "support/redis_server_process.h"
#include "support/test_certificate.h"
#include "support/test_helpers.h"
#include "wspush/config.h"

namespace wspush::testing {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using json = nlohmann::json;

const TestCertificate& certificate() {
    static const TestCertificate certificate = makeSelfSignedCertificate("DNS:localhost,IP:127.0.0.1");
    return certificate;
}

// wss:// to nginx, verifying its certificate as a browser would, from `localAddress` if given.
WsConnectOptions wss(const std::string& localAddress = "") {
    WsConnectOptions options;
    options.tls = WsTlsOptions{certificate().certificatePem, "localhost"};
    options.localAddress = localAddress;
    return options;
}

// One HTTPS request to nginx's public side on a fresh connection that verifies its certificate.
// Throws when TLS fails.
http::response<http::string_body> httpsRequest(unsigned short port, http::verb method, const std::string& target,
                                               const std::string& body = "") {
    net::io_context ioc;
    net::ssl::context context(net::ssl::context::tls_client);
    context.add_certificate_authority(net::buffer(certificate().certificatePem));
    context.set_verify_mode(net::ssl::verify_peer);
    beast::ssl_stream<beast::tcp_stream> stream(ioc, context);
    SSL_set_tlsext_host_name(stream.native_handle(), "localhost");
    stream.set_verify_callback(net::ssl::host_name_verification("localhost"));
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
    beast::get_lowest_layer(stream).connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    stream.handshake(net::ssl::stream_base::client);
    http::request<http::string_body> request{method, target, 11};
    request.set(http::field::host, "localhost");
    if (!body.empty()) request.set(http::field::content_type, "application/json");
    request.body() = body;
    request.prepare_payload();
    http::write(stream, request);
    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(stream, buffer, response);
    return response;
}

// nginx's own 404 page, not a node's JSON error: the request never reached a node.
::testing::AssertionResult isNginxNotFound(const std::string& target, unsigned status, const std::string& body) {
    if (status != 404) return ::testing::AssertionFailure() << target << ": status " << status << ", body " << body;
    if (!json::parse(body, nullptr, false).is_discarded())
        return ::testing::AssertionFailure() << target << ": a node answered " << body;
    if (body.find("<center>nginx</center>") == std::string::npos)
        return ::testing::AssertionFailure() << target << ": not nginx's page: " << body;
    return ::testing::AssertionSuccess();
}

// The code of a node's JSON error body ({"error":{"code":…}}), 0 for anything else.
int errorCodeIn(const std::string& body) {
    json parsed = json::parse(body, nullptr, false);
    if (!parsed.is_object() || !parsed.contains("error") || !parsed["error"].is_object()) return 0;
    return parsed["error"].value("code", 0);
}

// Two nodes n1 and n2 on one redis-server, both ready, with nginx in front. The nodes trust
// 127.0.0.1, where nginx connects from, and keep enough history for the scenarios to recover.
class NginxCluster {
public:
    explicit NginxCluster(const json& overrides = json::object()) {
        for (int i = 1; i <= 2; ++i) {
            json config{
                {"node_name", "n" + std::to_string(i)},
                {"engine", "redis"},
                {"redis",
                 {{"addresses", {redis_.address()}},
                  {"prefix", "nginx"},
                  {"connect_timeout", 1},
                  {"command_timeout", 1}}},
                {"api", {{"listen", "127.0.0.1:0"}}},
                {"proxy", {{"trusted", {"127.0.0.1"}}}},
                {"channel_defaults", {{"history_size", 1000}, {"history_ttl", 300}}},
            };
            config.merge_patch(overrides);
            nodes_.push_back(std::make_unique<DaemonProcess>(config));
        }
        NginxOptions options;
        options.certificate = certificate();
        for (auto& node : nodes_) {
            EXPECT_TRUE(eventually([&] { return httpGet(node->apiPort(), "/readyz").status == 200; }, 5000ms))
                << "a node never became ready";
            options.wsUpstreams.push_back("127.0.0.1:" + std::to_string(node->port()));
            options.apiUpstreams.push_back("127.0.0.1:" + std::to_string(node->apiPort()));
        }
        nginx_.emplace(options);
    }

    NginxProcess& nginx() { return *nginx_; }
    DaemonProcess& node(const std::string& name) { return *nodes_.at(name == "n1" ? 0 : 1); }
    bool anyNodeLogged(const std::string& text) {
        for (auto& node : nodes_)
            if (node->logText().find(text) != std::string::npos) return true;
        return false;
    }

private:
    RedisServerProcess redis_;
    std::vector<std::unique_ptr<DaemonProcess>> nodes_;
    std::optional<NginxProcess> nginx_;  // last: stopped first
};

class Nginx : public ::testing::Test {
protected:
    void SetUp() override {
        // scripts/install-deps.sh test installs nginx: in the test command this never skips.
        if (NginxProcess::binary().empty()) GTEST_SKIP() << "nginx is not installed";
    }
};

std::string readFile(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::vector<std::string> linesOf(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

// What the tests render: every variable of render-conf.sh's contract.
std::map<std::string, std::string> renderEnvironment(const std::filesystem::path& folder) {
    return {
        {"WSPUSH_NGINX_PUBLIC_LISTEN", "127.0.0.1:18443"},
        {"WSPUSH_NGINX_API_LISTEN", "127.0.0.1:18081"},
        {"WSPUSH_NGINX_WS_UPSTREAMS", "127.0.0.1:9001 127.0.0.1:9002"},
        {"WSPUSH_NGINX_API_UPSTREAMS", "127.0.0.1:9101  127.0.0.1:9102"},
        {"WSPUSH_NGINX_CERT", (folder / "cert.pem").string()},
        {"WSPUSH_NGINX_KEY", (folder / "key.pem").string()},
        {"WSPUSH_NGINX_PREFIX", folder.string()},
    };
}

TEST(NginxConf, RenderingChangesOnlyThePlaceholders) {
    TemporaryFile folder("", "unused");
    auto directory = std::filesystem::path(folder.path()).parent_path();
    auto out = directory / "nginx.conf";
    RenderResult result = renderNginxConf(renderEnvironment(directory), out);
    ASSERT_EQ(result.exitCode, 0) << result.output;

    auto template_ = linesOf(readFile(nginxConfTemplate()));
    auto rendered = linesOf(readFile(out));
    ASSERT_FALSE(template_.empty());
    // Line by line: a line without a placeholder is the template's, one with a placeholder is it
    // filled in, and an upstream's placeholder line becomes one `server` line per node.
    std::size_t at = 0;
    for (const auto& line : template_) {
        ASSERT_LT(at, rendered.size()) << "the rendered file ends early, before: " << line;
        if (line == "@WSPUSH_NGINX_WS_UPSTREAM_SERVERS@" || line == "@WSPUSH_NGINX_API_UPSTREAM_SERVERS@") {
            std::string port = line == "@WSPUSH_NGINX_WS_UPSTREAM_SERVERS@" ? "90" : "91";
            EXPECT_EQ(rendered[at++], "        server 127.0.0.1:" + port + "01;");
            EXPECT_EQ(rendered[at++], "        server 127.0.0.1:" + port + "02;");
            continue;
        }
        std::string expected = line;
        for (const auto& [name, value] : renderEnvironment(directory)) {
            std::string placeholder = "@" + name + "@";
            for (auto found = expected.find(placeholder); found != std::string::npos;
                 found = expected.find(placeholder, found + value.size()))
                expected.replace(found, placeholder.size(), value);
        }
        EXPECT_EQ(rendered[at++], expected);
    }
    EXPECT_EQ(at, rendered.size()) << "lines added at the end";
    EXPECT_NE(readFile(out).find("listen 127.0.0.1:18443 ssl;"), std::string::npos);
}

TEST(NginxConf, RenderingRefusesWhatWouldChangeMoreThanAddressesAndPaths) {
    TemporaryFile folder("", "unused");
    auto directory = std::filesystem::path(folder.path()).parent_path();
    auto out = directory / "nginx.conf";
    const std::vector<std::pair<std::string, std::string>> bad{
        {"WSPUSH_NGINX_PUBLIC_LISTEN", "443; include /etc/passwd"},
        {"WSPUSH_NGINX_PUBLIC_LISTEN", "70000"},
        {"WSPUSH_NGINX_PUBLIC_LISTEN", "443\n"},
        {"WSPUSH_NGINX_API_LISTEN", "8081\n}"},
        {"WSPUSH_NGINX_API_LISTEN", "127.0.0.1:18443"},  // the public listener's
        {"WSPUSH_NGINX_WS_UPSTREAMS", ""},
        {"WSPUSH_NGINX_WS_UPSTREAMS", "127.0.0.1:9001 evil;"},
        {"WSPUSH_NGINX_API_UPSTREAMS", "node1"},
        {"WSPUSH_NGINX_CERT", "cert.pem"},
        {"WSPUSH_NGINX_KEY", ""},
        {"WSPUSH_NGINX_KEY", "/etc/nginx/my key.pem"},
        {"WSPUSH_NGINX_PREFIX", "/tmp/${HOME}"},
    };
    for (const auto& [name, value] : bad) {
        auto environment = renderEnvironment(directory);
        environment[name] = value;
        std::filesystem::remove(out);
        RenderResult result = renderNginxConf(environment, out);
        EXPECT_EQ(result.exitCode, 2) << name << "=" << value << ": " << result.output;
        EXPECT_NE(result.output.find(name), std::string::npos) << "the error names the variable: " << result.output;
        EXPECT_FALSE(std::filesystem::exists(out)) << name << "=" << value << " wrote a config";
    }
}

TEST_F(Nginx, AWssClientReceivesWhatABackendPublishesThroughTheApiServer) {
    NginxCluster cluster;
    WsTestClient alice, bob;
    auto aliceConnected = alice.connectProtocol(cluster.nginx().publicPort(), "alice", wss());
    ASSERT_TRUE(aliceConnected) << alice.lastError();
    auto bobConnected = bob.connectProtocol(cluster.nginx().publicPort(), "bob", wss());
    ASSERT_TRUE(bobConnected) << bob.lastError();
    // No sticky sessions; least_conn sends the second connection to the node without one.
    EXPECT_NE(aliceConnected->value("node", ""), bobConnected->value("node", ""));
    ASSERT_TRUE(subscribeOk(alice, "news"));
    ASSERT_TRUE(subscribeOk(bob, "news"));

    HttpTestClient backend(cluster.nginx().apiPort());
    constexpr int kPublications = 20;
    for (int n = 0; n < kPublications; ++n) {
        HttpResult result = backend.postJson("/api/publish", {{"channel", "news"}, {"data", {{"n", n}}}});
        ASSERT_EQ(result.status, 200u) << result.body;
    }
    for (WsTestClient* client : {&alice, &bob}) {
        for (int n = 0; n < kPublications; ++n) {
            auto message = client->waitFor([](const json& m) { return typeOf(m) == "message"; });
            ASSERT_TRUE(message) << "publication " << n << ": " << client->lastError();
            EXPECT_EQ((*message)["data"]["n"], n);
            EXPECT_EQ((*message)["offset"], n + 1);
        }
    }
}

TEST_F(Nginx, ThePublicSideServesOnlyTheWebSocketPathAndHealth) {
    NginxCluster cluster;
    unsigned short publicPort = cluster.nginx().publicPort();
    auto health = httpsRequest(publicPort, http::verb::get, "/healthz");
    EXPECT_EQ(health.result_int(), 200u) << health.body();
    EXPECT_EQ(json::parse(health.body(), nullptr, false).value("status", ""), "ok") << health.body();

    WsTestClient watcher;
    ASSERT_TRUE(watcher.connectProtocol(publicPort, "watcher", wss())) << watcher.lastError();
    ASSERT_TRUE(subscribeOk(watcher, "news"));
    // Neither the API nor the node's other paths, however the path is spelled.
    std::string publication = json{{"channel", "news"}, {"data", "from the internet"}}.dump();
    auto published = httpsRequest(publicPort, http::verb::post, "/api/publish", publication);
    EXPECT_TRUE(isNginxNotFound("POST /api/publish", published.result_int(), published.body()));
    for (const char* target : {"/api/info", "/api/nodes", "/metrics", "/readyz", "/", "/ws/../api/info", "/%61pi/info",
                               "/ws/", "/healthz/../metrics"}) {
        auto response = httpsRequest(publicPort, http::verb::get, target);
        EXPECT_TRUE(isNginxNotFound(target, response.result_int(), response.body()));
    }
    // An upgrade elsewhere than /ws is not proxied either.
    WsTestClient elsewhere;
    WsConnectOptions api = wss();
    api.path = "/api/publish";
    EXPECT_FALSE(elsewhere.connect(publicPort, api));
    EXPECT_TRUE(isNginxNotFound("upgrade /api/publish", elsewhere.handshakeStatus(), elsewhere.handshakeBody()));

    // The API server: the API and /healthz, not the WebSocket path nor /metrics.
    HttpTestClient backend(cluster.nginx().apiPort());
    HttpResult info = backend.get("/api/info");
    EXPECT_EQ(info.status, 200u) << info.body;
    EXPECT_EQ(backend.get("/healthz").status, 200u);
    HttpResult metrics = backend.get("/metrics");
    EXPECT_TRUE(isNginxNotFound("API server /metrics", metrics.status, metrics.body));
    WsTestClient onApiServer;
    EXPECT_FALSE(onApiServer.connect(cluster.nginx().apiPort()));
    EXPECT_TRUE(isNginxNotFound("API server /ws", onApiServer.handshakeStatus(), onApiServer.handshakeBody()));

    // What the public side refused was never published: the first message is the backend's.
    ASSERT_EQ(backend.postJson("/api/publish", {{"channel", "news"}, {"data", "from a backend"}}).status, 200u);
    auto message = watcher.waitFor([](const json& m) { return typeOf(m) == "message"; });
    ASSERT_TRUE(message) << watcher.lastError();
    EXPECT_EQ((*message)["data"], "from a backend");
    EXPECT_EQ((*message)["offset"], 1);
}

// The text of the block that follows `head` ("location = /ws") in an nginx config, braces
// balanced; "" when there is none.
std::string blockOf(const std::string& config, const std::string& head) {
    auto start = config.find(head);
    if (start == std::string::npos) return "";
    auto open = config.find('{', start);
    if (open == std::string::npos) return "";
    int depth = 0;
    for (auto at = open; at < config.size(); ++at) {
        if (config[at] == '{') ++depth;
        if (config[at] == '}' && --depth == 0) return config.substr(open, at - open + 1);
    }
    return "";
}

// The seconds of an nginx time directive (`name 75s;`, `name 2m;`, `name 500ms;`, `name 75;`) in
// `block`; nullopt when it is not there.
std::optional<double> secondsOf(const std::string& block, const std::string& name) {
    std::smatch match;
    if (!std::regex_search(block, match, std::regex("\\b" + name + "\\s+([0-9]+)(ms|s|m|h)?\\s*;")))
        return std::nullopt;
    double value = std::stod(match[1]);
    std::string unit = match[2];
    if (unit == "ms") return value / 1000;
    if (unit == "m") return value * 60;
    if (unit == "h") return value * 3600;
    return value;
}

TEST_F(Nginx, ProxyTimeoutsOutlastTheHeartbeatWhichCrossesNginx) {
    // Heartbeats every half second here, so that a few rounds take a second or two.
    NginxCluster cluster(json{{"websocket", {{"ping_interval", 0.5}, {"pong_timeout", 0.5}}}});

    // The shipped timeouts, against the daemon's defaults (from its own config code) and this
    // test's: nginx must never cut a connection the heartbeat keeps alive.
    std::string webSocketLocation = blockOf(cluster.nginx().configText(), "location = /ws");
    ASSERT_FALSE(webSocketLocation.empty()) << cluster.nginx().configText();
    auto readTimeout = secondsOf(webSocketLocation, "proxy_read_timeout");
    auto sendTimeout = secondsOf(webSocketLocation, "proxy_send_timeout");
    ASSERT_TRUE(readTimeout && sendTimeout) << webSocketLocation;
    ConfigResult defaults = parseConfig("", [](const char*) -> const char* { return nullptr; });
    ASSERT_TRUE(defaults.config);
    double heartbeat =
        defaults.config->websocket.ping_interval.count() + defaults.config->websocket.pong_timeout.count();
    EXPECT_DOUBLE_EQ(heartbeat, 35);
    EXPECT_GT(*readTimeout, heartbeat);
    EXPECT_GT(*sendTimeout, heartbeat);

    // A quiet client that answers pings (WsTestClient's reads do) stays; one that reads nothing,
    // so answers nothing, is closed for its silence: the pings and pongs really cross nginx.
    WsTestClient quiet, stalled;
    ASSERT_TRUE(quiet.connectProtocol(cluster.nginx().publicPort(), "quiet", wss())) << quiet.lastError();
    ASSERT_TRUE(stalled.connectProtocol(cluster.nginx().publicPort(), "stalled", wss())) << stalled.lastError();
    EXPECT_TRUE(quiet.pumpFor(2500ms)) << "closed although it answered every ping: " << quiet.lastError();
    auto ending = stalled.waitClose(3000ms);
    ASSERT_TRUE(ending) << "a client that never answers is still open after 2.5 s";
    EXPECT_EQ(ending->closeCode, 4002) << ending->closeReason;
}

TEST_F(Nginx, NodesCountEachClientByTheAddressNginxForwards) {
    NginxCluster cluster(json{{"limits", {{"connections_per_ip", 1}}}});
    unsigned short port = cluster.nginx().publicPort();
    std::vector<std::unique_ptr<WsTestClient>> clients;
    auto connectFrom = [&](const std::string& address, const std::string& forwardedFor = "") {
        auto& client = clients.emplace_back(std::make_unique<WsTestClient>());
        WsConnectOptions options = wss(address);
        if (!forwardedFor.empty()) options.headers["X-Forwarded-For"] = forwardedFor;
        return client->connectProtocol(port, "", options).has_value();
    };

    // Three clients, three addresses, two nodes: two of them share a node whatever the balancing,
    // and one would be refused there if the nodes counted nginx's address.
    for (const char* address : {"127.0.0.2", "127.0.0.3", "127.0.0.4"})
        ASSERT_TRUE(connectFrom(address)) << address << ": " << clients.back()->lastError();
    EXPECT_TRUE(cluster.anyNodeLogged("websocket client 127.0.0.2 via proxy 127.0.0.1"));

    // Three from one address: one per node, so one at least is refused, with the node's 429.
    int admitted = 0;
    int refused = 0;
    for (int i = 0; i < 3; ++i) {
        if (connectFrom("127.0.0.5")) {
            ++admitted;
        } else if (clients.back()->handshakeStatus() == 429) {
            EXPECT_EQ(errorCodeIn(clients.back()->handshakeBody()), 42901) << clients.back()->handshakeBody();
            ++refused;
        }
    }
    EXPECT_LE(admitted, 2);
    EXPECT_GE(refused, 1);
    EXPECT_EQ(admitted + refused, 3) << "failed otherwise than with 429: " << clients.back()->lastError();
    EXPECT_TRUE(cluster.anyNodeLogged("http request from 127.0.0.5 (via proxy 127.0.0.1) refused"));

    // What a client writes in X-Forwarded-For stays left of nginx's entry and is never counted:
    // three clients claiming one address from three real ones all get in.
    for (const char* address : {"127.0.0.6", "127.0.0.7", "127.0.0.8"})
        EXPECT_TRUE(connectFrom(address, "203.0.113.50")) << address << ": " << clients.back()->lastError();
}

// A wss client of the stream "live" that checks every message as it arrives: one epoch, offsets
// gap-free and increasing, data {"n": 0, 1, 2…} in publish order.
struct LiveClient {
    std::unique_ptr<WsTestClient> ws = std::make_unique<WsTestClient>();
    std::string node;
    std::string session;
    std::string resume;
    std::string epoch;
    std::uint64_t offset = 0;
    int lastN = -1;
    std::vector<std::string> problems;

    ::testing::AssertionResult connect(unsigned short port) {
        json fields = json::object();
        if (!session.empty()) fields = {{"session", session}, {"resume", resume}};
        ws = std::make_unique<WsTestClient>();
        auto reply = ws->connectWith(port, fields, wss());
        if (!reply || typeOf(*reply) != "connected")
            return ::testing::AssertionFailure() << "connect: " << (reply ? reply->dump() : ws->lastError());
        node = reply->value("node", "");
        session = reply->value("session", "");
        resume = reply->value("resume", "");
        return ::testing::AssertionSuccess();
    }

    // Subscribes to "live", with `since` the last position once there is one; the reply.
    std::optional<json> subscribe() {
        json command{{"type", "subscribe"}, {"channel", "live"}};
        if (!epoch.empty()) command["since"] = {{"offset", offset}, {"epoch", epoch}};
        auto reply = ws->request(command);
        if (reply && typeOf(*reply) == "subscribed" && epoch.empty()) {
            epoch = reply->value("epoch", "");
            offset = reply->value("offset", std::uint64_t{0});
        }
        return reply;
    }

    // Reads until publication `n` arrived (false on timeout or close).
    bool receiveUpTo(int n, Millis timeout = 5000ms) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (lastN < n) {
            auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return false;
            auto message = ws->nextMessage(left);
            if (!message) return false;
            if (typeOf(*message) != "message") continue;
            std::string messageEpoch = message->value("epoch", "");
            std::uint64_t messageOffset = message->value("offset", std::uint64_t{0});
            int messageN = (*message)["data"].value("n", -1);
            if (messageEpoch != epoch || messageOffset != offset + 1 || messageN != lastN + 1)
                problems.push_back("after " + std::to_string(offset) + " (n " + std::to_string(lastN) +
                                   "): " + message->dump());
            epoch = messageEpoch;
            offset = messageOffset;
            lastN = messageN;
        }
        return true;
    }
};

TEST_F(Nginx, ClientsOfAKilledNodeComeBackThroughNginxOnTheOtherAndRecoverEverything) {
    NginxCluster cluster;
    unsigned short port = cluster.nginx().publicPort();
    std::vector<LiveClient> clients(4);
    std::map<std::string, int> perNode;
    for (auto& client : clients) {
        ASSERT_TRUE(client.connect(port));
        ++perNode[client.node];
        auto reply = client.subscribe();
        ASSERT_TRUE(reply && typeOf(*reply) == "subscribed") << (reply ? reply->dump() : client.ws->lastError());
    }
    ASSERT_EQ(perNode.size(), 2u) << "least_conn spreads four clients over both nodes";

    HttpTestClient backend(cluster.nginx().apiPort());
    int published = 0;
    auto publish = [&](int count) {
        for (int i = 0; i < count; ++i, ++published) {
            HttpResult result = backend.postJson("/api/publish", {{"channel", "live"}, {"data", {{"n", published}}}});
            ASSERT_EQ(result.status, 200u) << "publication " << published << ": " << result.body;
        }
    };
    publish(10);
    if (HasFatalFailure()) return;
    for (auto& client : clients) ASSERT_TRUE(client.receiveUpTo(published - 1)) << client.ws->lastError();

    // n2 dies without a word. Its clients' connections through nginx end.
    ASSERT_TRUE(cluster.node("n2").terminate(SIGKILL));
    ASSERT_TRUE(cluster.node("n2").waitExit(2000ms).has_value());
    for (auto& client : clients) {
        if (client.node == "n2") {
            EXPECT_TRUE(client.ws->waitClose(3000ms)) << "still open through nginx";
        }
    }

    // Published while they are away, through nginx's API server, which skips the dead node.
    publish(20);
    if (HasFatalFailure()) return;

    for (auto& client : clients) {
        if (client.node != "n2") continue;
        ASSERT_TRUE(client.connect(port));  // through nginx again: no sticky session to a dead node
        EXPECT_EQ(client.node, "n1");
        auto reply = client.subscribe();
        ASSERT_TRUE(reply) << client.ws->lastError();
        EXPECT_EQ(typeOf(*reply), "subscribed") << reply->dump();
        EXPECT_EQ(reply->value("recovered", false), true) << reply->dump();
    }
    publish(5);
    if (HasFatalFailure()) return;
    for (auto& client : clients) {
        EXPECT_TRUE(client.receiveUpTo(published - 1)) << "got to " << client.lastN << ": " << client.ws->lastError();
        EXPECT_EQ(client.lastN, published - 1);
        EXPECT_TRUE(client.problems.empty()) << client.problems.front();
    }
}

}  // namespace
}  // namespace wspush::testing
