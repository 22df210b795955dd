#include "webhooks/webhook_client.h"

#include <openssl/ssl.h>

#include <optional>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "webhooks/webhook_signature.h"

namespace wspush {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

namespace {

// Receivers answer with a short acknowledgement; a longer body is not read (the connection is
// closed instead), but its status still counts.
constexpr std::size_t kMaxResponseBody = 64 * 1024;

bool isIpAddress(const std::string& host) {
    boost::system::error_code ec;
    net::ip::make_address(host, ec);
    return !ec;
}

class HttpWebhookClient final : public WebhookClient, public std::enable_shared_from_this<HttpWebhookClient> {
public:
    HttpWebhookClient(net::io_context& context, WebhookUrl url, WebhookClientOptions options)
        : context_(context),
          url_(std::move(url)),
          options_(std::move(options)),
          resolver_(context),
          deadline_(context) {
        if (url_.tls) tlsContext_.emplace(makeTlsContext());
    }

    void post(std::string body, std::string signature, Done done) override {
        done_ = std::move(done);
        if (stopped_) return fail("stopped");
        request_ = {http::verb::post, url_.target, 11};
        request_.set(http::field::host, url_.hostHeader());
        request_.set(http::field::user_agent, "wspush/" WSPUSH_VERSION);
        request_.set(http::field::content_type, "application/json");
        request_.set(kWebhookSignatureHeader, signature);
        request_.keep_alive(true);
        request_.body() = std::move(body);
        request_.prepare_payload();

        ++exchange_;
        timedOut_ = false;
        deadline_.expires_after(options_.timeout);
        deadline_.async_wait(beast::bind_front_handler(&HttpWebhookClient::onDeadline, shared_from_this(), exchange_));
        if (connected_) {
            reused_ = true;
            return doWrite();
        }
        reused_ = false;
        doResolve();
    }

    void stop() override {
        stopped_ = true;
        resolver_.cancel();
        deadline_.cancel();
        closeConnection();
    }

private:
    ssl::context makeTlsContext() {
        ssl::context tls(ssl::context::tls_client);
        tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                        ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
        if (!options_.tlsVerify) {
            tls.set_verify_mode(ssl::verify_none);
            return tls;
        }
        tls.set_verify_mode(ssl::verify_peer);
        if (!options_.trustedCertificatePem.empty())
            tls.add_certificate_authority(net::buffer(options_.trustedCertificatePem));
        else
            tls.set_default_verify_paths();
        return tls;
    }

    void doResolve() {
        resolver_.async_resolve(url_.host, std::to_string(url_.port),
                                beast::bind_front_handler(&HttpWebhookClient::onResolve, shared_from_this()));
    }

    void onResolve(beast::error_code ec, tcp::resolver::results_type results) {
        if (ec) return fail("resolve " + url_.host, ec);
        if (url_.tls) {
            tls_.emplace(context_, *tlsContext_);
            // SNI names a host, never an address (RFC 6066).
            if (!isIpAddress(url_.host)) SSL_set_tlsext_host_name(tls_->native_handle(), url_.host.c_str());
            if (options_.tlsVerify) tls_->set_verify_callback(ssl::host_name_verification(url_.host));
            beast::get_lowest_layer(*tls_).async_connect(
                results, beast::bind_front_handler(&HttpWebhookClient::onConnect, shared_from_this()));
        } else {
            plain_.emplace(context_);
            plain_->async_connect(results,
                                  beast::bind_front_handler(&HttpWebhookClient::onConnect, shared_from_this()));
        }
    }

    void onConnect(beast::error_code ec, const tcp::endpoint&) {
        if (ec) return fail("connect", ec);
        connected_ = true;
        lowestLayer().socket().set_option(tcp::no_delay(true), ec);
        if (!tls_) return doWrite();
        tls_->async_handshake(ssl::stream_base::client,
                              beast::bind_front_handler(&HttpWebhookClient::onHandshake, shared_from_this()));
    }

    void onHandshake(beast::error_code ec) {
        if (ec) return fail("TLS handshake", ec);
        doWrite();
    }

    void doWrite() {
        auto onWrite = beast::bind_front_handler(&HttpWebhookClient::onWrite, shared_from_this());
        if (tls_)
            http::async_write(*tls_, request_, std::move(onWrite));
        else
            http::async_write(*plain_, request_, std::move(onWrite));
    }

    void onWrite(beast::error_code ec, std::size_t) {
        if (ec) return failOrReconnect("write", ec);
        parser_.emplace();
        parser_->body_limit(kMaxResponseBody);
        auto onRead = beast::bind_front_handler(&HttpWebhookClient::onRead, shared_from_this());
        if (tls_)
            http::async_read(*tls_, buffer_, *parser_, std::move(onRead));
        else
            http::async_read(*plain_, buffer_, *parser_, std::move(onRead));
    }

    void onRead(beast::error_code ec, std::size_t) {
        if (ec == http::error::body_limit && parser_->is_header_done()) {
            unsigned status = parser_->get().result_int();
            closeConnection();  // the rest of the body is still on the wire
            return finish({status, {}});
        }
        if (ec) return failOrReconnect("read", ec);
        unsigned status = parser_->get().result_int();
        if (!parser_->get().keep_alive()) closeConnection();
        finish({status, {}});
    }

    // A kept-alive connection may have been closed by the receiver while it was idle; that is
    // no failure of the receiver, so the request goes once more, on a new connection.
    void failOrReconnect(const char* what, beast::error_code ec) {
        if (!reused_ || timedOut_ || stopped_) return fail(what, ec);
        closeConnection();
        reused_ = false;
        doResolve();
    }

    void fail(const std::string& what, beast::error_code ec) {
        fail(timedOut_ ? "no answer within the timeout" : what + ": " + ec.message());
    }

    void fail(std::string error) {
        closeConnection();
        finish({0, std::move(error)});
    }

    void finish(WebhookResponse response) {
        deadline_.cancel();
        if (!done_) return;
        // Posted: the caller may post() again from `done`, and post() never completes inline.
        net::post(context_,
                  [done = std::move(done_), response = std::move(response)]() mutable { done(std::move(response)); });
        done_ = nullptr;
    }

    void onDeadline(std::uint64_t exchange, beast::error_code ec) {
        if (ec || exchange != exchange_ || !done_) return;
        // Every pending operation completes with an error, reported as the timeout.
        timedOut_ = true;
        resolver_.cancel();
        closeConnection();
    }

    void closeConnection() {
        connected_ = false;
        beast::error_code ignored;
        // No TLS close_notify: nothing is read after it, and waiting for the peer's would hold
        // the connection past the deadline.
        if (tls_ || plain_) lowestLayer().socket().close(ignored);
        buffer_.clear();
    }

    beast::tcp_stream& lowestLayer() { return tls_ ? beast::get_lowest_layer(*tls_) : *plain_; }

    net::io_context& context_;
    WebhookUrl url_;
    WebhookClientOptions options_;
    std::optional<ssl::context> tlsContext_;
    tcp::resolver resolver_;
    net::steady_timer deadline_;
    std::optional<beast::tcp_stream> plain_;
    std::optional<beast::ssl_stream<beast::tcp_stream>> tls_;
    http::request<http::string_body> request_;
    beast::flat_buffer buffer_;
    std::optional<http::response_parser<http::string_body>> parser_;
    Done done_;
    std::uint64_t exchange_ = 0;
    bool connected_ = false;  // a connection is open (and, between requests, kept for the next)
    bool reused_ = false;     // this request went out on a kept connection
    bool timedOut_ = false;
    bool stopped_ = false;
};

}  // namespace

std::shared_ptr<WebhookClient> WebhookClient::create(net::io_context& context, WebhookUrl url,
                                                     WebhookClientOptions options) {
    return std::make_shared<HttpWebhookClient>(context, std::move(url), std::move(options));
}

}  // namespace wspush
