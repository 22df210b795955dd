// One WebSocket connection: handshake, reads, the bounded write queue, heartbeats, and the
// protocol v1 commands. Lives on one event loop; every handler runs on that loop's thread.
// Once the client has sent `connect`, the connection is attached to a ClientSession, which
// outlives it (subscriptions, QoS state).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "node/event_loop.h"
#include "node/node.h"
#include "protocol/client_command.h"
#include "session/client_session.h"
#include "transport/write_queue.h"
#include "wspush/codes.h"

namespace wspush {

enum class SessionMode {
    Protocol,  // protocol v1 (docs/protocol.md)
    Echo,      // conformance mode: every data message is sent back unchanged
};

class WebSocketSession final : public std::enable_shared_from_this<WebSocketSession>,
                               public SessionConnection,
                               public Connection,
                               public DeferredWriter {
public:
    using Request = boost::beast::http::request<boost::beast::http::string_body>;

    WebSocketSession(Node& node, EventLoop& loop, boost::asio::ip::tcp::socket socket, SessionMode mode);
    ~WebSocketSession() override;

    // Completes the upgrade that `request` asked for, then serves the connection.
    void start(Request request);

    bool sendFrame(OutboundFrame frame) override;
    void closeFor(const Disconnect& reason) override;
    void drain() override;
    void flushDeferred() override;

private:
    using Clock = std::chrono::steady_clock;
    // Resuming: `connect` named a session living on another loop, which is moving here.
    enum class State { Handshaking, Open, Resuming, Connected, Closing, Closed };

    void onAccept(boost::beast::error_code ec);
    void doRead();
    void onRead(boost::beast::error_code ec, std::size_t bytes);
    void handleFrame(std::string_view frame);
    bool handleCommand(ClientCommand& command);  // false: stop reading this frame's other pieces
    bool handleConnect(const ClientCommand& command);
    void startNewSession(std::string user);
    void tryResume(std::string id, std::string token, std::string user, Clock::time_point giveUpAt);
    void resumeHere(std::shared_ptr<ClientSession> session);
    void resumeFrom(std::shared_ptr<ClientSession> session, unsigned loop);
    void sessionReady(std::shared_ptr<ClientSession> session, bool resumed);
    void handleSubscribe(const ClientCommand& command);
    void handleUnsubscribe(const ClientCommand& command);
    void handlePublish(const ClientCommand& command);
    void handleHistory(const ClientCommand& command);
    void handleQosAnswer(const ClientCommand& command);
    // `dedupKey` non-empty: remember the outcome under it in Node::clientPublishes().
    void publishAndReply(PublishRequest request, std::optional<std::uint64_t> id, std::string dedupKey);
    void replyRemembered(std::optional<std::uint64_t> id, int qos, const IdempotencyCache::Response& first);
    void replyError(std::optional<std::uint64_t> id, ErrorCode code, std::string_view message);

    bool send(OutboundFrame frame);
    void reply(std::string message);
    void doWrite();
    void onWrite(boost::beast::error_code ec, std::size_t bytes);

    // Starts an orderly close: optionally a `disconnect` message, then the close frame, with a
    // hard deadline after which the socket is simply shut. Idempotent.
    void closeWith(const Disconnect& reason, bool announce);
    void doClose();
    void onClose(boost::beast::error_code ec);
    // The connection is over: detach from the session and let the socket go. Idempotent.
    void finish();
    void detachSession(bool endSession);

    void armTimer();
    void onTimer(boost::beast::error_code ec);
    void sendPing();

    Node& node_;
    EventLoop& loop_;
    SessionMode mode_;
    std::string id_;
    State state_ = State::Handshaking;
    std::shared_ptr<ClientSession> session_;
    std::optional<std::uint64_t> connectId_;  // the id of the `connect` being answered
    // Over the bare socket: timeouts are ours (armTimer) and Beast's own timer guards the
    // handshake and close, so beast::tcp_stream's timers and its per-operation layer would only
    // add memory to every idle connection.
    boost::beast::websocket::stream<boost::asio::ip::tcp::socket> ws_;
    boost::beast::flat_buffer readBuffer_;
    WriteQueue queue_;
    std::vector<boost::asio::const_buffer> writeBuffers_;
    Batch batch_;
    Disconnect closeReason_{1000, "", false};
    bool closeStarted_ = false;   // async_close issued
    bool flushDeferred_ = false;  // queued with the loop to write after its turn of deliveries
    bool pingInFlight_ = false;
    bool counted_ = false;  // included in the loop's connection gauge

    // One timer per connection, armed to the earliest deadline below. Receiving data only moves
    // lastHeard_; the timer notices when it fires, so the hot path never touches the timer.
    boost::asio::steady_timer timer_;
    Clock::time_point armedFor_ = Clock::time_point::max();
    Clock::time_point lastHeard_;
    Clock::time_point nextPing_;
    Clock::time_point connectDeadline_;
    Clock::time_point hardCloseDeadline_ = Clock::time_point::max();
};

}  // namespace wspush
