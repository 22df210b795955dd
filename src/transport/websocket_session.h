// One WebSocket connection: handshake, reads, the bounded write queue, heartbeats and closing.
// Lives on one event loop; every handler runs on that loop's thread. The text messages it reads
// go to its ClientProtocol (protocol v1), which attaches the connection to a ClientSession once
// the client has sent `connect`; the session outlives it (subscriptions, QoS state).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "base/batched_sends.h"
#include "node/event_loop.h"
#include "node/node.h"
#include "protocol/frame_header.h"
#include "session/client_protocol.h"
#include "transport/streams.h"
#include "transport/write_queue.h"
#include "wspush/codes.h"

namespace wspush {

enum class SessionMode {
    Protocol,  // protocol v1 (docs/protocol.md)
    Echo,      // conformance mode: every data message is sent back unchanged
};

using WebSocketRequest = boost::beast::http::request<boost::beast::http::string_body>;

// `HttpStream`: the connection's stream before the upgrade, PlainStream or TlsStream (streams.h).
template <class HttpStream>
class WebSocketSession final : public std::enable_shared_from_this<WebSocketSession<HttpStream>>,
                               public ClientConnection,
                               public Connection,
                               public DeferredWriter,
                               public BatchedSends::Sender {
public:
    using Transport = typename UpgradedStream<HttpStream>::type;
    // Plain connections write their messages straight to the socket where they can (streams.h).
    static constexpr bool kDirectWrites = std::is_same_v<Transport, DirectWriteSocket>;

    // `admission`: the connection's place under the node's and its address's limits, held until
    // it ends.
    WebSocketSession(Node& node, EventLoop& loop, Transport transport, SessionMode mode,
                     ConnectionGate::Ticket admission);
    ~WebSocketSession() override;

    // Completes the upgrade that `request` asked for, then serves the connection.
    void start(WebSocketRequest request);

    bool sendFrame(OutboundFrame frame) override;
    void closeFor(const Disconnect& reason) override;
    bool hasRoom() const override;
    void whenWritable(std::function<void()> callback) override;
    void sendReply(std::string message) override;
    void connectAccepted() override;
    EventLoop& loop() override { return loop_; }
    const std::string& id() const override { return id_; }
    // Read from the socket when a log line needs it: idle connections need not keep it.
    std::string peer() const override;
    std::shared_ptr<void> keepAlive() override { return this->shared_from_this(); }
    void drain() override;
    bool isWebSocket() const override { return true; }
    void disconnect(const DisconnectTarget& target) override;
    void flushDeferred() override;
    void sent(std::int64_t result) override;  // BatchedSends: a direct write's attempt made in a batch

private:
    using TimePoint = std::chrono::steady_clock::time_point;
    enum class State { Handshaking, Open, Closing, Closed };

    void onAccept(boost::beast::error_code ec);
    void doRead();
    void onRead(boost::beast::error_code ec, std::size_t bytes);
    bool send(OutboundFrame frame);
    void doWrite();
    void onWrite(boost::beast::error_code ec, std::size_t bytes);
    // The direct path (kDirectWrites): whether the next batch may skip Beast, and writing it.
    bool canWriteDirectly();
    void writeDirectly();
    // With the shared compression: replaces the batch's buffers by its compressed form, when it
    // is worth compressing, and returns that form's size.
    std::optional<std::size_t> compressBatch();
    void onDirectWrite(boost::beast::error_code ec);
    bool directWriteDone(DirectWriteSocket::Outcome outcome, boost::beast::error_code ec);
    auto directWriteHandler() {
        return boost::beast::bind_front_handler(&WebSocketSession::onDirectWrite, this->shared_from_this());
    }
    boost::asio::const_buffer wireBuffer() const { return {wireFrame_->data(), wireFrame_->size()}; }
    // After a batch was written: what follows from it (counts, a waiting sender), then the next.
    void wrote(std::size_t bytes);
    void writeMore();

    // Starts an orderly close: optionally a `disconnect` message, then the close frame, with a
    // hard deadline after which the socket is simply shut. Idempotent.
    void closeWith(const Disconnect& reason, bool announce);
    void doClose();
    void onClose(boost::beast::error_code ec);
    // The connection is over: detach from the session and let the socket go. Idempotent.
    void finish();
    void noteReadFailure(boost::beast::error_code ec);  // who ended it, when a read fails

    void armTimer();
    void onTimer(boost::beast::error_code ec);
    void sendPing();

    Node& node_;
    EventLoop& loop_;
    // The write path's state comes first, together: at one write per delivery every cache line
    // of it is a miss per connection per publication.
    State state_ = State::Handshaking;
    bool writingDirect_ = false;  // writeDirectly's loop runs: send() only queues
    bool flushDeferred_ = false;  // queued with the loop to write after its turn of deliveries
    bool beastDeflates_ = false;  // Beast's permessage-deflate was negotiated: Beast writes every message
    bool closeReceived_ = false;  // the client's close frame arrived: Beast answers it, we write no more
    bool closeStarted_ = false;   // async_close issued
    // The shared compression's window bits (deflate_offer.h), 0 when it was not negotiated.
    std::uint8_t deflateWindowBits_ = 0;
    Batch batch_;
    WriteBuffers writeBuffers_;
    FrameHeader frameHeader_{};  // of the batch being written directly
    // Given back when the connection is over (finish), at the latest after the socket closed.
    ConnectionGate::Ticket admission_;
    // Timeouts are ours (armTimer) and Beast's own timer guards the handshake and close.
    boost::beast::websocket::stream<Transport> ws_;
    WriteQueue queue_;
    SharedFrame compressedBatch_;  // the batch being written directly, compressed
    SharedFrame compressedTail_;   // its session's own bytes after a shared compressed payload
    SharedFrame wireFrame_;        // the batch being written directly, framed for every connection (WireFrameCache)

    SessionMode mode_;
    std::string id_;
    ClientProtocol protocol_;  // what the text messages mean (unused in echo mode)
    boost::beast::flat_buffer readBuffer_;
    bool announceWindowBits_ = false;
    Disconnect closeReason_{1000, "", false};
    std::function<void()> writable_;  // SessionConnection::whenWritable
    bool pingInFlight_ = false;
    bool counted_ = false;  // included in the loop's connection gauge
    // Who ended the connection, for wspush_disconnects_total, when it was not us (closeWith).
    DisconnectCounts::By endedBy_ = DisconnectCounts::By::Network;
    std::uint16_t endCode_ = 0;

    // One timer per connection, armed to the earliest deadline below. Receiving data only moves
    // lastHeard_; the timer notices when it fires, so the hot path never touches the timer.
    boost::asio::steady_timer timer_;
    TimePoint armedFor_ = TimePoint::max();
    TimePoint lastHeard_;
    TimePoint nextPing_;
    TimePoint connectDeadline_;
    TimePoint hardCloseDeadline_ = TimePoint::max();
};

extern template class WebSocketSession<PlainStream>;
extern template class WebSocketSession<TlsStream>;

}  // namespace wspush
