// TLS on the public listener (tls.cert, tls.key) through the real daemon: wss clients that verify
// the certificate as a browser would, https on the same port, what is not TLS dropped and
// counted, tls.min_version, and a renewed certificate served after SIGHUP while open
// connections keep going.
#include <openssl/tls1.h>

#include <csignal>
#include <fstream>
#include <stdexcept>

#include <gtest/gtest.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "support/test_certificate.h"
#include "support/test_helpers.h"

namespace wspush::testing {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using json = nlohmann::json;

const TestCertificate& firstCertificate() {
    static const TestCertificate certificate = makeSelfSignedCertificate("DNS:localhost,IP:127.0.0.1");
    return certificate;
}

const TestCertificate& renewedCertificate() {
    static const TestCertificate certificate = makeSelfSignedCertificate("DNS:localhost,IP:127.0.0.1");
    return certificate;
}

void writeFile(const std::filesystem::path& path, const std::string& text) {
    std::ofstream(path, std::ios::trunc) << text;
}

// Starts the daemon with `certificate` as tls.cert and tls.key (files in its own folder, which
// exists only once it runs: so the files are written to a folder of the test's first).
class TlsDaemon {
public:
    explicit TlsDaemon(const TestCertificate& certificate, json overrides = json::object(),
                       std::chrono::milliseconds readyTimeout = std::chrono::milliseconds(10'000))
        : folder_(std::filesystem::temp_directory_path() /
                  ("wspush-tls-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++))) {
        std::filesystem::create_directories(folder_);
        install(certificate);
        json config{{"tls", {{"cert", certPath().string()}, {"key", keyPath().string()}}},
                    {"api", {{"listen", "127.0.0.1:0"}}}};
        config.merge_patch(overrides);
        daemon_.emplace(config, DaemonOptions{{}, {}, readyTimeout});
    }
    ~TlsDaemon() {
        daemon_.reset();
        std::error_code ignored;
        std::filesystem::remove_all(folder_, ignored);
    }

    DaemonProcess& daemon() { return *daemon_; }
    std::filesystem::path certPath() const { return folder_ / "cert.pem"; }
    std::filesystem::path keyPath() const { return folder_ / "key.pem"; }
    void install(const TestCertificate& certificate) {
        writeFile(certPath(), certificate.certificatePem);
        writeFile(keyPath(), certificate.privateKeyPem);
    }

private:
    static inline int counter_ = 0;
    std::filesystem::path folder_;
    std::optional<DaemonProcess> daemon_;
};

WsConnectOptions wss(const TestCertificate& trusted, int maxVersion = 0) {
    WsConnectOptions options;
    options.tls = WsTlsOptions{trusted.certificatePem, "localhost", maxVersion};
    return options;
}

// One HTTPS request on a fresh connection that verifies `trusted`; throws when TLS fails.
http::response<http::string_body> httpsRequest(unsigned short port, const TestCertificate& trusted, http::verb method,
                                               const std::string& target, const std::string& body = "") {
    net::io_context ioc;
    net::ssl::context context(net::ssl::context::tls_client);
    context.add_certificate_authority(net::buffer(trusted.certificatePem));
    context.set_verify_mode(net::ssl::verify_peer);
    beast::ssl_stream<beast::tcp_stream> stream(ioc, context);
    SSL_set_tlsext_host_name(stream.native_handle(), "localhost");
    stream.set_verify_callback(net::ssl::host_name_verification("localhost"));
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
    beast::get_lowest_layer(stream).connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    stream.handshake(net::ssl::stream_base::client);
    http::request<http::string_body> request{method, target, 11};
    request.set(http::field::host, "localhost");
    request.set(http::field::content_type, "application/json");
    request.body() = body;
    request.prepare_payload();
    http::write(stream, request);
    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(stream, buffer, response);
    return response;
}

TEST(Tls, AWssClientReceivesWhatABackendPublishesWithAndWithoutCompression) {
    TlsDaemon server(firstCertificate(), json{{"websocket", {{"compression", {{"enabled", true}, {"threshold", 0}}}}}});
    DaemonProcess& daemon = server.daemon();
    WsTestClient plain, compressed;
    ASSERT_TRUE(plain.connectProtocol(daemon.port(), "alice", wss(firstCertificate()))) << plain.lastError();
    WsConnectOptions deflate = wss(firstCertificate());
    deflate.offerDeflate = true;
    ASSERT_TRUE(compressed.connectProtocol(daemon.port(), "bob", deflate)) << compressed.lastError();
    EXPECT_TRUE(compressed.deflateNegotiated());
    ASSERT_TRUE(subscribeOk(plain, "news"));
    ASSERT_TRUE(subscribeOk(compressed, "news"));

    std::string text(2000, 'x');  // large enough to be compressed
    ASSERT_EQ(httpPostJson(daemon.apiPort(), "/api/publish", {{"channel", "news"}, {"data", {{"text", text}}}}).status,
              200u);
    for (WsTestClient* client : {&plain, &compressed}) {
        auto message = client->waitFor([](const json& m) { return typeOf(m) == "message"; });
        ASSERT_TRUE(message) << client->lastError();
        EXPECT_EQ((*message)["data"]["text"], text);
    }
}

TEST(Tls, TheApiAndHealthAnswerOverHttpsOnThePublicListener) {
    TlsDaemon server(firstCertificate(), json{{"api", {{"listen", nullptr}}}});
    DaemonProcess& daemon = server.daemon();
    EXPECT_EQ(daemon.apiPort(), daemon.port());
    EXPECT_EQ(httpsRequest(daemon.port(), firstCertificate(), http::verb::get, "/healthz").result_int(), 200u);

    WsTestClient client;
    ASSERT_TRUE(client.connectProtocol(daemon.port(), "alice", wss(firstCertificate()))) << client.lastError();
    ASSERT_TRUE(subscribeOk(client, "news"));
    auto published = httpsRequest(daemon.port(), firstCertificate(), http::verb::post, "/api/publish",
                                  json{{"channel", "news"}, {"data", "over https"}}.dump());
    EXPECT_EQ(published.result_int(), 200u) << published.body();
    auto message = client.waitFor([](const json& m) { return typeOf(m) == "message"; });
    ASSERT_TRUE(message) << client.lastError();
    EXPECT_EQ((*message)["data"], "over https");
}

TEST(Tls, WhatIsNotTlsIsDroppedAndCountedWhileWssClientsKeepReceiving) {
    TlsDaemon server(firstCertificate(), json{{"websocket", {{"handshake_timeout", 1}}}});
    DaemonProcess& daemon = server.daemon();
    WsTestClient watcher;
    ASSERT_TRUE(watcher.connectProtocol(daemon.port(), "alice", wss(firstCertificate()))) << watcher.lastError();
    ASSERT_TRUE(subscribeOk(watcher, "news"));

    // A plain WebSocket client on the TLS port: its upgrade request is no ClientHello.
    WsTestClient plain;
    EXPECT_FALSE(plain.connect(daemon.port()));
    // A client that trusts another certificate gives up in the handshake (a browser's warning).
    WsTestClient distrustful;
    EXPECT_FALSE(distrustful.connect(daemon.port(), wss(renewedCertificate())));
    EXPECT_NE(distrustful.lastError().find("TLS handshake"), std::string::npos) << distrustful.lastError();
    // A connection that never says a word is closed once the handshake timeout passes.
    net::io_context ioc;
    net::ip::tcp::socket silent(ioc);
    silent.connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), daemon.port()));
    auto started = std::chrono::steady_clock::now();
    char byte;
    boost::system::error_code readError;
    silent.read_some(net::buffer(&byte, 1), readError);  // blocks until the daemon closes it
    EXPECT_EQ(readError, net::error::eof);
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(4));

    EXPECT_TRUE(eventually([&] { return readMetric(daemon.apiPort(), "wspush_tls_handshake_failures_total") >= 3; }))
        << readMetric(daemon.apiPort(), "wspush_tls_handshake_failures_total");
    ASSERT_EQ(httpPostJson(daemon.apiPort(), "/api/publish", {{"channel", "news"}, {"data", 1}}).status, 200u);
    auto message = watcher.waitFor([](const json& m) { return typeOf(m) == "message"; });
    ASSERT_TRUE(message) << watcher.lastError();
    EXPECT_EQ((*message)["data"], 1);
}

TEST(Tls, MinVersionOneThreeRefusesClientsThatOfferOnlyTlsOneTwo) {
    TlsDaemon server(firstCertificate(), json{{"tls", {{"min_version", "1.3"}}}});
    WsTestClient old;
    EXPECT_FALSE(old.connect(server.daemon().port(), wss(firstCertificate(), TLS1_2_VERSION)));
    WsTestClient current;
    EXPECT_TRUE(current.connectProtocol(server.daemon().port(), "alice", wss(firstCertificate())))
        << current.lastError();

    TlsDaemon lenient(firstCertificate());
    WsTestClient older;
    EXPECT_TRUE(older.connectProtocol(lenient.daemon().port(), "alice", wss(firstCertificate(), TLS1_2_VERSION)))
        << older.lastError();
}

TEST(Tls, SighupServesARenewedCertificateAndOpenConnectionsKeepGoing) {
    TlsDaemon server(firstCertificate());
    DaemonProcess& daemon = server.daemon();
    auto connectsTrusting = [&](const TestCertificate& trusted) {
        WsTestClient client;
        return client.connectProtocol(daemon.port(), "probe", wss(trusted)).has_value();
    };
    WsTestClient early;
    ASSERT_TRUE(early.connectProtocol(daemon.port(), "alice", wss(firstCertificate()))) << early.lastError();
    ASSERT_TRUE(subscribeOk(early, "news"));
    EXPECT_FALSE(connectsTrusting(renewedCertificate()));

    // The operator renews: new files under the same names, then SIGHUP.
    server.install(renewedCertificate());
    ASSERT_TRUE(daemon.terminate(SIGHUP));
    ASSERT_TRUE(eventually([&] { return connectsTrusting(renewedCertificate()); }, 5s)) << daemon.logText();
    EXPECT_FALSE(connectsTrusting(firstCertificate()));
    ASSERT_EQ(httpPostJson(daemon.apiPort(), "/api/publish", {{"channel", "news"}, {"data", "still here"}}).status,
              200u);
    auto message = early.waitFor([](const json& m) { return typeOf(m) == "message"; });
    ASSERT_TRUE(message) << early.lastError();
    EXPECT_EQ((*message)["data"], "still here");

    // A key that does not match the certificate is refused; the renewed certificate stays.
    writeFile(server.keyPath(), firstCertificate().privateKeyPem);
    ASSERT_TRUE(daemon.terminate(SIGHUP));
    ASSERT_TRUE(eventually([&] { return daemon.logText().find("does not match tls.cert") != std::string::npos; }, 5s))
        << daemon.logText();
    EXPECT_TRUE(connectsTrusting(renewedCertificate()));
}

TEST(Tls, ADaemonWhoseCertificateCannotBeLoadedRefusesToStartAndSaysWhy) {
    auto startupError = [](json tls) {
        try {
            DaemonProcess daemon(json{{"tls", std::move(tls)}});
        } catch (const std::runtime_error& failure) {
            return std::string(failure.what());
        }
        return std::string("it started");
    };
    std::filesystem::path folder =
        std::filesystem::temp_directory_path() / ("wspush-tls-bad-" + std::to_string(getpid()));
    std::filesystem::create_directories(folder);
    writeFile(folder / "cert.pem", firstCertificate().certificatePem);
    writeFile(folder / "key.pem", renewedCertificate().privateKeyPem);
    writeFile(folder / "garbage.pem", "not a certificate");

    std::string missing =
        startupError({{"cert", (folder / "absent.pem").string()}, {"key", (folder / "key.pem").string()}});
    EXPECT_NE(missing.find("cannot serve TLS: tls.cert"), std::string::npos) << missing;
    std::string garbage =
        startupError({{"cert", (folder / "garbage.pem").string()}, {"key", (folder / "key.pem").string()}});
    EXPECT_NE(garbage.find("cannot serve TLS: tls.cert"), std::string::npos) << garbage;
    std::string mismatch =
        startupError({{"cert", (folder / "cert.pem").string()}, {"key", (folder / "key.pem").string()}});
    EXPECT_NE(mismatch.find("does not match tls.cert"), std::string::npos) << mismatch;
    std::string alone = startupError({{"cert", (folder / "cert.pem").string()}});
    EXPECT_NE(alone.find("tls.key"), std::string::npos) << alone;
    std::filesystem::remove_all(folder);
}

}  // namespace
}  // namespace wspush::testing
