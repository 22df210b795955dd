#include "transport/websocket_session.h"

#include <algorithm>
#include <random>
#include <span>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/websocket/error.hpp>
#include <spdlog/spdlog.h>

#include "protocol/server_message.h"

namespace wspush {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;

namespace {

// How long an orderly close may take before the socket is shut without ceremony.
constexpr std::chrono::seconds kCloseTimeout{5};

std::string newConnectionId() {
    thread_local std::mt19937_64 random{std::random_device{}()};
    char text[17];
    std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(random()));
    return text;
}

template <class Duration>
std::chrono::steady_clock::duration toClock(Duration d) {
    return std::chrono::duration_cast<std::chrono::steady_clock::duration>(d);
}

// Errors that end a connection in the ordinary way and deserve no log line above debug.
bool isOrdinaryEnd(const beast::error_code& ec) {
    return ec == websocket::error::closed || ec == net::error::operation_aborted || ec == net::error::eof ||
           ec == net::error::connection_reset || ec == net::error::broken_pipe || ec == beast::error::timeout;
}

}  // namespace

WebSocketSession::WebSocketSession(Node& node, EventLoop& loop, net::ip::tcp::socket socket, SessionMode mode)
    : node_(node),
      loop_(loop),
      mode_(mode),
      id_(newConnectionId()),
      ws_(std::move(socket)),
      queue_(node.config().websocket.write_queue_max_bytes, node.config().websocket.write_queue_max_frames),
      timer_(loop.context()) {
    loop_.attach(this);
}

WebSocketSession::~WebSocketSession() {
    leaveAllChannels();
    loop_.detach(this);
    if (counted_) loop_.metrics().websocketConnections.sub();
}

void WebSocketSession::start(Request request) {
    const auto& ws = node_.config().websocket;
    // Beast's own timer guards the handshake; heartbeats are ours (armTimer), so no idle timeout here.
    beast::get_lowest_layer(ws_).expires_never();
    ws_.set_option(websocket::stream_base::timeout{toClock(ws.handshake_timeout), websocket::stream_base::none(), false});
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& response) { response.set(beast::http::field::server, "wspush"); }));
    if (ws.compression.enabled) {
        websocket::permessage_deflate deflate;
        deflate.server_enable = true;
        deflate.server_max_window_bits = ws.compression.window_bits;
        deflate.client_max_window_bits = ws.compression.window_bits;
        deflate.compLevel = ws.compression.level;
        deflate.memLevel = ws.compression.mem_level;
        deflate.msg_size_threshold = ws.compression.threshold;
        ws_.set_option(deflate);
    }
    ws_.read_message_max(ws.max_message_size);
    ws_.auto_fragment(false);  // one message, one frame, one gathered write
    ws_.control_callback([this](websocket::frame_type, beast::string_view) { lastHeard_ = Clock::now(); });

    ws_.async_accept(request, beast::bind_front_handler(&WebSocketSession::onAccept, shared_from_this()));
}

void WebSocketSession::onAccept(beast::error_code ec) {
    if (ec) {
        spdlog::debug("[{}] websocket handshake failed: {}", id_, ec.message());
        return finish();
    }
    if (state_ != State::Handshaking) return finish();  // drained while handshaking
    state_ = State::Open;
    counted_ = true;
    loop_.metrics().websocketConnections.add();
    loop_.metrics().websocketConnectionsTotal.add();

    const auto& ws = node_.config().websocket;
    auto now = Clock::now();
    lastHeard_ = now;
    nextPing_ = now + toClock(ws.ping_interval);
    connectDeadline_ = mode_ == SessionMode::Protocol ? now + toClock(ws.connect_timeout) : Clock::time_point::max();
    armTimer();
    doRead();
}

void WebSocketSession::doRead() {
    ws_.async_read(readBuffer_, beast::bind_front_handler(&WebSocketSession::onRead, shared_from_this()));
}

void WebSocketSession::onRead(beast::error_code ec, std::size_t bytes) {
    if (ec) {
        if (ec == websocket::error::message_too_big || ec == websocket::error::bad_frame_payload)
            spdlog::debug("[{}] closed by protocol rule: {}", id_, ec.message());  // Beast sent 1009 / 1007
        else if (!isOrdinaryEnd(ec))
            spdlog::debug("[{}] read failed: {}", id_, ec.message());
        return finish();
    }
    lastHeard_ = Clock::now();
    loop_.metrics().bytesIn.add(bytes);

    if (state_ == State::Open || state_ == State::Connected) {
        auto data = readBuffer_.cdata();
        std::string_view payload(static_cast<const char*>(data.data()), data.size());
        if (mode_ == SessionMode::Echo) {
            loop_.metrics().messagesIn.add();
            send(OutboundFrame{std::make_shared<const std::string>(payload), !ws_.got_text(), true});
        } else if (!ws_.got_text()) {
            closeWith(Disconnect{1003, "binary frames are not supported", false}, false);
        } else {
            handleFrame(payload);
        }
    }
    readBuffer_.consume(readBuffer_.size());
    // A large message must not pin its buffer for the rest of an idle connection's life.
    if (readBuffer_.capacity() > 4096) readBuffer_.shrink_to_fit();
    if (state_ != State::Closed) doRead();
}

void WebSocketSession::handleFrame(std::string_view frame) {
    forEachPiece(frame, [this](std::string_view piece) {
        if (state_ != State::Open && state_ != State::Connected) return false;
        loop_.metrics().messagesIn.add();
        auto parsed = parseClientCommand(piece);
        if (auto* error = std::get_if<CommandError>(&parsed)) {
            replyError(error->id, error->code, error->message);
            if (error->fatal) {
                closeWith(disconnects::kBadRequest, true);
                return false;
            }
            return true;
        }
        return handleCommand(std::get<ClientCommand>(parsed));
    });
}

bool WebSocketSession::handleCommand(ClientCommand& command) {
    if (state_ != State::Connected && command.type != CommandType::Connect) {
        replyError(command.id, ErrorCode::NotConnected, "send connect first");
        return true;
    }
    switch (command.type) {
        case CommandType::Connect: return handleConnect(command);
        case CommandType::Subscribe: handleSubscribe(command); break;
        case CommandType::Unsubscribe: handleUnsubscribe(command); break;
        case CommandType::Publish: handlePublish(command); break;
        case CommandType::Ping: reply(encodePong(command.id)); break;
    }
    return true;
}

bool WebSocketSession::handleConnect(const ClientCommand& command) {
    if (state_ == State::Connected) {
        replyError(command.id, ErrorCode::AlreadyConnected, "already connected");
        return true;
    }
    const auto& client = node_.config().client;
    if (command.user && !client.trust_client_user) {
        replyError(command.id, ErrorCode::PermissionDenied, "this server does not accept a client-supplied user");
        closeWith(disconnects::kUnauthorized, true);
        return false;
    }
    if (!client.allow_anonymous) {
        // Token verification (JWT) is not in this release, so without anonymous access nobody gets in.
        replyError(command.id, ErrorCode::Unauthorized,
                   command.token ? "token authentication is not available on this server" : "a token is required");
        closeWith(disconnects::kUnauthorized, true);
        return false;
    }
    state_ = State::Connected;
    user_ = command.user.value_or("");
    connectDeadline_ = Clock::time_point::max();
    spdlog::debug("[{}] connected user=\"{}\" client=\"{}\"", id_, user_, command.client);

    const auto& ws = node_.config().websocket;
    reply(encodeConnected(command.id, ConnectedReply{id_, user_, ws.ping_interval.count(), ws.pong_timeout.count(),
                                                     node_.name(), Node::version()}));
    return true;
}

void WebSocketSession::handleSubscribe(const ClientCommand& command) {
    const std::string& channel = command.channel;
    switch (node_.checkChannel(channel)) {
        case ChannelCheck::InvalidName: return replyError(command.id, ErrorCode::InvalidChannel, "invalid channel name");
        case ChannelCheck::UnknownNamespace: return replyError(command.id, ErrorCode::UnknownNamespace, "unknown namespace");
        case ChannelCheck::Ok: break;
    }
    if (std::find(channels_.begin(), channels_.end(), channel) != channels_.end())
        return replyError(command.id, ErrorCode::AlreadySubscribed, "already subscribed");
    if (channels_.size() >= node_.config().websocket.max_subscriptions)
        return replyError(command.id, ErrorCode::LimitExceeded, "too many subscriptions");

    // Interest is registered before the position is read, so every publication after the
    // position is routed here; the hub holds them back until the position is known.
    channels_.push_back(channel);
    bool firstOnLoop = !loop_.hub().contains(channel);
    if (node_.router().addSubscriber(channel, loop_.index(), firstOnLoop)) node_.broker().subscribe(channel);
    loop_.hub().add(channel, this, LocalHub::kHoldAll);

    node_.broker().position(channel, [self = shared_from_this(), channel, id = command.id](auto result) {
        net::dispatch(self->ws_.get_executor(), [self, channel, id, result = std::move(result)] {
            bool stillWanted = std::find(self->channels_.begin(), self->channels_.end(), channel) != self->channels_.end();
            if (self->state_ != State::Connected || !stillWanted) return;
            if (auto* error = std::get_if<BrokerError>(&result)) {
                self->leaveChannel(channel);
                std::erase(self->channels_, channel);
                return self->replyError(id, ErrorCode::Internal, error->message);
            }
            const auto& position = std::get<StreamPosition>(result);
            self->loop_.hub().setSince(channel, self.get(), position.offset);
            self->reply(encodeSubscribed(id, channel, position));
        });
    });
}

void WebSocketSession::handleUnsubscribe(const ClientCommand& command) {
    auto it = std::find(channels_.begin(), channels_.end(), command.channel);
    if (it == channels_.end()) return replyError(command.id, ErrorCode::NotSubscribed, "not subscribed");
    leaveChannel(*it);
    channels_.erase(it);
    reply(encodeUnsubscribed(command.id, command.channel));
}

void WebSocketSession::handlePublish(const ClientCommand& command) {
    switch (node_.checkChannel(command.channel)) {
        case ChannelCheck::InvalidName: return replyError(command.id, ErrorCode::InvalidChannel, "invalid channel name");
        case ChannelCheck::UnknownNamespace: return replyError(command.id, ErrorCode::UnknownNamespace, "unknown namespace");
        case ChannelCheck::Ok: break;
    }
    if (!node_.config().namespaceFor(command.channel)->client_publish)
        return replyError(command.id, ErrorCode::PermissionDenied, "clients may not publish to this channel");

    node_.broker().publish(PublishRequest{command.channel, command.data},
                           [self = shared_from_this(), id = command.id](PublishResult result) {
                               net::dispatch(self->ws_.get_executor(), [self, id, result = std::move(result)] {
                                   if (auto* error = std::get_if<BrokerError>(&result))
                                       return self->replyError(id, ErrorCode::Internal, error->message);
                                   self->reply(encodePublished(id, *std::get<PublicationPtr>(result)));
                               });
                           });
}

void WebSocketSession::replyError(std::optional<std::uint64_t> id, ErrorCode code, std::string_view message) {
    loop_.metrics().protocolErrors.add();
    reply(encodeError(id, code, message));
}

void WebSocketSession::deliver(const SharedFrame& frame) {
    if (state_ != State::Connected) return;  // closing: the hub entry goes away shortly
    send(OutboundFrame{frame});
}

void WebSocketSession::reply(std::string message) {
    send(OutboundFrame{std::make_shared<const std::string>(std::move(message))});
}

void WebSocketSession::send(OutboundFrame frame) {
    if (state_ != State::Open && state_ != State::Connected) return;
    if (!queue_.push(std::move(frame))) {
        loop_.metrics().slowConsumerCloses.add();
        spdlog::info("[{}] slow consumer: {} frames, {} bytes queued", id_, queue_.frames(), queue_.bytes());
        return closeWith(disconnects::kSlowConsumer, true);
    }
    if (!queue_.writing()) doWrite();
}

void WebSocketSession::doWrite() {
    batch_ = queue_.startBatch(writeBuffers_);
    ws_.text(!batch_.binary);
    ws_.async_write(std::span<const net::const_buffer>(writeBuffers_),
                    beast::bind_front_handler(&WebSocketSession::onWrite, shared_from_this()));
}

void WebSocketSession::onWrite(beast::error_code ec, std::size_t bytes) {
    queue_.finishBatch();
    if (ec) {
        if (!isOrdinaryEnd(ec)) spdlog::debug("[{}] write failed: {}", id_, ec.message());
        return finish();
    }
    loop_.metrics().writes.add();
    loop_.metrics().messagesOut.add(batch_.frames);
    loop_.metrics().bytesOut.add(bytes);
    if (queue_.hasPending()) return doWrite();
    if (state_ == State::Closing) doClose();
}

void WebSocketSession::closeWith(const Disconnect& reason, bool announce) {
    if (state_ == State::Closing || state_ == State::Closed) return;
    if (state_ == State::Handshaking) return finish();
    state_ = State::Closing;
    closeReason_ = reason;
    spdlog::debug("[{}] closing: {} {}", id_, reason.code, reason.reason);
    // This may run inside LocalHub::deliver, which must not see its subscriber lists change:
    // leave the channels from a fresh handler.
    net::post(loop_.context(), [self = shared_from_this()] { self->leaveAllChannels(); });

    if (reason.code == disconnects::kSlowConsumer.code) queue_.dropPending();  // it is not reading anyway
    if (announce) queue_.pushUnbounded(OutboundFrame{std::make_shared<const std::string>(encodeDisconnect(reason))});
    hardCloseDeadline_ = Clock::now() + kCloseTimeout;
    armTimer();
    if (queue_.writing()) return;  // onWrite continues
    if (queue_.hasPending()) return doWrite();
    doClose();
}

void WebSocketSession::doClose() {
    // Beast allows one ping/pong/close at a time; the ping's completion calls back here.
    if (closeStarted_ || pingInFlight_) return;
    closeStarted_ = true;
    websocket::close_reason reason(static_cast<websocket::close_code>(closeReason_.code), beast::string_view(closeReason_.reason.data(), closeReason_.reason.size()));
    ws_.async_close(reason, beast::bind_front_handler(&WebSocketSession::onClose, shared_from_this()));
}

void WebSocketSession::onClose(beast::error_code ec) {
    if (ec && !isOrdinaryEnd(ec)) spdlog::debug("[{}] close failed: {}", id_, ec.message());
    finish();
}

void WebSocketSession::finish() {
    if (state_ == State::Closed) return;
    state_ = State::Closed;
    leaveAllChannels();
    timer_.cancel();
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);  // fails whatever is still pending
}

void WebSocketSession::drain() {
    if (state_ == State::Handshaking) {
        beast::error_code ignored;
        beast::get_lowest_layer(ws_).socket().close(ignored);
        return;
    }
    closeWith(disconnects::kShutdown, true);
}

void WebSocketSession::leaveChannel(const std::string& channel) {
    bool lastOnLoop = loop_.hub().remove(channel, this);
    if (node_.router().removeSubscriber(channel, loop_.index(), lastOnLoop)) node_.broker().unsubscribe(channel);
}

void WebSocketSession::leaveAllChannels() {
    for (const auto& channel : channels_) leaveChannel(channel);
    channels_.clear();
}

void WebSocketSession::armTimer() {
    if (state_ == State::Closed) return;
    const auto& ws = node_.config().websocket;
    Clock::time_point next = hardCloseDeadline_;
    if (state_ != State::Closing) {
        next = std::min({next, nextPing_, lastHeard_ + toClock(ws.ping_interval + ws.pong_timeout), connectDeadline_});
    }
    if (next == armedFor_) return;
    armedFor_ = next;
    timer_.expires_at(next);  // cancels the wait for the old deadline, whose handler then returns
    timer_.async_wait(beast::bind_front_handler(&WebSocketSession::onTimer, shared_from_this()));
}

void WebSocketSession::onTimer(beast::error_code ec) {
    if (ec || state_ == State::Closed) return;
    armedFor_ = Clock::time_point::max();
    auto now = Clock::now();
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

void WebSocketSession::sendPing() {
    if (pingInFlight_ || closeStarted_) return;
    pingInFlight_ = true;
    ws_.async_ping({}, [self = shared_from_this()](beast::error_code ec) {
        self->pingInFlight_ = false;
        if (ec) return self->finish();
        if (self->state_ == State::Closing && !self->queue_.writing() && !self->queue_.hasPending()) self->doClose();
    });
}

}  // namespace wspush
