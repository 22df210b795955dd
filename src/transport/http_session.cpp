#include "transport/http_session.h"

#include <spdlog/spdlog.h>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>
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
// Requests read and not answered yet on one connection: what a client that pipelines without
// reading its responses can make the server hold.
constexpr std::size_t kMaxPipelined = 64;
// Room for a response's status line and headers, so that its body is appended without a regrowth.
constexpr std::size_t kResponseHeadReserve = 256;

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
        // The rest of the body is still on the wire: answer, then close.
        framing_.keepAlive = false;
        framing_.head = false;
        lastRequestRead_ = true;
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
    taking_ = true;
    serve(parser_->release());
    takeBufferedRequests();
    taking_ = false;
    flush();
}

template <class Stream>
void HttpSession<Stream>::takeBufferedRequests() {
    while (!awaitingAnswer_ && !lastRequestRead_ && !draining_ && responses_.outstanding() < kMaxPipelined) {
        auto request = bufferedRequest();
        if (!request) return;
        serve(std::move(*request));
    }
}

template <class Stream>
std::optional<typename HttpSession<Stream>::Request> HttpSession<Stream>::bufferedRequest() {
    if (buffer_.size() == 0) return std::nullopt;
    http::request_parser<http::string_body> parser;
    parser.eager(true);
    parser.body_limit(node_.config().api.max_body_size);
    parser.header_limit(static_cast<std::uint32_t>(node_.config().limits.max_header_bytes));
    net::const_buffer data = buffer_.cdata();
    std::size_t used = 0;
    beast::error_code ec;
    while (!parser.is_done()) {
        std::size_t parsed = parser.put(data + used, ec);
        used += parsed;
        if (ec || parsed == 0) break;
    }
    // The bytes stay in the buffer for doRead, which answers what is wrong with them as usual.
    if (ec || !parser.is_done() || beast::websocket::is_upgrade(parser.get()) ||
        parser.get().target().size() > node_.config().limits.max_url_bytes)
        return std::nullopt;
    buffer_.consume(used);
    return parser.release();
}

template <class Stream>
void HttpSession<Stream>::serve(Request request) {
    firstRequest_ = false;
    received_ = std::chrono::steady_clock::now();
    loop_.metrics().httpRequests.add();
    client_ = clientAddressOf(peer_, request, node_.config().proxy.trusted);
    framing_.version = request.version();
    framing_.head = request.method() == http::verb::head;
    // A connection the API listener accepted during the drain (it stays open for probes and
    // backends) must not hold the drain up by staying alive.
    framing_.keepAlive = request.keep_alive() && !draining_ && !api_.draining();
    if (!framing_.keepAlive) lastRequestRead_ = true;

    std::string_view target = request.target();
    std::string_view path = target.substr(0, target.find('?'));
    if (beast::websocket::is_upgrade(request)) {
        lastRequestRead_ = true;
        if (routes_.websocket && path == node_.config().websocket.path && !draining_)
            return upgrade(std::move(request));
        framing_.keepAlive = false;
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
    auto ticket = responses_.open();
    awaitingAnswer_ = true;
    api_.handle(
        apiRequest, routes_,
        [self = this->shared_from_this(), ticket, framing = framing_, received = received_](ApiResponse response) {
            net::dispatch(self->stream_.get_executor(),
                          [self, ticket, framing, received, response = std::move(response)]() mutable {
                              self->respond(ticket, framing, received, std::move(response));
                          });
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
    // The rest of the request may still be on the wire: answer, then close.
    framing_.keepAlive = false;
    framing_.head = false;
    lastRequestRead_ = true;
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
    respond(responses_.open(), framing_, received_, std::move(response));
}

template <class Stream>
void HttpSession<Stream>::respond(ResponseSequence::Ticket ticket, const ResponseFraming& framing,
                                  std::chrono::steady_clock::time_point received, ApiResponse response) {
    if (response.wasPublish) loop_.metrics().publishLatency.observe(std::chrono::steady_clock::now() - received);
    ResponseFraming sent = framing;
    sent.keepAlive = framing.keepAlive && !draining_;
    std::string bytes;
    bytes.reserve(kResponseHeadReserve + response.body.size());
    appendResponseBytes(bytes, response, sent);
    responses_.answer(ticket, std::move(bytes), !sent.keepAlive);
    awaitingAnswer_ = false;
    if (!taking_) {  // answered later than handle() returned: the requests behind it come now
        taking_ = true;
        takeBufferedRequests();
        taking_ = false;
    }
    flush();
}

template <class Stream>
void HttpSession<Stream>::flush() {
    if (taking_ || writeInProgress_) return;
    auto taken = responses_.takeReady(writing_);
    if (taken.responses == 0) return;
    writeInProgress_ = true;
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(30));
    net::async_write(
        stream_, net::buffer(writing_),
        beast::bind_front_handler(&HttpSession<Stream>::onWrite, this->shared_from_this(), taken.closesConnection));
}

template <class Stream>
void HttpSession<Stream>::onWrite(bool closesConnection, beast::error_code ec, std::size_t) {
    writeInProgress_ = false;
    writing_.clear();
    if (ec) {
        spdlog::debug("http write failed: {}", ec.message());
        return close();
    }
    if (closesConnection) return closeAfterResponse();
    if (draining_ && responses_.outstanding() == 0) return closeAfterResponse();
    taking_ = true;
    takeBufferedRequests();
    taking_ = false;
    if (responses_.outstanding() == 0) return doRead();
    flush();
}

template <class Stream>
void HttpSession<Stream>::drain() {
    draining_ = true;
    if (responses_.outstanding() == 0 && !writeInProgress_) close();  // idle between requests: nothing to finish
}

template <class Stream>
void HttpSession<Stream>::close() {
    lastRequestRead_ = true;
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
