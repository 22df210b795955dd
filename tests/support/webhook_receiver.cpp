#include "support/webhook_receiver.h"

#include <stdexcept>

#include <boost/asio/ip/address.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "webhooks/webhook_signature.h"

namespace wspush::testing {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

namespace {

// One connection: reads requests, records them, answers as told. Stream is a tcp_stream or a
// TLS stream over one.
template <class Stream>
class ReceiverSession : public std::enable_shared_from_this<ReceiverSession<Stream>> {
public:
    ReceiverSession(WebhookReceiver& receiver, Stream stream, std::size_t number)
        : receiver_(receiver), stream_(std::move(stream)), number_(number) {}

    void start() {
        if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
            doRead();
        } else {
            stream_.async_handshake(ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code ec) {
                if (!ec) self->doRead();
            });
        }
    }

private:
    void doRead() {
        request_ = {};
        http::async_read(stream_, buffer_, request_,
                         beast::bind_front_handler(&ReceiverSession::onRead, this->shared_from_this()));
    }

    void onRead(beast::error_code ec, std::size_t) {
        if (ec) return;  // the client closed, or gave up
        ReceivedWebhook received;
        received.target = std::string(request_.target());
        received.contentType = std::string(request_[http::field::content_type]);
        received.signature = std::string(request_["X-Wspush-Signature"]);
        received.body = request_.body();
        received.signatureValid = verifyWebhookSignature(receiver_.secret(), received.body, received.signature);
        received.connection = number_;
        WebhookAnswer answer = receiver_.record(std::move(received));
        if (answer.hang) return doRead();  // ends when the client closes the connection
        response_ = {static_cast<http::status>(answer.status), request_.version()};
        if (answer.status != 204) {  // a 204 has no body
            response_.set(http::field::content_type, "text/plain");
            response_.body() = "ok";
        }
        response_.keep_alive(request_.keep_alive());
        response_.prepare_payload();
        http::async_write(stream_, response_,
                          [self = this->shared_from_this(), answer](beast::error_code ec, std::size_t) {
                              if (ec || answer.closeAfter || !self->request_.keep_alive()) {
                                  beast::get_lowest_layer(self->stream_).socket().close(ec);
                                  return;
                              }
                              self->doRead();
                          });
    }

    WebhookReceiver& receiver_;
    Stream stream_;
    std::size_t number_;
    beast::flat_buffer buffer_;
    http::request<http::string_body> request_;
    http::response<http::string_body> response_;
};

}  // namespace

WebhookReceiver::WebhookReceiver(std::string secret, std::optional<TestCertificate> tls)
    : secret_(std::move(secret)),
      acceptor_(context_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)),
      responder_([](std::size_t) { return WebhookAnswer{}; }) {
    if (tls) {
        tls_.emplace(ssl::context::tls_server);
        tls_->use_certificate_chain(net::buffer(tls->certificatePem));
        tls_->use_private_key(net::buffer(tls->privateKeyPem), ssl::context::pem);
    }
    port_ = acceptor_.local_endpoint().port();
    accept();
    thread_ = std::thread([this] { context_.run(); });
}

WebhookReceiver::~WebhookReceiver() {
    context_.stop();
    thread_.join();
}

std::string WebhookReceiver::url(const std::string& path, const std::string& host) const {
    return (tls_ ? "https://" : "http://") + host + ":" + std::to_string(port_) + path;
}

void WebhookReceiver::respondWith(Responder responder) {
    std::lock_guard lock(mutex_);
    responder_ = std::move(responder);
}

std::vector<ReceivedWebhook> WebhookReceiver::requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
}

std::size_t WebhookReceiver::requestCount() const {
    std::lock_guard lock(mutex_);
    return requests_.size();
}

WebhookAnswer WebhookReceiver::record(ReceivedWebhook request) {
    std::lock_guard lock(mutex_);
    requests_.push_back(std::move(request));
    return responder_(requests_.size() - 1);
}

void WebhookReceiver::accept() {
    acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
        if (ec) return;
        std::size_t number = ++connections_;
        if (tls_)
            std::make_shared<ReceiverSession<beast::ssl_stream<beast::tcp_stream>>>(
                *this, beast::ssl_stream<beast::tcp_stream>(std::move(socket), *tls_), number)
                ->start();
        else
            std::make_shared<ReceiverSession<beast::tcp_stream>>(*this, beast::tcp_stream(std::move(socket)), number)
                ->start();
        accept();
    });
}

}  // namespace wspush::testing
