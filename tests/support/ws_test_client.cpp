#include "support/ws_test_client.h"

#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

namespace wspush::testing {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using json = nlohmann::json;

namespace {
// Ids the client assigns itself start high, away from the small ids tests choose by hand.
constexpr std::uint64_t kFirstAutomaticId = 1'000'000;
}  // namespace

WsTestClient::WsTestClient() : nextId_(kFirstAutomaticId) {}

WsTestClient::~WsTestClient() {
    discardConnection();
}

void WsTestClient::discardConnection() {
    abort();
    // Let the aborted operations complete, so no handler outlives the stream it refers to.
    ioc_.restart();
    for (int round = 0; round < 100 && ioc_.poll() > 0; ++round) {
    }
}

bool WsTestClient::runUntil(const std::function<bool()>& done, Clock::time_point deadline) {
    while (!done()) {
        if (Clock::now() >= deadline) return false;
        ioc_.restart();
        // 0 before the deadline means the io_context ran out of work: nothing more can happen.
        if (ioc_.run_one_until(deadline) == 0 && Clock::now() < deadline) return done();
    }
    return true;
}

template <class Use>
void WsTestClient::withStream(Use&& use) {
    if (auto* plain = std::get_if<PlainStream>(&ws_)) use(*plain);
    if (auto* tls = std::get_if<TlsStream>(&ws_)) use(*tls);
}

tcp::socket& WsTestClient::socket() {
    tcp::socket* socket = nullptr;
    withStream([&](auto& ws) { socket = &beast::get_lowest_layer(ws).socket(); });
    return *socket;
}

void WsTestClient::abort() {
    if (!hasStream()) return;
    beast::error_code ignored;
    socket().close(ignored);
}

bool WsTestClient::connect(unsigned short port, const WsConnectOptions& options) {
    discardConnection();
    ws_ = std::monostate{};  // before the context it may use
    tls_.reset();
    if (options.tls) {
        tls_.emplace(net::ssl::context::tls_client);
        beast::error_code ec;
        tls_->add_certificate_authority(net::buffer(options.tls->trustedCertificatePem), ec);
        if (ec) {
            lastError_ = "trusted certificate: " + ec.message();
            return false;
        }
        tls_->set_verify_mode(net::ssl::verify_peer);
        if (options.tls->maxVersion != 0) SSL_CTX_set_max_proto_version(tls_->native_handle(), options.tls->maxVersion);
        ws_.emplace<TlsStream>(ioc_, *tls_);
    } else {
        ws_.emplace<PlainStream>(ioc_);
    }
    ended_ = false;
    reading_ = false;
    closeCode_ = 0;
    closeReason_.clear();
    frames_.clear();
    pongs_.clear();
    messages_.clear();
    readBuffer_.clear();
    extensions_.clear();
    handshakeStatus_ = 0;
    handshakeBody_.clear();
    auto deadline = Clock::now() + options.timeout;
    beast::error_code ec;
    if (options.receiveBufferSize > 0 || !options.localAddress.empty()) {
        // Must precede connect: the window scale is fixed by the SYN.
        socket().open(tcp::v4(), ec);
        if (!ec && options.receiveBufferSize > 0)
            socket().set_option(net::socket_base::receive_buffer_size(options.receiveBufferSize), ec);
        if (!ec && !options.localAddress.empty()) {
            auto local = net::ip::make_address(options.localAddress, ec);
            if (!ec) socket().bind(tcp::endpoint(local, 0), ec);
        }
        if (ec) {
            lastError_ = "socket setup: " + ec.message();
            return false;
        }
    }

    bool connected = false;
    beast::error_code connectError;
    tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), port);
    socket().async_connect(endpoint, [&](beast::error_code e) {
        connectError = e;
        connected = true;
    });
    if (!runUntil([&] { return connected; }, deadline)) {
        abort();
        runUntil([&] { return connected; }, Clock::now() + 1s);
        lastError_ = "TCP connect timed out";
        return false;
    }
    if (connectError) {
        lastError_ = "TCP connect: " + connectError.message();
        return false;
    }
    bool done = false;
    withStream([&](auto& ws) { done = handshake(ws, port, options, deadline); });
    if (done) startRead();
    return done;
}

template <class Stream>
bool WsTestClient::handshake(Stream& ws, unsigned short port, const WsConnectOptions& options,
                             Clock::time_point deadline) {
    if constexpr (std::is_same_v<Stream, TlsStream>) {
        auto& tls = ws.next_layer();
        SSL_set_tlsext_host_name(tls.native_handle(), options.tls->serverName.c_str());
        tls.set_verify_callback(net::ssl::host_name_verification(options.tls->serverName));
        bool handshaken = false;
        beast::error_code tlsError;
        tls.async_handshake(net::ssl::stream_base::client, [&](beast::error_code e) {
            tlsError = e;
            handshaken = true;
        });
        if (!runUntil([&] { return handshaken; }, deadline)) {
            abort();
            runUntil([&] { return handshaken; }, Clock::now() + 1s);
            lastError_ = "TLS handshake timed out";
            return false;
        }
        if (tlsError) {
            lastError_ = "TLS handshake: " + tlsError.message();
            return false;
        }
    }
    if (options.offerDeflate) {
        websocket::permessage_deflate deflate;
        deflate.client_enable = true;
        ws.set_option(deflate);
    }
    if (!options.headers.empty())
        ws.set_option(websocket::stream_base::decorator([headers = options.headers](websocket::request_type& request) {
            for (const auto& [name, value] : headers) request.set(name, value);
        }));
    ws.control_callback([this](websocket::frame_type kind, beast::string_view payload) {
        if (kind == websocket::frame_type::pong) pongs_.emplace_back(payload);
    });
    bool handshaken = false;
    beast::error_code handshakeError;
    websocket::response_type response;
    ws.async_handshake(response, "127.0.0.1:" + std::to_string(port), options.path, [&](beast::error_code e) {
        handshakeError = e;
        handshaken = true;
    });
    if (!runUntil([&] { return handshaken; }, deadline)) {
        abort();
        runUntil([&] { return handshaken; }, Clock::now() + 1s);
        lastError_ = "WebSocket handshake timed out";
        return false;
    }
    handshakeStatus_ = response.result_int();
    handshakeBody_ = response.body();
    if (handshakeError) {
        lastError_ = "WebSocket handshake: " + handshakeError.message() + " (HTTP " +
                     std::to_string(response.result_int()) + ")";
        return false;
    }
    extensions_ = std::string(response[beast::http::field::sec_websocket_extensions]);
    return true;
}

std::optional<json> WsTestClient::connectProtocol(unsigned short port, const std::string& user,
                                                  const WsConnectOptions& options) {
    if (!connect(port, options)) return std::nullopt;
    json command{{"type", "connect"}, {"client", "integration-tests/1"}};
    if (!user.empty()) command["user"] = user;
    auto reply = request(command, options.timeout);
    if (!reply || reply->value("type", "") != "connected") {
        lastError_ = "connect command failed: " + (reply ? reply->dump() : std::string("no reply"));
        return std::nullopt;
    }
    return reply;
}

std::optional<json> WsTestClient::connectWith(unsigned short port, json fields, const WsConnectOptions& options) {
    if (!connect(port, options)) return std::nullopt;
    fields["type"] = "connect";
    if (!fields.contains("client")) fields["client"] = "integration-tests/1";
    auto reply = request(fields, options.timeout);
    if (!reply) lastError_ = "no reply to connect: " + lastError_;
    return reply;
}

bool WsTestClient::isOpen() const {
    bool open = false;
    std::visit(
        [&](const auto& ws) {
            if constexpr (!std::is_same_v<std::decay_t<decltype(ws)>, std::monostate>) open = ws.is_open();
        },
        ws_);
    return open && !ended_;
}

bool WsTestClient::deflateNegotiated() const {
    return extensions_.find("permessage-deflate") != std::string::npos;
}

void WsTestClient::startRead() {
    if (!hasStream() || reading_ || ended_) return;
    reading_ = true;
    withStream([this](auto& ws) {
        ws.async_read(readBuffer_, [this](beast::error_code ec, std::size_t bytes) { onRead(ec, bytes); });
    });
}

void WsTestClient::onRead(beast::error_code ec, std::size_t) {
    reading_ = false;
    if (ec) {
        ended_ = true;
        // reason() holds the close frame's code when one arrived, even if the TCP teardown after
        // it failed; without a close frame the connection closed abnormally.
        withStream([this](auto& ws) {
            const websocket::close_reason& reason = ws.reason();
            closeCode_ = reason.code != websocket::close_code::none ? static_cast<int>(reason.code) : kAbnormalClosure;
            closeReason_ = std::string(reason.reason.data(), reason.reason.size());
        });
        lastError_ = "read ended: " + ec.message();
        return;
    }
    bool binary = false;
    withStream([&](auto& ws) { binary = ws.got_binary(); });
    frames_.push_back(WsFrame{beast::buffers_to_string(readBuffer_.data()), binary});
    readBuffer_.consume(readBuffer_.size());
    startRead();
}

bool WsTestClient::write(const std::string& payload, bool binary, Millis timeout) {
    if (!isOpen()) {
        lastError_ = "write on a closed connection";
        return false;
    }
    bool done = false;
    beast::error_code writeError;
    withStream([&](auto& ws) {
        ws.binary(binary);
        ws.async_write(net::buffer(payload), [&](beast::error_code e, std::size_t) {
            writeError = e;
            done = true;
        });
    });
    if (!runUntil([&] { return done; }, Clock::now() + timeout)) {
        abort();
        runUntil([&] { return done; }, Clock::now() + 1s);  // `payload` must outlive the operation
        lastError_ = "write timed out";
        return false;
    }
    if (writeError) lastError_ = "write: " + writeError.message();
    return !writeError;
}

bool WsTestClient::sendText(const std::string& text, Millis timeout) {
    return write(text, false, timeout);
}

bool WsTestClient::sendBinary(const std::string& bytes, Millis timeout) {
    return write(bytes, true, timeout);
}

bool WsTestClient::sendRaw(const std::string& bytes, Millis timeout) {
    if (!hasStream()) return false;
    bool done = false;
    beast::error_code writeError;
    net::async_write(socket(), net::buffer(bytes), [&](beast::error_code e, std::size_t) {
        writeError = e;
        done = true;
    });
    if (!runUntil([&] { return done; }, Clock::now() + timeout)) {
        abort();
        runUntil([&] { return done; }, Clock::now() + 1s);
        lastError_ = "raw write timed out";
        return false;
    }
    if (writeError) lastError_ = "raw write: " + writeError.message();
    return !writeError;
}

void WsTestClient::splitFrames() {
    while (!frames_.empty()) {
        std::string payload = std::move(frames_.front().payload);
        frames_.pop_front();
        std::size_t start = 0;
        while (start <= payload.size()) {
            std::size_t end = payload.find('\n', start);
            if (end == std::string::npos) end = payload.size();
            if (end > start) {
                std::string_view piece(payload.data() + start, end - start);
                json message = json::parse(piece, nullptr, /*allow_exceptions=*/false);
                if (message.is_discarded())
                    ADD_FAILURE() << "the server sent a piece that is not JSON: " << piece;
                else
                    messages_.push_back(std::move(message));
            }
            start = end + 1;
        }
    }
}

std::optional<json> WsTestClient::nextMessage(Millis timeout) {
    return waitFor([](const json&) { return true; }, timeout);
}

std::optional<json> WsTestClient::waitFor(const std::function<bool(const json&)>& match, Millis timeout) {
    auto deadline = Clock::now() + timeout;
    std::size_t scanned = 0;  // messages already known not to match
    while (true) {
        splitFrames();
        for (; scanned < messages_.size(); ++scanned) {
            if (match(messages_[scanned])) {
                json found = std::move(messages_[scanned]);
                messages_.erase(messages_.begin() + static_cast<std::ptrdiff_t>(scanned));
                return found;
            }
        }
        if (ended_) return std::nullopt;
        startRead();
        if (!runUntil([&] { return !frames_.empty() || ended_; }, deadline) && frames_.empty()) return std::nullopt;
    }
}

std::optional<json> WsTestClient::request(json command, Millis timeout) {
    if (!command.contains("id")) command["id"] = nextId_++;
    json id = command["id"];
    if (!sendJson(command, timeout)) return std::nullopt;
    return waitFor([&](const json& message) { return message.contains("id") && message["id"] == id; }, timeout);
}

std::optional<WsFrame> WsTestClient::nextFrame(Millis timeout) {
    auto deadline = Clock::now() + timeout;
    if (frames_.empty() && !ended_) {
        startRead();
        runUntil([&] { return !frames_.empty() || ended_; }, deadline);
    }
    if (frames_.empty()) return std::nullopt;
    WsFrame frame = std::move(frames_.front());
    frames_.pop_front();
    return frame;
}

std::optional<json> WsTestClient::subscribe(const std::string& channel, Millis timeout) {
    return request(json{{"type", "subscribe"}, {"channel", channel}}, timeout);
}

std::optional<WsEnding> WsTestClient::waitClose(Millis timeout) {
    if (!hasStream()) return std::nullopt;
    startRead();
    if (!runUntil([&] { return ended_; }, Clock::now() + timeout)) return std::nullopt;
    splitFrames();
    WsEnding ending;
    ending.closeCode = closeCode_;
    ending.closeReason = closeReason_;
    ending.messages.assign(std::make_move_iterator(messages_.begin()), std::make_move_iterator(messages_.end()));
    messages_.clear();
    return ending;
}

bool WsTestClient::pumpFor(Millis duration) {
    startRead();
    runUntil([&] { return ended_; }, Clock::now() + duration);
    return !ended_;
}

void WsTestClient::close(Millis timeout) {
    closeWith(websocket::close_code::normal, timeout);
}

void WsTestClient::drop(bool reset) {
    if (!hasStream()) return;
    beast::error_code ignored;
    if (reset && socket().is_open()) socket().set_option(net::socket_base::linger(true, 0), ignored);
    discardConnection();  // closes the socket and lets the failed read finish
    ended_ = true;
    closeCode_ = kAbnormalClosure;
    frames_.clear();
    messages_.clear();
}

void WsTestClient::closeWith(int code, Millis timeout) {
    if (!isOpen()) return;
    bool done = false;
    withStream([&](auto& ws) {
        ws.async_close(static_cast<websocket::close_code>(code), [&](beast::error_code) { done = true; });
    });
    auto deadline = Clock::now() + timeout;
    if (!runUntil([&] { return done && !reading_; }, deadline)) {
        abort();
        runUntil([&] { return done && !reading_; }, Clock::now() + 1s);
    }
}

}  // namespace wspush::testing
