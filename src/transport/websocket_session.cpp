#include "transport/websocket_session.h"

#include <algorithm>
#include <random>
#include <span>

#include <spdlog/spdlog.h>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/websocket/error.hpp>
#include <nlohmann/json.hpp>

#include "protocol/server_message.h"
#include "wspush/channel_name.h"

namespace wspush {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;

namespace {

// How long an orderly close may take before the socket is shut without ceremony.
constexpr std::chrono::seconds kCloseTimeout{5};
// How long a resume waits for another connection's resume of the same session to finish.
constexpr std::chrono::seconds kResumeWait{2};
// Commands, acks and pings fit; an idle connection holds this much read buffer.
constexpr std::size_t kFirstReadLimit = 128;

// `words` random 64-bit words as hex. Session ids and resume tokens use 128 bits: unguessable.
std::string randomHex(int words) {
    thread_local std::mt19937_64 random{std::random_device{}()};
    std::string text;
    char word[17];
    for (int i = 0; i < words; ++i) {
        std::snprintf(word, sizeof word, "%016llx", static_cast<unsigned long long>(random()));
        text += word;
    }
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
      id_(randomHex(1)),
      ws_(std::move(socket)),
      queue_(node.config().websocket.write_queue_max_bytes, node.config().websocket.write_queue_max_frames),
      timer_(loop.context()) {
    loop_.attach(this);
}

WebSocketSession::~WebSocketSession() {
    if (session_) session_->forget(this);  // only at shutdown: every other ending detached already
    loop_.detach(this);
    if (counted_) loop_.metrics().websocketConnections.sub();
}

void WebSocketSession::start(Request request) {
    const auto& ws = node_.config().websocket;
    // Beast's own timer guards the handshake; heartbeats are ours (armTimer), so no idle timeout here.
    ws_.set_option(
        websocket::stream_base::timeout{toClock(ws.handshake_timeout), websocket::stream_base::none(), false});
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
    // The buffer a pending read prepares is held for as long as the connection stays idle, so
    // the first piece of a message is read with a small limit; the rest of a longer message
    // then comes in one piece.
    std::size_t limit = readBuffer_.size() == 0 ? kFirstReadLimit : node_.config().websocket.max_message_size;
    ws_.async_read_some(readBuffer_, limit, beast::bind_front_handler(&WebSocketSession::onRead, shared_from_this()));
}

void WebSocketSession::onRead(beast::error_code ec, std::size_t bytes) {
    if (ec) {
        // A client that closes with 1000 says goodbye: its session need not wait for it.
        if (ec == websocket::error::closed && ws_.reason().code == websocket::close_code::normal) detachSession(true);
        if (ec == websocket::error::message_too_big || ec == websocket::error::bad_frame_payload)
            spdlog::debug("[{}] closed by protocol rule: {}", id_, ec.message());  // Beast sent 1009 / 1007
        else if (!isOrdinaryEnd(ec))
            spdlog::debug("[{}] read failed: {}", id_, ec.message());
        return finish();
    }
    lastHeard_ = Clock::now();
    loop_.metrics().bytesIn.add(bytes);
    if (!ws_.is_message_done()) return doRead();

    if (state_ == State::Open || state_ == State::Resuming || state_ == State::Connected) {
        auto data = readBuffer_.cdata();
        std::string_view payload(static_cast<const char*>(data.data()), data.size());
        if (mode_ == SessionMode::Echo) {
            loop_.metrics().messagesIn.add();
            send(OutboundFrame::echo(std::make_shared<const std::string>(payload), !ws_.got_text()));
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
        if (state_ != State::Open && state_ != State::Resuming && state_ != State::Connected) return false;
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
        case CommandType::History: handleHistory(command); break;
        case CommandType::Ping: reply(encodePong(command.id)); break;
        case CommandType::Ack:
        case CommandType::Rec:
        case CommandType::Comp: handleQosAnswer(command); break;
        case CommandType::Pubrel: reply(encodePubcomp(command.id, *command.mid)); break;
    }
    return true;
}

bool WebSocketSession::handleConnect(const ClientCommand& command) {
    if (state_ == State::Connected || state_ == State::Resuming) {
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
    connectId_ = command.id;
    std::string user = command.user.value_or("");
    spdlog::debug("[{}] connect user=\"{}\" client=\"{}\"", id_, user, command.client);

    if (command.session && command.resume) {
        tryResume(*command.session, *command.resume, std::move(user), Clock::now() + kResumeWait);
        return true;
    }
    startNewSession(std::move(user));
    return true;
}

void WebSocketSession::tryResume(std::string id, std::string token, std::string user, Clock::time_point giveUpAt) {
    if (state_ != State::Open && state_ != State::Resuming) return;
    bool busy = false;
    if (auto claim = node_.sessions().claim(id, token, &busy)) {
        if (claim->session->user() == user) {
            if (claim->loop == loop_.index())
                resumeHere(std::move(claim->session));
            else
                resumeFrom(std::move(claim->session), claim->loop);
            return;
        }
        node_.sessions().release(id, claim->loop);  // someone else's session: start afresh
    } else if (busy && Clock::now() < giveUpAt) {
        // Another connection is resuming it right now; once it has, this one takes over from it.
        state_ = State::Resuming;
        auto retry = std::make_shared<net::steady_timer>(loop_.context(), std::chrono::milliseconds(5));
        retry->async_wait([self = shared_from_this(), retry, id = std::move(id), token = std::move(token),
                           user = std::move(user), giveUpAt](beast::error_code) mutable {
            self->tryResume(std::move(id), std::move(token), std::move(user), giveUpAt);
        });
        return;
    }
    startNewSession(std::move(user));
}

void WebSocketSession::startNewSession(std::string user) {
    auto session = std::make_shared<ClientSession>(node_, loop_, randomHex(2), randomHex(2), std::move(user));
    node_.sessions().add(session->id(), session->resumeToken(), session, loop_.index());
    // Messages for the user (POST /api/send) reach every one of its sessions through this channel.
    std::string personal = personalChannel(session->user());
    if (!personal.empty()) session->subscribe(personal, std::nullopt, [](const auto&) {});
    sessionReady(std::move(session), false);
}

void WebSocketSession::resumeHere(std::shared_ptr<ClientSession> session) {
    if (session->ended()) return startNewSession(session->user());  // its end was already under way
    if (SessionConnection* previous = session->connection()) previous->closeFor(disconnects::kTakenOver);
    node_.sessions().release(session->id(), loop_.index());
    sessionReady(std::move(session), true);
}

void WebSocketSession::resumeFrom(std::shared_ptr<ClientSession> session, unsigned from) {
    // The session moves here in four hops, each on the loop that owns what it touches:
    //   there: drop its old connection          here: a buffer joins its channels
    //   there: leave the channels, hand over    here: replay the buffer past each channel's offset
    // The buffer joins before the old loop lets go, so no publication falls between the two.
    state_ = State::Resuming;
    EventLoop& there = node_.loopAt(from);
    EventLoop& here = loop_;
    Node& node = node_;
    auto self = shared_from_this();
    net::post(there.context(), [self, session, &there, &here, &node] {
        std::vector<std::string> channels = session->prepareMove();
        net::post(here.context(), [self, session, channels = std::move(channels), &there, &here, &node] {
            session->holdPlace(here, channels);
            net::post(there.context(), [self, session, &here, &node] {
                ChannelPositions positions = session->leaveLoop();
                net::post(here.context(), [self, session, positions = std::move(positions), &here, &node] {
                    session->enterLoop(here, positions);
                    node.sessions().release(session->id(), here.index());
                    if (self->state_ == State::Resuming) self->resumeHere(session);
                });
            });
        });
    });
}

void WebSocketSession::sessionReady(std::shared_ptr<ClientSession> session, bool resumed) {
    state_ = State::Connected;
    session_ = std::move(session);
    connectDeadline_ = Clock::time_point::max();
    if (resumed) loop_.metrics().sessionsResumed.add();
    const auto& ws = node_.config().websocket;
    reply(encodeConnected(
        connectId_, ConnectedReply{id_, session_->user(), session_->id(), session_->resumeToken(), resumed,
                                   ws.ping_interval.count(), ws.pong_timeout.count(), node_.name(), Node::version()}));
    // After `connected`: resent and waiting deliveries follow it.
    session_->attach(this);
}

void WebSocketSession::handleSubscribe(const ClientCommand& command) {
    const std::string& channel = command.channel;
    switch (node_.checkChannel(channel)) {
        case ChannelCheck::InvalidName:
            return replyError(command.id, ErrorCode::InvalidChannel, "invalid channel name");
        case ChannelCheck::UnknownNamespace:
            return replyError(command.id, ErrorCode::UnknownNamespace, "unknown namespace");
        case ChannelCheck::Ok: break;
    }
    if (session_->isSubscribed(channel))
        return replyError(command.id, ErrorCode::AlreadySubscribed, "already subscribed");
    if (session_->subscriptionCount() >= node_.config().websocket.max_subscriptions)
        return replyError(command.id, ErrorCode::LimitExceeded, "too many subscriptions");

    bool recovering = command.since.has_value();
    session_->subscribe(channel, command.since, [self = shared_from_this(), channel, id = command.id, recovering](auto result) {
        if (self->state_ != State::Connected) return;
        if (auto* error = std::get_if<BrokerError>(&result))
            return self->replyError(id, ErrorCode::Internal, error->message);
        const auto& outcome = std::get<SubscribeOutcome>(result);
        if (recovering) (*outcome.recovered ? self->loop_.metrics().recoveries : self->loop_.metrics().recoveryMisses).add();
        self->reply(encodeSubscribed(id, channel, outcome.position, outcome.recovered));
    });
}

void WebSocketSession::handleHistory(const ClientCommand& command) {
    switch (node_.checkChannel(command.channel)) {
        case ChannelCheck::InvalidName:
            return replyError(command.id, ErrorCode::InvalidChannel, "invalid channel name");
        case ChannelCheck::UnknownNamespace:
            return replyError(command.id, ErrorCode::UnknownNamespace, "unknown namespace");
        case ChannelCheck::Ok: break;
    }
    if (!node_.config().namespaceFor(command.channel)->client_history)
        return replyError(command.id, ErrorCode::PermissionDenied, "clients may not read this channel's history");
    HistoryQuery query{command.historySince, command.limit, command.reverse};
    node_.history(command.channel, query, [self = shared_from_this(), id = command.id, channel = command.channel](auto result) {
        net::dispatch(self->ws_.get_executor(), [self, id, channel, result = std::move(result)] {
            if (auto* error = std::get_if<BrokerError>(&result))
                return self->replyError(id, ErrorCode::Internal, error->message);
            self->reply(encodeHistory(id, channel, std::get<HistoryPage>(result)));
        });
    });
}

void WebSocketSession::handleUnsubscribe(const ClientCommand& command) {
    // Also keeps the personal "$user:" channel out of reach: '$' makes it an invalid name.
    if (node_.checkChannel(command.channel) == ChannelCheck::InvalidName)
        return replyError(command.id, ErrorCode::InvalidChannel, "invalid channel name");
    if (!session_->isSubscribed(command.channel))
        return replyError(command.id, ErrorCode::NotSubscribed, "not subscribed");
    session_->unsubscribe(command.channel);
    reply(encodeUnsubscribed(command.id, command.channel));
}

void WebSocketSession::handlePublish(const ClientCommand& command) {
    switch (node_.checkChannel(command.channel)) {
        case ChannelCheck::InvalidName:
            return replyError(command.id, ErrorCode::InvalidChannel, "invalid channel name");
        case ChannelCheck::UnknownNamespace:
            return replyError(command.id, ErrorCode::UnknownNamespace, "unknown namespace");
        case ChannelCheck::Ok: break;
    }
    const NamespaceConfig* options = node_.config().namespaceFor(command.channel);
    if (!options->client_publish)
        return replyError(command.id, ErrorCode::PermissionDenied, "clients may not publish to this channel");

    int qos = command.qos.value_or(options->default_qos);
    if (qos == 2 && !command.mid) return replyError(command.id, ErrorCode::BadRequest, "qos 2 needs a \"mid\"");
    PublishRequest request{command.channel, command.data, qos, command.mid.value_or("")};
    if (!command.mid) return publishAndReply(std::move(request), command.id, {});

    // A client resends a publish until it is answered; its mid makes the resends harmless.
    // Scoped by user (or, anonymous, by session), so one client cannot shadow another's mids.
    std::string key = (session_->user().empty() ? "s:" + session_->id() : "u:" + session_->user()) + ":" + *command.mid;
    auto fingerprint =
        IdempotencyCache::fingerprint(command.channel + '\n' + std::to_string(qos) + '\n' + command.data);
    auto waiter = [self = shared_from_this(), id = command.id, qos](const IdempotencyCache::Response& first) {
        net::dispatch(self->ws_.get_executor(), [self, id, qos, first] { self->replyRemembered(id, qos, first); });
    };
    auto begun = node_.clientPublishes().begin("ws", key, fingerprint, waiter);
    switch (begun.outcome) {
        case IdempotencyCache::Outcome::Replay: return replyRemembered(command.id, qos, begun.response);
        case IdempotencyCache::Outcome::Wait: return;
        case IdempotencyCache::Outcome::Conflict:
            return replyError(command.id, ErrorCode::BadRequest, "this mid was already used for another publication");
        case IdempotencyCache::Outcome::Proceed: break;
    }
    request.idempotencyKey = IdempotencyCache::engineKey("client:" + key, command.channel + '\n' + std::to_string(qos) + '\n' + command.data);
    publishAndReply(std::move(request), command.id, key);
}

void WebSocketSession::publishAndReply(PublishRequest request, std::optional<std::uint64_t> id, std::string dedupKey) {
    int qos = request.qos;
    node_.publish(std::move(request), [self = shared_from_this(), id, qos, dedupKey](PublishResult result) {
        IdempotencyCache& remembered = self->node_.clientPublishes();
        if (auto* error = std::get_if<BrokerError>(&result)) {
            if (!dedupKey.empty())
                remembered.abandon("ws", dedupKey, IdempotencyCache::Response{500, "", error->message});
            return net::dispatch(self->ws_.get_executor(), [self, id, message = error->message] {
                self->replyError(id, ErrorCode::Internal, message);
            });
        }
        const Publication& publication = *std::get<Published>(result).publication;
        if (!dedupKey.empty()) {
            nlohmann::json fields{
                {"channel", publication.channel}, {"offset", publication.offset}, {"mid", publication.mid}};
            remembered.complete("ws", dedupKey, IdempotencyCache::Response{200, "", fields.dump()});
        }
        std::string reply = qos == 2 ? encodePubrec(id, publication) : encodePublished(id, publication);
        net::dispatch(self->ws_.get_executor(),
                      [self, reply = std::move(reply)]() mutable { self->reply(std::move(reply)); });
    });
}

void WebSocketSession::replyRemembered(std::optional<std::uint64_t> id, int qos,
                                       const IdempotencyCache::Response& first) {
    if (first.status != 200) return replyError(id, ErrorCode::Internal, first.body);
    auto fields = nlohmann::json::parse(first.body, nullptr, false);
    Publication publication;
    publication.channel = fields.value("channel", "");
    publication.offset = fields.value("offset", std::uint64_t{0});
    publication.mid = fields.value("mid", "");
    reply(qos == 2 ? encodePubrec(id, publication) : encodePublished(id, publication));
}

void WebSocketSession::handleQosAnswer(const ClientCommand& command) {
    QosOutcome outcome = command.type == CommandType::Ack   ? session_->onAck(command.did)
                         : command.type == CommandType::Rec ? session_->onRec(command.did)
                                                            : session_->onComp(command.did);
    switch (outcome) {
        case QosOutcome::Completed:
        case QosOutcome::Ignored: break;  // a late duplicate is expected after a resend: no reply
        case QosOutcome::SendRel: reply(encodeRel(command.did)); break;
        case QosOutcome::ProtocolError:
            replyError(command.id, ErrorCode::QosViolation, "this answer does not fit the delivery's QoS or state");
            break;
    }
}

void WebSocketSession::replyError(std::optional<std::uint64_t> id, ErrorCode code, std::string_view message) {
    loop_.metrics().protocolErrors.add();
    reply(encodeError(id, code, message));
}

bool WebSocketSession::sendFrame(OutboundFrame frame) {
    if (state_ != State::Connected) return false;
    return send(std::move(frame));
}

void WebSocketSession::closeFor(const Disconnect& reason) {
    closeWith(reason, true);
}

void WebSocketSession::reply(std::string message) {
    send(OutboundFrame::text(std::make_shared<const std::string>(std::move(message))));
}

bool WebSocketSession::send(OutboundFrame frame) {
    if (state_ != State::Open && state_ != State::Resuming && state_ != State::Connected) return false;
    if (!queue_.push(std::move(frame))) {
        loop_.metrics().slowConsumerCloses.add();
        spdlog::info("[{}] slow consumer: {} frames, {} bytes queued", id_, queue_.frames(), queue_.bytes());
        closeWith(disconnects::kSlowConsumer, true);
        return false;
    }
    if (queue_.writing() || flushDeferred_) return true;  // the write under way, or the flush, takes it
    if (loop_.delivering()) {
        flushDeferred_ = true;
        loop_.flushAfterDeliveries(shared_from_this());
        return true;
    }
    doWrite();
    return true;
}

void WebSocketSession::flushDeferred() {
    flushDeferred_ = false;
    if (state_ != State::Closed && !queue_.writing() && queue_.hasPending()) doWrite();
}

void WebSocketSession::doWrite() {
    batch_ = queue_.startBatch(writeBuffers_, &loop_.joinedFrames());
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
    // The session keeps what this connection can no longer deliver, for the client's resume.
    detachSession(false);

    if (reason.code == disconnects::kSlowConsumer.code) queue_.dropPending();  // it is not reading anyway
    if (announce)
        queue_.pushUnbounded(OutboundFrame::text(std::make_shared<const std::string>(encodeDisconnect(reason))));
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
    websocket::close_reason reason(static_cast<websocket::close_code>(closeReason_.code),
                                   beast::string_view(closeReason_.reason.data(), closeReason_.reason.size()));
    ws_.async_close(reason, beast::bind_front_handler(&WebSocketSession::onClose, shared_from_this()));
}

void WebSocketSession::onClose(beast::error_code ec) {
    if (ec && !isOrdinaryEnd(ec)) spdlog::debug("[{}] close failed: {}", id_, ec.message());
    finish();
}

void WebSocketSession::finish() {
    if (state_ == State::Closed) return;
    state_ = State::Closed;
    detachSession(false);
    timer_.cancel();
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).close(ignored);  // fails whatever is still pending
}

void WebSocketSession::drain() {
    if (state_ == State::Handshaking) {
        beast::error_code ignored;
        beast::get_lowest_layer(ws_).close(ignored);
        return;
    }
    closeWith(disconnects::kShutdown, true);
}

void WebSocketSession::detachSession(bool endSession) {
    if (!session_) return;
    auto session = std::move(session_);
    session->detach(this, endSession);
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
