// One WebSocket connection: handshake, reads, the bounded write queue, heartbeats, and the
// protocol v1 commands. Lives on one event loop; every handler runs on that loop's thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "node/event_loop.h"
#include "node/local_hub.h"
#include "node/node.h"
#include "protocol/client_command.h"
#include "transport/write_queue.h"
#include "wspush/codes.h"

namespace wspush {

enum class SessionMode {
    Protocol,  // protocol v1 (docs/protocol.md)
    Echo,      // conformance mode: every data message is sent back unchanged
};

class WebSocketSession final : public std::enable_shared_from_this<WebSocketSession>,
                               public Subscriber,
                               public Connection {
public:
    using Request = boost::beast::http::request<boost::beast::http::string_body>;

    WebSocketSession(Node& node, EventLoop& loop, boost::asio::ip::tcp::socket socket, SessionMode mode);
    ~WebSocketSession() override;

    // Completes the upgrade that `request` asked for, then serves the connection.
    void start(Request request);

    void deliver(const SharedFrame& frame) override;
    void drain() override;

private:
    using Clock = std::chrono::steady_clock;
    enum class State { Handshaking, Open, Connected, Closing, Closed };

    void onAccept(boost::beast::error_code ec);
    void doRead();
    void onRead(boost::beast::error_code ec, std::size_t bytes);
    void handleFrame(std::string_view frame);
    bool handleCommand(ClientCommand& command);  // false: stop reading this frame's other pieces
    bool handleConnect(const ClientCommand& command);
    void handleSubscribe(const ClientCommand& command);
    void handleUnsubscribe(const ClientCommand& command);
    void handlePublish(const ClientCommand& command);
    void replyError(std::optional<std::uint64_t> id, ErrorCode code, std::string_view message);

    void send(OutboundFrame frame);
    void reply(std::string message);
    void doWrite();
    void onWrite(boost::beast::error_code ec, std::size_t bytes);

    // Starts an orderly close: optionally a `disconnect` message, then the close frame, with a
    // hard deadline after which the socket is simply shut. Idempotent.
    void closeWith(const Disconnect& reason, bool announce);
    void doClose();
    void onClose(boost::beast::error_code ec);
    // The connection is over: leave every channel and let the socket go. Idempotent.
    void finish();

    void leaveChannel(const std::string& channel);
    void leaveAllChannels();

    void armTimer();
    void onTimer(boost::beast::error_code ec);
    void sendPing();

    Node& node_;
    EventLoop& loop_;
    SessionMode mode_;
    std::string id_;
    std::string user_;
    State state_ = State::Handshaking;
    boost::beast::websocket::stream<boost::beast::tcp_stream> ws_;
    boost::beast::flat_buffer readBuffer_;
    WriteQueue queue_;
    std::vector<boost::asio::const_buffer> writeBuffers_;
    Batch batch_;
    std::vector<std::string> channels_;
    Disconnect closeReason_{1000, "", false};
    bool closeStarted_ = false;   // async_close issued
    bool pingInFlight_ = false;
    bool counted_ = false;        // included in the loop's connection gauge

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
