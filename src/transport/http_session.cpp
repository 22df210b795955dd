#include "transport/http_session.h"

#include <spdlog/spdlog.h>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "transport/client_address.h"

namespace wspush {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;

namespace {
// Between keep-alive requests. The first request must arrive within the handshake timeout.
constexpr std::chrono::seconds kKeepAliveTimeout{60};
// For the client's close_notify after ours: a client that never answers costs no more than this.
constexpr std::chrono::seconds kTlsShutdownTimeout{2};

// The length of the target in the request line at the start of `head`, as far as it was read: a
// header block over the limit is a target over its own limit (414) or too many headers (431).
std::size_t targetLength(std::string_view head) {
    head = head.substr(0, head.find('\n'));
    auto start = head.find(' ');
    if (start == std::string_view::npos) return 0;
    head.remove_prefix(start + 1);
    return head.substr(0, head.find(' ')).size();
}

}  // namespace

template <class Stream>
HttpSession<Stream>::HttpSession(Node& node, HttpApi& api, const OriginPolicy& origins, EventLoop& loop, Stream stream,
                                 ListenerRoutes routes, SessionMode websocketMode)
    : node_(node),
      api_(api),
      origins_(origins),
      loop_(loop),
      routes_(routes),
      websocketMode_(websocketMode),
      stream_(std::move(stream)),
      peer_(peerAddressOf(tcpSocketOf(stream_))),
      client_(peer_) {
    loop_.attach(this);
    loop_.metrics().httpConnections.add();
}

template <class Stream>
HttpSession<Stream>::~HttpSession() {
    loop_.detach(this);
    loop_.metrics().httpConnections.sub();
}

template <class Stream>
void HttpSession<Stream>::start() {
    if constexpr (kTls) {
        // The handshake, then the first request, within the handshake timeout (doRead).
        beast::get_lowest_layer(stream_).expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            node_.config().websocket.handshake_timeout));
        stream_.async_handshake(net::ssl::stream_base::server,
                                beast::bind_front_handler(&HttpSession::onHandshake, this->shared_from_this()));
    } else {
        doRead();
    }
}

template <class Stream>
void HttpSession<Stream>::onHandshake(beast::error_code ec) {
    if (ec) {
        // Scanners, plain HTTP on the TLS port, expired certificates on the client's side: common
        // and harmless, so counted rather than logged above debug.
        loop_.metrics().tlsHandshakeFailures.add();
        spdlog::debug("tls handshake from {} failed: {}", peer_.to_string(), ec.message());
        return close();
    }
    doRead();
}

template <class Stream>
void HttpSession<Stream>::doRead() {
    parser_.emplace();
    client_ = peer_;  // until the next request's headers say otherwise
    parser_->body_limit(node_.config().api.max_body_size);
    parser_->header_limit(static_cast<std::uint32_t>(node_.config().limits.max_header_bytes));
    auto timeout = firstRequest_ ? std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                       node_.config().websocket.handshake_timeout)
                                 : std::chrono::steady_clock::duration(kKeepAliveTimeout);
    if (!kTls || !firstRequest_) beast::get_lowest_layer(stream_).expires_after(timeout);  // TLS: start() set it
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&HttpSession<Stream>::onRead, this->shared_from_this()));
}

template <class Stream>
void HttpSession<Stream>::onRead(beast::error_code ec, std::size_t) {
    if (ec == http::error::body_limit) {
        keepAlive_ = false;  // the rest of the body is still on the wire: answer, then close
        busy_ = true;
        return respond(HttpApi::error(ApiErrorCode::PayloadTooLarge, "request body too large"));
    }
    const LimitsConfig& limits = node_.config().limits;
    if (ec == http::error::header_limit) {
        auto data = buffer_.cdata();
        std::string_view head(static_cast<const char*>(data.data()), data.size());
        if (targetLength(head) > limits.max_url_bytes)
            return refuse(ApiErrorCode::UriTooLong, "request target too long", loop_.metrics().refusedUrlTooLong);
        return refuse(ApiErrorCode::HeadersTooLarge, "request headers too large",
                      loop_.metrics().refusedHeaderTooLarge);
    }
    if (ec) {
        if (ec != http::error::end_of_stream && ec != beast::error::timeout && ec != net::error::operation_aborted &&
            ec != net::ssl::error::stream_truncated)
            spdlog::debug("http read failed: {}", ec.message());
        return close();
    }
    if (parser_->get().target().size() > limits.max_url_bytes)
        return refuse(ApiErrorCode::UriTooLong, "request target too long", loop_.metrics().refusedUrlTooLong);
    busy_ = true;
    firstRequest_ = false;
    received_ = std::chrono::steady_clock::now();
    loop_.metrics().httpRequests.add();
    auto request = parser_->release();
    client_ = clientAddressOf(peer_, request, node_.config().proxy.trusted);
    version_ = request.version();
    headRequest_ = request.method() == http::verb::head;
    // A connection the API listener accepted during the drain (it stays open for probes and
    // backends) must not hold the drain up by staying alive.
    keepAlive_ = request.keep_alive() && !draining_ && !api_.draining();

    std::string_view target = request.target();
    std::string_view path = target.substr(0, target.find('?'));
    if (beast::websocket::is_upgrade(request)) {
        if (routes_.websocket && path == node_.config().websocket.path && !draining_)
            return upgrade(std::move(request));
        keepAlive_ = false;
        return respond(HttpApi::error(ApiErrorCode::NotFound, "no WebSocket endpoint at this path"));
    }

    ApiRequest apiRequest;
    apiRequest.method = std::string(request.method_string());
    apiRequest.path = std::string(path);
    if (path.size() < target.size()) apiRequest.query = std::string(target.substr(path.size() + 1));
    apiRequest.authorization = std::string(request[http::field::authorization]);
    apiRequest.contentType = std::string(request[http::field::content_type]);
    apiRequest.body = std::move(request.body());
    apiRequest.fromLoopback = client_.is_loopback();
    if (auto key = request.find("Idempotency-Key"); key != request.end())
        apiRequest.idempotencyKey = std::string(key->value());
    apiRequest.after = [executor = stream_.get_executor()](std::chrono::milliseconds delay,
                                                           std::function<void()> task) {
        auto timer = std::make_shared<net::steady_timer>(executor, delay);
        timer->async_wait([timer, task = std::move(task)](const beast::error_code&) { task(); });
    };
    api_.handle(apiRequest, routes_, [self = this->shared_from_this()](ApiResponse response) {
        net::dispatch(self->stream_.get_executor(),
                      [self, response = std::move(response)]() mutable { self->respond(std::move(response)); });
    });
}

template <class Stream>
void HttpSession<Stream>::refuse(ApiErrorCode code, std::string_view message, Counter& refusals) {
    refusals.add();
    if (client_ == peer_)
        spdlog::debug("http request from {} refused: {}", peer_.to_string(), message);
    else
        spdlog::debug("http request from {} (via proxy {}) refused: {}", client_.to_string(), peer_.to_string(),
                      message);
    keepAlive_ = false;  // the rest of the request may still be on the wire: answer, then close
    busy_ = true;
    headRequest_ = false;
    respond(HttpApi::error(code, message));
}

template <class Stream>
void HttpSession<Stream>::upgrade(WebSocketRequest request) {
    // Refusals are plain HTTP answers with the API's error body, before the WebSocket handshake,
    // so that a client (or the proxy in front) can tell why.
    LoopMetrics& metrics = loop_.metrics();
    auto origin = request.find(http::field::origin);
    if (!origins_.allows(origin == request.end() ? std::nullopt : std::optional<std::string_view>(origin->value())))
        return refuse(ApiErrorCode::Forbidden, "origin not allowed", metrics.refusedOrigin);

    auto admission = node_.connectionGate().admit(client_.is_unspecified() ? "" : addressLimitKey(client_));
    if (auto* refusal = std::get_if<ConnectionGate::Refusal>(&admission)) {
        switch (*refusal) {
            case ConnectionGate::Refusal::NodeFull:
                return refuse(ApiErrorCode::NodeFull, "this node takes no more connections", metrics.refusedNodeLimit);
            case ConnectionGate::Refusal::TooManyFromAddress:
                return refuse(ApiErrorCode::TooManyRequests, "too many connections from this address",
                              metrics.refusedIpLimit);
            case ConnectionGate::Refusal::TooFastFromAddress:
                return refuse(ApiErrorCode::TooManyRequests, "too many new connections from this address",
                              metrics.refusedIpRate);
        }
    }
    auto session =
        std::make_shared<WebSocketSession<Stream>>(node_, loop_, UpgradedStream<Stream>::from(stream_), websocketMode_,
                                                   std::get<ConnectionGate::Ticket>(std::move(admission)));
    // The session logs its TCP peer; behind a proxy this line ties its id to the client. Checked
    // first: every upgrade behind a proxy would otherwise format two addresses for nothing.
    if (client_ != peer_ && spdlog::should_log(spdlog::level::debug))
        spdlog::debug("[{}] websocket client {} via proxy {}", session->id(), client_.to_string(), peer_.to_string());
    session->start(std::move(request));
}

template <class Stream>
void HttpSession<Stream>::respond(ApiResponse response) {
    if (response.wasPublish) loop_.metrics().publishLatency.observe(std::chrono::steady_clock::now() - received_);
    response_ = {};
    response_.version(version_);
    response_.result(response.status);
    response_.set(http::field::server, "wspush");
    response_.set(http::field::content_type, response.contentType);
    response_.set("X-Content-Type-Options", "nosniff");
    if (!response.allow.empty()) response_.set(http::field::allow, response.allow);
    if (!response.location.empty()) response_.set(http::field::location, response.location);
    if (!response.cacheControl.empty()) response_.set(http::field::cache_control, response.cacheControl);
    if (response.status == 401) response_.set(http::field::www_authenticate, "Bearer");
    if (response.replayed) response_.set("Idempotency-Replayed", "true");
    for (const auto& [name, value] : response.headers) response_.set(name, value);
    response_.body() = std::move(response.body);
    bool keepAlive = keepAlive_ && !draining_;
    response_.keep_alive(keepAlive);
    response_.prepare_payload();
    if (headRequest_) response_.body().clear();  // HEAD: the GET's headers, Content-Length included, no body
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(30));
    http::async_write(stream_, response_,
                      beast::bind_front_handler(&HttpSession<Stream>::onWrite, this->shared_from_this(), keepAlive));
}

template <class Stream>
void HttpSession<Stream>::onWrite(bool keepAlive, beast::error_code ec, std::size_t) {
    busy_ = false;
    if (ec) {
        spdlog::debug("http write failed: {}", ec.message());
        return close();
    }
    if (!keepAlive || draining_) return closeAfterResponse();
    doRead();
}

template <class Stream>
void HttpSession<Stream>::drain() {
    draining_ = true;
    if (!busy_) close();  // idle between requests: nothing to finish
}

template <class Stream>
void HttpSession<Stream>::close() {
    beast::error_code ignored;
    tcpSocketOf(stream_).shutdown(net::ip::tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(stream_).close();
}

template <class Stream>
void HttpSession<Stream>::closeAfterResponse() {
    if constexpr (kTls) {
        beast::get_lowest_layer(stream_).expires_after(kTlsShutdownTimeout);
        stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) { self->close(); });
    } else {
        close();
    }
}

template class HttpSession<PlainStream>;
template class HttpSession<TlsStream>;

}  // namespace wspush
