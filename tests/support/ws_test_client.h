// A blocking WebSocket client for integration tests, built on Beast with a private io_context.
//
// Every wait is bounded. The client reads only while one of its blocking calls runs the
// io_context (a read is always outstanding once connected), so a client on which no call is made
// does not read at all — which is how the tests model a stalled consumer. Beast answers the
// server's ping frames only while it reads, too.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <nlohmann/json.hpp>

namespace wspush::testing {

using namespace std::chrono_literals;
using Millis = std::chrono::milliseconds;

// Close code reported when the connection ended without a close frame (RFC 6455's 1006).
inline constexpr int kAbnormalClosure = 1006;

// wss://: the server's certificate is verified, as a browser would.
struct WsTlsOptions {
    std::string trustedCertificatePem;     // the certificate (or its CA) the server must present
    std::string serverName = "localhost";  // sent as SNI; the certificate must name it
    int maxVersion = 0;                    // OpenSSL's TLS1_2_VERSION etc.: offer nothing newer; 0: no cap
};

struct WsConnectOptions {
    std::string path = "/ws";
    bool offerDeflate = false;                   // offer permessage-deflate in the handshake
    int receiveBufferSize = 0;                   // SO_RCVBUF set before connecting; 0 keeps the kernel's default
    Millis timeout = 5000ms;                     // TCP connect + WebSocket handshake
    std::map<std::string, std::string> headers;  // added to the upgrade request, e.g. Origin
    // Connect from this local address ("127.0.0.2": another loopback address, as another host
    // would); empty: the kernel's choice.
    std::string localAddress;
    std::optional<WsTlsOptions> tls;  // set: TLS under the WebSocket
};

struct WsFrame {
    std::string payload;
    bool binary = false;
};

// How a connection ended, as seen by reading it until the end.
struct WsEnding {
    int closeCode = 0;                     // the close frame's code, or kAbnormalClosure
    std::string closeReason;               // the close frame's reason text
    std::vector<nlohmann::json> messages;  // messages received before the close
};

class WsTestClient {
public:
    WsTestClient();
    ~WsTestClient();
    WsTestClient(const WsTestClient&) = delete;
    WsTestClient& operator=(const WsTestClient&) = delete;

    // TCP connect and WebSocket handshake to 127.0.0.1:port. False (with the reason in
    // lastError()) if either fails or times out.
    bool connect(unsigned short port, const WsConnectOptions& options = {});
    // connect() plus the protocol's `connect` command; returns the `connected` reply, or nullopt.
    std::optional<nlohmann::json> connectProtocol(unsigned short port, const std::string& user = "",
                                                  const WsConnectOptions& options = {});
    // connect() plus a `connect` command with `fields` (e.g. "session" and "resume"); returns the
    // reply to it whatever its type (`connected` or `error`), or nullopt.
    std::optional<nlohmann::json> connectWith(unsigned short port, nlohmann::json fields,
                                              const WsConnectOptions& options = {});

    bool isOpen() const;
    // Whether the server accepted permessage-deflate (its 101 response's Sec-WebSocket-Extensions).
    bool deflateNegotiated() const;
    std::string handshakeExtensions() const { return extensions_; }
    // The status and body of the last upgrade's HTTP response (101 and "" when it succeeded; 0
    // when none arrived), e.g. a refusal's 429 and JSON error body.
    unsigned handshakeStatus() const { return handshakeStatus_; }
    std::string handshakeBody() const { return handshakeBody_; }
    std::string lastError() const { return lastError_; }

    bool sendText(const std::string& text, Millis timeout = 2000ms);
    bool sendBinary(const std::string& bytes, Millis timeout = 2000ms);
    bool sendJson(const nlohmann::json& message, Millis timeout = 2000ms) { return sendText(message.dump(), timeout); }
    // Writes `bytes` as they are to the TCP socket, below Beast (hand-made frames).
    bool sendRaw(const std::string& bytes, Millis timeout = 2000ms);

    // The next protocol message; frames are split on '\n'. Nullopt on timeout or when closed.
    std::optional<nlohmann::json> nextMessage(Millis timeout = 2000ms);
    // The first queued or arriving message that satisfies `match`; messages before it stay
    // queued for nextMessage(). Nullopt on timeout or when closed.
    std::optional<nlohmann::json> waitFor(const std::function<bool(const nlohmann::json&)>& match,
                                          Millis timeout = 2000ms);
    // Sends `command` (with a fresh "id" unless it has one) and waits for the reply with that id.
    std::optional<nlohmann::json> request(nlohmann::json command, Millis timeout = 2000ms);
    // The payloads of the pong frames read so far, in order (answers to pings sent with sendRaw).
    const std::vector<std::string>& pongs() const { return pongs_; }
    // The next raw frame, unsplit (echo mode). Do not mix with nextMessage() on one connection.
    std::optional<WsFrame> nextFrame(Millis timeout = 2000ms);

    // Subscribes and returns the reply (`subscribed` or `error`).
    std::optional<nlohmann::json> subscribe(const std::string& channel, Millis timeout = 2000ms);

    // Reads until the connection ends; nullopt if it is still open after `timeout`.
    std::optional<WsEnding> waitClose(Millis timeout = 3000ms);
    // Reads (answering pings) for `duration`; messages received are queued. False if it closed.
    bool pumpFor(Millis duration);

    // Starts a normal closure (1000) and waits for it to finish.
    void close(Millis timeout = 1000ms);
    // Starts a closure with `code` (not 1000: e.g. 1001 "going away") and waits for it to finish.
    void closeWith(int code, Millis timeout = 1000ms);
    // Ends the connection abruptly, without a close frame: the socket is closed with an RST
    // (`reset`, SO_LINGER 0) or a FIN. Messages not yet read are discarded.
    void drop(bool reset = true);

private:
    using Clock = std::chrono::steady_clock;
    using PlainStream = boost::beast::websocket::stream<boost::beast::tcp_stream>;
    using TlsStream = boost::beast::websocket::stream<boost::beast::ssl_stream<boost::beast::tcp_stream>>;

    // Calls `use(stream)` with the stream of either kind; not before the first connect().
    template <class Use>
    void withStream(Use&& use);
    bool hasStream() const { return ws_.index() != 0; }
    boost::asio::ip::tcp::socket& socket();
    // After the TCP connect: the TLS handshake (TlsStream) and the WebSocket handshake.
    template <class Stream>
    bool handshake(Stream& ws, unsigned short port, const WsConnectOptions& options, Clock::time_point deadline);

    // Runs the io_context until `done()` or the deadline; returns done().
    bool runUntil(const std::function<bool()>& done, Clock::time_point deadline);
    void startRead();
    void onRead(boost::beast::error_code ec, std::size_t bytes);
    bool write(const std::string& payload, bool binary, Millis timeout);
    // Moves frames into the message queue, splitting each on '\n'.
    void splitFrames();
    void abort();              // closes the socket: every pending operation completes with an error
    void discardConnection();  // abort() and run the failing handlers to completion

    boost::asio::io_context ioc_;
    std::optional<boost::asio::ssl::context> tls_;  // before ws_: a TLS stream uses it until it goes
    std::variant<std::monostate, PlainStream, TlsStream> ws_;
    boost::beast::flat_buffer readBuffer_;
    bool reading_ = false;
    bool ended_ = false;  // the read loop stopped: closed or failed
    int closeCode_ = 0;
    std::string closeReason_;
    std::deque<WsFrame> frames_;
    std::vector<std::string> pongs_;
    std::deque<nlohmann::json> messages_;
    std::string extensions_;
    unsigned handshakeStatus_ = 0;
    std::string handshakeBody_;
    std::string lastError_;
    std::uint64_t nextId_ = 1;
};

}  // namespace wspush::testing
