// One HTTP/1.1 connection: serves API requests (keep-alive, pipelined in order) until it
// upgrades to a WebSocketSession or ends. Over TLS (tls.cert), it begins with the TLS handshake.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "api/http_api.h"
#include "node/event_loop.h"
#include "node/node.h"
#include "transport/http_response_bytes.h"
#include "transport/origin_policy.h"
#include "transport/response_sequence.h"
#include "transport/streams.h"
#include "transport/websocket_session.h"

namespace wspush {

// `Stream`: PlainStream or TlsStream (streams.h).
template <class Stream>
class HttpSession final : public std::enable_shared_from_this<HttpSession<Stream>>, public Connection {
public:
    // `origins` outlives the session (the Server's). A TlsStream has not made its handshake yet.
    HttpSession(Node& node, HttpApi& api, const OriginPolicy& origins, EventLoop& loop, Stream stream,
                ListenerRoutes routes, SessionMode websocketMode);
    ~HttpSession() override;

    void start();
    void drain() override;
    void disconnect(const DisconnectTarget&) override {}  // not a client connection
    bool isWebSocket() const override { return false; }

private:
    static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;
    using Request = boost::beast::http::request<boost::beast::http::string_body>;

    void onHandshake(boost::beast::error_code ec);
    void doRead();
    void onRead(boost::beast::error_code ec, std::size_t bytes);
    // Serves the complete requests already in the buffer (pipelined behind the one just read),
    // so that their responses leave together: each once the one before it is answered, as if
    // read one at a time (a disconnect pipelined behind a publish that waits for acks still
    // comes after it), up to kMaxPipelined unwritten. Anything else there (a partial request,
    // an upgrade, one a limit refuses) waits for doRead, once every response before it is written.
    void takeBufferedRequests();
    std::optional<Request> bufferedRequest();
    void serve(Request request);
    // A request a limit refuses (431, 414; an upgrade's 403, 503, 429): answered, then closed.
    void refuse(ApiErrorCode code, std::string_view message, Counter& refusals);
    void upgrade(WebSocketRequest request);
    // Answers the next request read (no other outstanding: the read path's errors and refusals).
    void respond(ApiResponse response);
    void respond(ResponseSequence::Ticket ticket, const ResponseFraming& framing,
                 std::chrono::steady_clock::time_point received, ApiResponse response);
    // Writes every response ready in request order, in one write, unless a write is under way.
    void flush();
    void onWrite(bool closesConnection, boost::beast::error_code ec, std::size_t bytes);
    // Ends the connection at once; with a read pending, the only way (drain, errors).
    void close();
    // After the last response, with nothing pending: over TLS, says close_notify first, so the
    // client can tell the end from a truncation.
    void closeAfterResponse();

    Node& node_;
    HttpApi& api_;
    const OriginPolicy& origins_;
    EventLoop& loop_;
    ListenerRoutes routes_;
    SessionMode websocketMode_;
    Stream stream_;
    boost::beast::flat_buffer buffer_;
    std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
    ResponseSequence responses_;
    std::string writing_;  // the responses of the write under way
    bool writeInProgress_ = false;
    bool taking_ = false;           // in takeBufferedRequests: flush once all are taken, not per response
    bool awaitingAnswer_ = false;   // the last request served has no response yet
    bool lastRequestRead_ = false;  // it asked to close, or a limit refused it: read nothing after it
    ResponseFraming framing_;       // of the request being served
    bool draining_ = false;
    bool firstRequest_ = true;
    std::chrono::steady_clock::time_point received_;
    boost::asio::ip::address peer_;  // the TCP peer
    // The current request's client, for the per-address limits, the API's loopback rule and logs:
    // the peer, or the address a trusted proxy forwarded (proxy.trusted, client_address.h).
    boost::asio::ip::address client_;
};

extern template class HttpSession<PlainStream>;
extern template class HttpSession<TlsStream>;

}  // namespace wspush
