#include "transport/websocket_session.h"

#include <algorithm>
#include <array>
#include <span>
#include <type_traits>

#include <spdlog/spdlog.h>
#include <boost/beast/websocket/error.hpp>

#include "base/durations.h"
#include "base/random.h"
#include "protocol/server_message.h"
#include "transport/client_address.h"
#include "transport/deflate_offer.h"

namespace wspush {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;

namespace {

// How long an orderly close may take before the socket is shut without ceremony.
constexpr std::chrono::seconds kCloseTimeout{5};
// Commands, acks and pings fit; an idle connection holds this much read buffer.
constexpr std::size_t kFirstReadLimit = 128;

// Errors that end a connection in the ordinary way and deserve no log line above debug.
bool isOrdinaryEnd(const beast::error_code& ec) {
    return ec == websocket::error::closed || ec == net::error::operation_aborted || ec == net::error::eof ||
           ec == net::error::connection_reset || ec == net::error::broken_pipe || ec == beast::error::timeout;
}

}  // namespace

template <class HttpStream>
WebSocketSession<HttpStream>::WebSocketSession(Node& node, EventLoop& loop, Transport transport, SessionMode mode,
                                               ConnectionGate::Ticket admission)
    : node_(node),
      loop_(loop),
      admission_(std::move(admission)),
      ws_(std::move(transport)),
      queue_(node.config().websocket.write_queue_max_bytes, node.config().websocket.write_queue_max_frames),
      mode_(mode),
      id_(randomHex(8)),
      protocol_(node, *this),
      timer_(loop.context()) {
    loop_.attach(this);
}

template <class HttpStream>
WebSocketSession<HttpStream>::~WebSocketSession() {
    loop_.detach(this);
    if (counted_) loop_.metrics().websocketConnections.sub();
}

template <class HttpStream>
void WebSocketSession<HttpStream>::start(WebSocketRequest request) {
    const auto& ws = node_.config().websocket;
    // Beast's own timer guards the handshake; heartbeats are ours (armTimer), so no idle timeout here.
    ws_.set_option(
        websocket::stream_base::timeout{toClock(ws.handshake_timeout), websocket::stream_base::none(), false});
    // The deadline HttpSession set on the TCP stream would cut the connection: Beast's takes over.
    if constexpr (std::is_same_v<HttpStream, TlsStream>) beast::get_lowest_layer(ws_).expires_never();
    if constexpr (kDirectWrites) {
        // The shared compression: ours, on the direct path. Beast's permessage-deflate stays off,
        // and the client's compressed messages reach it inflated (InboundDeflateFilter).
        if (ws.compression.enabled && !ws.compression.context_takeover) {
            auto offers = request[beast::http::field::sec_websocket_extensions];
            if (auto agreement =
                    agreeOnDeflate(std::string_view(offers.data(), offers.size()), ws.compression.window_bits)) {
                deflateWindowBits_ = static_cast<std::uint8_t>(agreement->windowBits);
                announceWindowBits_ = agreement->announceWindowBits;
                ws_.next_layer().filterReads(loop_.inflater(), ws.max_message_size);
            }
        }
    }
    ws_.set_option(websocket::stream_base::decorator([this](websocket::response_type& response) {
        response.set(beast::http::field::server, "wspush");
        if (deflateWindowBits_ != 0) {
            if (response.result() == beast::http::status::switching_protocols)
                response.set(beast::http::field::sec_websocket_extensions,
                             DeflateAgreement{deflateWindowBits_, announceWindowBits_}.response());
            return;
        }
        // Beast has added its answer to the client's extensions by now: the one place that shows
        // whether its permessage-deflate was agreed, which rules out writing frames without Beast.
        beastDeflates_ = response.count(beast::http::field::sec_websocket_extensions) > 0;
    }));
    if (ws.compression.enabled && deflateWindowBits_ == 0) {
        // Beast's permessage-deflate, a zlib state per connection: on TLS connections (Beast
        // writes all of their bytes), or where context takeover was chosen.
        websocket::permessage_deflate deflate;
        deflate.server_enable = true;
        deflate.server_max_window_bits = ws.compression.window_bits;
        deflate.client_max_window_bits = ws.compression.window_bits;
        deflate.server_no_context_takeover = !ws.compression.context_takeover;
        deflate.client_no_context_takeover = !ws.compression.context_takeover;
        deflate.compLevel = ws.compression.level;
        deflate.memLevel = ws.compression.mem_level;
        deflate.msg_size_threshold = ws.compression.threshold;
        ws_.set_option(deflate);
    }
    ws_.read_message_max(ws.max_message_size);
    ws_.auto_fragment(false);  // one message, one frame, one gathered write
    ws_.control_callback([this](websocket::frame_type kind, beast::string_view) {
        lastHeard_ = node_.clock().now();
        if (kind == websocket::frame_type::close) closeReceived_ = true;
    });

    ws_.async_accept(request,
                     beast::bind_front_handler(&WebSocketSession<HttpStream>::onAccept, this->shared_from_this()));
}

template <class HttpStream>
void WebSocketSession<HttpStream>::onAccept(beast::error_code ec) {
    if (ec) {
        spdlog::debug("[{}] websocket handshake failed: {}", id_, ec.message());
        return finish();
    }
    if (state_ != State::Handshaking) return finish();  // drained while handshaking
    state_ = State::Open;
    spdlog::debug("[{}] websocket from {}", id_, peer());
    counted_ = true;
    loop_.metrics().websocketConnections.add();
    loop_.metrics().websocketConnectionsTotal.add();

    const auto& ws = node_.config().websocket;
    auto now = node_.clock().now();
    lastHeard_ = now;
    nextPing_ = now + toClock(ws.ping_interval);
    connectDeadline_ = mode_ == SessionMode::Protocol ? now + toClock(ws.connect_timeout) : TimePoint::max();
    armTimer();
    doRead();
}

template <class HttpStream>
void WebSocketSession<HttpStream>::doRead() {
    // The buffer a pending read prepares is held for as long as the connection stays idle, so
    // the first piece of a message is read with a small limit; the rest of a longer message
    // then comes in one piece.
    std::size_t limit = readBuffer_.size() == 0 ? kFirstReadLimit : node_.config().websocket.max_message_size;
    ws_.async_read_some(readBuffer_, limit,
                        beast::bind_front_handler(&WebSocketSession<HttpStream>::onRead, this->shared_from_this()));
}

template <class HttpStream>
void WebSocketSession<HttpStream>::onRead(beast::error_code ec, std::size_t bytes) {
    if (ec) {
        // A client that closes with 1000 says goodbye: its session need not wait for it.
        if (ec == websocket::error::closed && ws_.reason().code == websocket::close_code::normal)
            protocol_.connectionClosed(true);
        noteReadFailure(ec);
        if (ec == websocket::error::message_too_big || ec == websocket::error::bad_frame_payload)
            spdlog::debug("[{}] closed by protocol rule: {}", id_, ec.message());  // Beast sent 1009 / 1007
        else if (!isOrdinaryEnd(ec))
            spdlog::debug("[{}] read failed: {}", id_, ec.message());
        return finish();
    }
    lastHeard_ = node_.clock().now();
    loop_.metrics().bytesIn.add(bytes);
    if (!ws_.is_message_done()) return doRead();

    if (state_ == State::Open) {
        auto data = readBuffer_.cdata();
        std::string_view payload(static_cast<const char*>(data.data()), data.size());
        if (mode_ == SessionMode::Echo) {
            loop_.metrics().messagesIn.add();
            send(OutboundFrame::echo(std::make_shared<const std::string>(payload), !ws_.got_text()));
        } else if (!ws_.got_text()) {
            closeWith(Disconnect{1003, "binary frames are not supported", false}, false);
        } else {
            protocol_.handleMessage(payload);
        }
    }
    readBuffer_.consume(readBuffer_.size());
    // A large message must not pin its buffer for the rest of an idle connection's life.
    if (readBuffer_.capacity() > 4096) readBuffer_.shrink_to_fit();
    if (state_ != State::Closed) doRead();
}

template <class HttpStream>
std::string WebSocketSession<HttpStream>::peer() const {
    return peerAddressOf(tcpSocketOf(beast::get_lowest_layer(ws_))).to_string();
}

template <class HttpStream>
bool WebSocketSession<HttpStream>::sendFrame(OutboundFrame frame) {
    // Only the session attached by the protocol sends frames, and only until the close detaches it.
    if (state_ != State::Open) return false;
    return send(std::move(frame));
}

template <class HttpStream>
void WebSocketSession<HttpStream>::closeFor(const Disconnect& reason) {
    closeWith(reason, true);
}

template <class HttpStream>
bool WebSocketSession<HttpStream>::hasRoom() const {
    const auto& ws = node_.config().websocket;
    // At least one, so that tiny bounds still let a sender make progress one write at a time.
    return queue_.bytes() < std::max<std::size_t>(ws.write_queue_max_bytes / 2, 1) &&
           queue_.frames() < std::max<std::size_t>(ws.write_queue_max_frames / 2, 1);
}

template <class HttpStream>
void WebSocketSession<HttpStream>::whenWritable(std::function<void()> callback) {
    if (state_ == State::Open) writable_ = std::move(callback);
}

template <class HttpStream>
void WebSocketSession<HttpStream>::sendReply(std::string message) {
    send(OutboundFrame::text(std::make_shared<const std::string>(std::move(message))));
}

template <class HttpStream>
void WebSocketSession<HttpStream>::connectAccepted() {
    connectDeadline_ = TimePoint::max();
}

template <class HttpStream>
bool WebSocketSession<HttpStream>::send(OutboundFrame frame) {
    if (state_ != State::Open) return false;
    if (!queue_.push(std::move(frame))) {
        loop_.metrics().slowConsumerCloses.add();
        spdlog::info("[{}] slow consumer: {} frames, {} bytes queued", id_, queue_.frames(), queue_.bytes());
        closeWith(disconnects::kSlowConsumer, true);
        return false;
    }
    // The write under way, the flush, or writeDirectly's loop takes it.
    if (queue_.writing() || flushDeferred_ || writingDirect_) return true;
    if (loop_.delivering()) {
        flushDeferred_ = true;
        loop_.flushAfterDeliveries(this->shared_from_this());
        return true;
    }
    doWrite();
    return true;
}

template <class HttpStream>
void WebSocketSession<HttpStream>::flushDeferred() {
    flushDeferred_ = false;
    if (state_ != State::Closed && !queue_.writing() && queue_.hasPending()) doWrite();
}

template <class HttpStream>
void WebSocketSession<HttpStream>::doWrite() {
    if constexpr (kDirectWrites) {
        if (writingDirect_) return;  // a close or a sender called from its loop: the loop writes it
        if (canWriteDirectly()) return writeDirectly();
    }
    batch_ = queue_.startBatch(writeBuffers_, &loop_.joinedFrames());
    ws_.text(!batch_.binary);
    ws_.async_write(std::span<const net::const_buffer>(writeBuffers_.data(), writeBuffers_.size()),
                    beast::bind_front_handler(&WebSocketSession<HttpStream>::onWrite, this->shared_from_this()));
}

template <class HttpStream>
void WebSocketSession<HttpStream>::onWrite(beast::error_code ec, std::size_t bytes) {
    queue_.finishBatch();
    if (ec) {
        if (!isOrdinaryEnd(ec)) spdlog::debug("[{}] write failed: {}", id_, ec.message());
        return finish();
    }
    wrote(bytes);
    writeMore();
}

template <class HttpStream>
bool WebSocketSession<HttpStream>::canWriteDirectly() {
    if constexpr (kDirectWrites) {
        // Beast compresses with deflate and must write those messages itself. After a close frame
        // either way nothing may follow it; Beast's write refuses, so it is left to decide.
        return !beastDeflates_ && !closeReceived_ && !closeStarted_ && state_ != State::Closed &&
               ws_.next_layer().idle();
    }
    return false;
}

// Writes what is queued straight to the socket, batch after batch while the socket takes all of
// it: a sender waiting for room (writable_) may queue more, which leaves in the same turn.
template <class HttpStream>
void WebSocketSession<HttpStream>::writeDirectly() {
    if constexpr (kDirectWrites) {
        writingDirect_ = true;
        bool next = true;
        while (next) {
            batch_ = queue_.startBatch(writeBuffers_, &loop_.joinedFrames());
            const SharedFrame* shared = queue_.inFlightFrame();
            auto compressedSize = compressBatch();
            bool compressed = compressedSize.has_value();
            // What others are given too is written as one buffer framed once for all of them.
            if (shared != nullptr)
                wireFrame_ =
                    loop_.wireFrames().frame(compressed ? compressedBatch_ : *shared, batch_.binary, compressed);
            beast::error_code ec;
            DirectWriteSocket::Outcome outcome;
            if (wireFrame_) {
                // In a turn of deliveries, with the other connections' writes: sent() goes on.
                if (BatchedSends* sends = loop_.batchedSends())
                    return ws_.next_layer().queueSend(*sends, wireBuffer(), this->shared_from_this());
                outcome = ws_.next_layer().writeDirect(wireBuffer(), wireFrame_->size(), ec, directWriteHandler());
            } else {
                std::size_t payloadSize = compressedSize.value_or(batch_.bytes);
                std::size_t headerSize = encodeFrameHeader(frameHeader_, payloadSize, batch_.binary, compressed);
                writeBuffers_.insert(writeBuffers_.begin(), net::const_buffer(frameHeader_.data(), headerSize));
                outcome = ws_.next_layer().writeDirect(std::span(writeBuffers_.data(), writeBuffers_.size()),
                                                       headerSize + payloadSize, ec, directWriteHandler());
            }
            next = directWriteDone(outcome, ec);
        }
        writingDirect_ = false;
        if (!queue_.writing()) writeMore();
    }
}

template <class HttpStream>
void WebSocketSession<HttpStream>::sent(std::int64_t result) {
    if constexpr (kDirectWrites) {
        beast::error_code ec;
        auto outcome = ws_.next_layer().completeSend(result, wireBuffer(), ec, directWriteHandler());
        if (directWriteDone(outcome, ec)) return writeDirectly();
        writingDirect_ = false;
        if (!queue_.writing()) writeMore();
    }
}

// After a direct write's attempt: whether the next batch may follow at once.
template <class HttpStream>
bool WebSocketSession<HttpStream>::directWriteDone(DirectWriteSocket::Outcome outcome, beast::error_code ec) {
    if (outcome == DirectWriteSocket::Outcome::Pending) return false;  // onDirectWrite continues
    if (outcome == DirectWriteSocket::Outcome::Failed) {
        // Ended from the loop, as a failed asynchronous write would be, not from inside the
        // delivery or command that queued this.
        net::post(ws_.get_executor(), beast::bind_front_handler(&WebSocketSession<HttpStream>::onDirectWrite,
                                                                this->shared_from_this(), ec));
        return false;
    }
    queue_.finishBatch();
    compressedBatch_.reset();
    compressedTail_.reset();
    wireFrame_.reset();
    wrote(batch_.bytes);
    return queue_.hasPending() && canWriteDirectly();
}

template <class HttpStream>
std::optional<std::size_t> WebSocketSession<HttpStream>::compressBatch() {
    const auto& compression = node_.config().websocket.compression;
    if (deflateWindowBits_ == 0 || batch_.bytes < compression.threshold) return std::nullopt;
    FrameCompressor& compressor = loop_.frameCompressor(compression);
    const OutboundFrame* lone = queue_.inFlightLone();
    if (const SharedFrame* shared = queue_.inFlightFrame()) {
        compressedBatch_ = compressor.compress(*shared, deflateWindowBits_);
    } else if (lone != nullptr && !lone->binary) {
        // A publication every subscriber has, plus this session's few bytes (a QoS message's
        // `did`): the publication compressed once, the bytes after it in a stored block.
        compressedBatch_ = compressor.compress(lone->payload, deflateWindowBits_);
        compressedTail_ = std::make_shared<const std::string>(storedDeflateBlock(lone->suffix.view()));
        writeBuffers_.assign({net::const_buffer(compressedBatch_->data(), compressedBatch_->size()),
                              net::const_buffer(compressedTail_->data(), compressedTail_->size())});
        return compressedBatch_->size() + compressedTail_->size();
    } else {
        std::array<std::string_view, 2> parts;  // startBatch gives one or two buffers
        std::size_t count = std::min(writeBuffers_.size(), parts.size());
        for (std::size_t i = 0; i < count; ++i)
            parts[i] = std::string_view(static_cast<const char*>(writeBuffers_[i].data()), writeBuffers_[i].size());
        compressedBatch_ =
            compressor.compress(std::span<const std::string_view>(parts.data(), count), deflateWindowBits_);
    }
    writeBuffers_.assign(1, net::const_buffer(compressedBatch_->data(), compressedBatch_->size()));
    return compressedBatch_->size();
}

template <class HttpStream>
void WebSocketSession<HttpStream>::onDirectWrite(beast::error_code ec) {
    compressedBatch_.reset();
    compressedTail_.reset();
    wireFrame_.reset();
    onWrite(ec, batch_.bytes);
}

template <class HttpStream>
void WebSocketSession<HttpStream>::wrote(std::size_t bytes) {
    loop_.metrics().writes.add();
    loop_.metrics().messagesOut.add(batch_.frames);
    loop_.metrics().bytesOut.add(bytes);
    if (writable_ && state_ == State::Open && hasRoom()) std::exchange(writable_, nullptr)();  // may send, and write
}

template <class HttpStream>
void WebSocketSession<HttpStream>::writeMore() {
    if (queue_.writing() || writingDirect_) return;  // its completion, or the loop, continues
    if (queue_.hasPending()) return doWrite();
    if (state_ == State::Closing) doClose();
}

template <class HttpStream>
void WebSocketSession<HttpStream>::closeWith(const Disconnect& reason, bool announce) {
    if (state_ == State::Closing || state_ == State::Closed) return;
    if (state_ == State::Handshaking) return finish();
    state_ = State::Closing;
    writable_ = nullptr;
    closeReason_ = reason;
    spdlog::debug("[{}] closing: {} {}", id_, reason.code, reason.reason);
    // The session keeps what this connection can no longer deliver, for the client's resume.
    protocol_.connectionClosed(false);

    if (reason.code == disconnects::kSlowConsumer.code) queue_.dropPending();  // it is not reading anyway
    if (announce)
        queue_.pushUnbounded(OutboundFrame::text(std::make_shared<const std::string>(encodeDisconnect(reason))));
    hardCloseDeadline_ = node_.clock().now() + kCloseTimeout;
    armTimer();
    if (queue_.writing()) return;  // onWrite continues
    if (queue_.hasPending()) return doWrite();
    doClose();
}

template <class HttpStream>
void WebSocketSession<HttpStream>::doClose() {
    // Beast allows one ping/pong/close at a time; the ping's completion calls back here.
    if (closeStarted_ || pingInFlight_) return;
    closeStarted_ = true;
    websocket::close_reason reason(static_cast<websocket::close_code>(closeReason_.code),
                                   beast::string_view(closeReason_.reason.data(), closeReason_.reason.size()));
    ws_.async_close(reason,
                    beast::bind_front_handler(&WebSocketSession<HttpStream>::onClose, this->shared_from_this()));
}

template <class HttpStream>
void WebSocketSession<HttpStream>::onClose(beast::error_code ec) {
    if (ec && !isOrdinaryEnd(ec)) spdlog::debug("[{}] close failed: {}", id_, ec.message());
    finish();
}

template <class HttpStream>
void WebSocketSession<HttpStream>::noteReadFailure(beast::error_code ec) {
    if (ec == websocket::error::closed) {
        endedBy_ = DisconnectCounts::By::Client;
        endCode_ = ws_.reason().code;
    } else if (ec.category() == make_error_code(websocket::error::closed).category()) {
        // Beast refused a frame and sent its close: 1009 and 1007 for these two, 1002 for the rest.
        endedBy_ = DisconnectCounts::By::Server;
        endCode_ = ec == websocket::error::message_too_big     ? websocket::close_code::too_big
                   : ec == websocket::error::bad_frame_payload ? websocket::close_code::bad_payload
                                                               : websocket::close_code::protocol_error;
    }
}

template <class HttpStream>
void WebSocketSession<HttpStream>::finish() {
    if (state_ == State::Closed) return;
    if (counted_) {
        // A close we began counts as ours whatever ended it: the client answering, or a timeout.
        if (state_ == State::Closing)
            loop_.metrics().disconnects.count(DisconnectCounts::By::Server, closeReason_.code);
        else
            loop_.metrics().disconnects.count(endedBy_, endCode_);
    }
    state_ = State::Closed;
    writable_ = nullptr;
    protocol_.connectionClosed(false);
    timer_.cancel();
    beast::error_code ignored;
    tcpSocketOf(beast::get_lowest_layer(ws_)).close(ignored);  // fails whatever is still pending
    admission_.reset();  // the socket is closed: another client may have its place
}

template <class HttpStream>
void WebSocketSession<HttpStream>::drain() {
    if (state_ == State::Handshaking) {
        beast::error_code ignored;
        tcpSocketOf(beast::get_lowest_layer(ws_)).close(ignored);
        return;
    }
    closeWith(disconnects::kShutdown, true);
}

template <class HttpStream>
void WebSocketSession<HttpStream>::disconnect(const DisconnectTarget& target) {
    if (state_ == State::Open && mode_ == SessionMode::Protocol) protocol_.disconnect(target);
}

template <class HttpStream>
void WebSocketSession<HttpStream>::armTimer() {
    if (state_ == State::Closed) return;
    const auto& ws = node_.config().websocket;
    TimePoint next = hardCloseDeadline_;
    if (state_ != State::Closing) {
        next = std::min({next, nextPing_, lastHeard_ + toClock(ws.ping_interval + ws.pong_timeout), connectDeadline_});
    }
    if (next == armedFor_) return;
    armedFor_ = next;
    // Relative to the node's clock; cancels the wait for the old deadline, whose handler then returns.
    if (next == TimePoint::max())
        timer_.expires_at(TimePoint::max());
    else
        timer_.expires_after(next - node_.clock().now());
    timer_.async_wait(beast::bind_front_handler(&WebSocketSession<HttpStream>::onTimer, this->shared_from_this()));
}

template <class HttpStream>
void WebSocketSession<HttpStream>::onTimer(beast::error_code ec) {
    if (ec || state_ == State::Closed) return;
    armedFor_ = TimePoint::max();
    auto now = node_.clock().now();
    const auto& ws = node_.config().websocket;
    if (state_ == State::Closing) {
        if (now >= hardCloseDeadline_) {
            spdlog::debug("[{}] close did not complete in time", id_);
            return finish();
        }
    } else if (now >= connectDeadline_) {
        loop_.metrics().connectTimeoutCloses.add();
        return closeWith(disconnects::kConnectTimeout, true);
    } else if (now >= lastHeard_ + toClock(ws.ping_interval + ws.pong_timeout)) {
        loop_.metrics().noPongCloses.add();
        return closeWith(disconnects::kNoPong, true);
    } else if (now >= nextPing_) {
        sendPing();
        nextPing_ = now + toClock(ws.ping_interval);
    }
    armTimer();
}

template <class HttpStream>
void WebSocketSession<HttpStream>::sendPing() {
    if (pingInFlight_ || closeStarted_) return;
    pingInFlight_ = true;
    ws_.async_ping({}, [self = this->shared_from_this()](beast::error_code ec) {
        self->pingInFlight_ = false;
        if (ec) return self->finish();
        if (self->state_ == State::Closing && !self->queue_.writing() && !self->queue_.hasPending()) self->doClose();
    });
}

template class WebSocketSession<PlainStream>;
template class WebSocketSession<TlsStream>;

}  // namespace wspush
