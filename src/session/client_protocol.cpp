#include "session/client_protocol.h"

#include <algorithm>

#include <spdlog/spdlog.h>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "auth/subscribe_permission.h"
#include "base/random.h"
#include "protocol/server_message.h"
#include "session/session_move.h"
#include "wspush/channel_name.h"

namespace wspush {

namespace net = boost::asio;

namespace {

// How long a resume waits for another connection's resume of the same session to finish.
constexpr std::chrono::seconds kResumeWait{2};

// The reply code for an engine failure: 115 when the engine cannot be reached (the client may
// retry), 100 otherwise.
ErrorCode errorCodeOf(const BrokerError& error) {
    return error.code == ApiErrorCode::Unavailable ? ErrorCode::Unavailable : ErrorCode::Internal;
}

}  // namespace

ClientProtocol::ClientProtocol(Node& node, ClientConnection& connection)
    : node_(node), connection_(connection), rates_(node.config().limits, node.clock().now()) {}

ClientProtocol::~ClientProtocol() {
    if (session_) session_->forget(&connection_);  // only at shutdown: every other ending detached already
}

void ClientProtocol::handleMessage(std::string_view message) {
    forEachPiece(message, [this](std::string_view piece) {
        if (state_ == State::Closed) return false;
        connection_.loop().metrics().messagesIn.add();
        auto parsed = parseClientCommand(piece);
        auto* command = std::get_if<ClientCommand>(&parsed);
        if (!withinRate(command ? std::optional(command->type) : std::nullopt,
                        command ? command->id : std::get<CommandError>(parsed).id))
            return state_ != State::Closed;
        if (auto* error = std::get_if<CommandError>(&parsed)) {
            replyError(error->id, error->code, error->message);
            if (error->fatal) {
                connection_.closeFor(disconnects::kBadRequest);
                return false;
            }
            return true;
        }
        return handleCommand(std::get<ClientCommand>(parsed));
    });
}

void ClientProtocol::connectionClosed(bool endSession) {
    state_ = State::Closed;
    if (tokenExpiry_) tokenExpiry_->cancel();
    userSlot_.reset();
    for (const std::string& channel : std::exchange(presentIn_, {}))
        node_.presenceLeave(connection_.loop().index(), channel, connection_.id(), "disconnected");
    if (joining_) std::exchange(joining_, nullptr)->end();  // never attached: nobody could resume it
    if (!session_) return;
    auto session = std::move(session_);
    session->detach(&connection_, endSession);
}

void ClientProtocol::disconnect(const DisconnectTarget& target) {
    // A session still joining its user's channel is the user's too: it must not come up after this.
    const ClientSession* session = state_ == State::Connected ? session_.get() : joining_.get();
    if (session == nullptr) return;
    bool matches = target.client.empty() ? session->user() == target.user : connection_.id() == target.client;
    if (!matches) return;
    spdlog::debug("[{}] disconnected by the API (user \"{}\")", connection_.id(), session->user());
    connectionClosed(true);  // ends the session first: the close must not leave it to be resumed
    connection_.closeFor(target.reconnect ? disconnects::kDisconnectedReconnect : disconnects::kDisconnected);
}

bool ClientProtocol::withinRate(std::optional<CommandType> type, std::optional<std::uint64_t> id) {
    if (!rates_.active()) return true;
    LoopMetrics& metrics = connection_.loop().metrics();
    auto refuse = [&](Counter& refusals, std::string_view message) {
        refusals.add();
        spdlog::debug("[{}] command from {} refused: {}", connection_.id(), connection_.peer(), message);
        replyError(id, ErrorCode::TooManyRequests, message);
        return false;
    };
    switch (rates_.check(type, node_.clock().now())) {
        case CommandRateLimit::Verdict::Allowed: return true;
        case CommandRateLimit::Verdict::TooFast: return refuse(metrics.commandsRefusedRate, "too many requests");
        case CommandRateLimit::Verdict::HistoryTooFast:
            return refuse(metrics.commandsRefusedHistoryRate, "too many history reads");
        case CommandRateLimit::Verdict::PresenceTooFast:
            return refuse(metrics.commandsRefusedPresenceRate, "too many presence reads");
        case CommandRateLimit::Verdict::Flooding: break;
    }
    metrics.tooManyRequestsCloses.add();
    spdlog::debug("[{}] closing: {} keeps sending past the command rate limit", connection_.id(), connection_.peer());
    connection_.closeFor(disconnects::kTooManyRequests);
    return false;
}

bool ClientProtocol::handleCommand(ClientCommand& command) {
    if (state_ != State::Connected && command.type != CommandType::Connect) {
        replyError(command.id, ErrorCode::NotConnected, "send connect first");
        return true;
    }
    switch (command.type) {
        case CommandType::Connect: return handleConnect(command);
        case CommandType::Subscribe: handleSubscribe(command); break;
        case CommandType::Unsubscribe: handleUnsubscribe(command); break;
        case CommandType::History: handleHistory(command); break;
        case CommandType::Presence:
        case CommandType::PresenceStats: handlePresence(command); break;
        case CommandType::Status: handleStatus(command); break;
        case CommandType::Publish: handlePublish(command); break;
        case CommandType::Ping: connection_.sendReply(encodePong(command.id)); break;
        case CommandType::Ack:
        case CommandType::Rec:
        case CommandType::Comp: handleQosAnswer(command); break;
        case CommandType::Pubrel: connection_.sendReply(encodePubcomp(command.id, *command.mid)); break;
        case CommandType::Refresh: handleRefresh(command); break;
    }
    return true;
}

bool ClientProtocol::handleConnect(const ClientCommand& command) {
    if (state_ == State::Connected || state_ == State::Connecting) {
        replyError(command.id, ErrorCode::AlreadyConnected, "already connected");
        return true;
    }
    const auto& client = node_.config().client;
    if (command.user && !client.trust_client_user) {
        replyError(command.id, ErrorCode::PermissionDenied, "this server does not accept a client-supplied user");
        connection_.closeFor(disconnects::kUnauthorized);
        return false;
    }
    std::string user = command.user.value_or("");
    info_ = command.info;
    if (command.token) {
        auto verified = verifyToken(command.id, *command.token, false);
        if (!verified) return false;
        if (command.user && *command.user != verified->subject) {
            replyError(command.id, ErrorCode::Unauthorized, "\"user\" differs from the token's subject");
            connection_.closeFor(disconnects::kUnauthorized);
            return false;
        }
        user = verified->subject;
        // What the token says about the connection outranks what the client says.
        if (!verified->info.empty()) info_ = verified->info;
        tokenExpiresAt_ = verified->expiresAt;
        if (!acceptTokenChannels(command.id, verified->channels)) return false;
        channelsSince_ = command.channelsSince;
    } else if (!client.allow_anonymous) {
        replyError(command.id, ErrorCode::Unauthorized, "a token is required");
        connection_.closeFor(disconnects::kUnauthorized);
        return false;
    }
    if (!admitUser(user, command.id)) return false;
    connectId_ = command.id;
    device_ = command.device;
    spdlog::debug("[{}] connect user=\"{}\" client=\"{}\"", connection_.id(), user, command.client);

    if (command.session && command.resume) {
        tryResume(*command.session, *command.resume, std::move(user), node_.clock().now() + kResumeWait);
        return true;
    }
    startNewSession(std::move(user));
    return true;
}

std::optional<VerifiedToken> ClientProtocol::verifyToken(std::optional<std::uint64_t> id, std::string_view token,
                                                         bool refreshing) {
    auto verifier = node_.credentials().current()->tokens;
    if (!verifier) {
        replyError(id, ErrorCode::Unauthorized, "this server verifies no tokens (client.token is not configured)");
        connection_.closeFor(disconnects::kUnauthorized);
        return std::nullopt;
    }
    auto result = verifier->verify(token, node_.clock().unixMillis() / 1000);
    if (auto* verified = std::get_if<VerifiedToken>(&result)) return std::move(*verified);
    const auto& error = std::get<TokenError>(result);
    spdlog::debug("[{}] token refused: {}", connection_.id(), error.reason);
    connection_.loop().metrics().tokensRefused.add();
    // An expired token is the normal end of a connection's credentials: the client fetches a new
    // one and comes back. Anything else will not get better by retrying.
    bool renewable = error.rejection != TokenRejection::Invalid;
    replyError(id, renewable ? ErrorCode::TokenExpired : ErrorCode::Unauthorized, error.reason);
    // A refresh that came too late (or too early) leaves the connection its current token.
    if (!(renewable && refreshing))
        connection_.closeFor(renewable ? disconnects::kTokenExpired : disconnects::kUnauthorized);
    return std::nullopt;
}

bool ClientProtocol::acceptTokenChannels(std::optional<std::uint64_t> id, std::vector<std::string> channels) {
    // The backend signed these channels: no namespace permission applies, but a channel the
    // server cannot serve is a mistake in the token, refused like any invalid token so that it
    // shows at once rather than as messages that never come.
    auto refuse = [&](const std::string& reason) {
        spdlog::debug("[{}] token refused: {}", connection_.id(), reason);
        connection_.loop().metrics().tokensRefused.add();
        replyError(id, ErrorCode::Unauthorized, reason);
        connection_.closeFor(disconnects::kUnauthorized);
        return false;
    };
    std::sort(channels.begin(), channels.end());
    channels.erase(std::unique(channels.begin(), channels.end()), channels.end());
    if (channels.size() > node_.config().websocket.max_subscriptions)
        return refuse("the token names more channels than websocket.max_subscriptions allows");
    for (const std::string& channel : channels) {
        switch (node_.checkChannel(channel)) {
            case ChannelCheck::Ok: break;
            case ChannelCheck::InvalidName:
                return refuse("the token's channel \"" + channel + "\" is not a valid name");
            case ChannelCheck::UnknownNamespace:
                return refuse("the token's channel \"" + channel + "\" is in no configured namespace");
        }
    }
    tokenChannels_ = std::move(channels);
    return true;
}

void ClientProtocol::handleRefresh(const ClientCommand& command) {
    auto verified = verifyToken(command.id, *command.token, true);
    if (!verified) return;
    if (verified->subject != session_->user()) {
        replyError(command.id, ErrorCode::Unauthorized, "the token's subject is not this connection's user");
        connection_.closeFor(disconnects::kUnauthorized);
        return;
    }
    tokenExpiresAt_ = verified->expiresAt;
    watchTokenExpiry();
    connection_.sendReply(encodeRefreshed(command.id, tokenExpiresAt_));
}

void ClientProtocol::watchTokenExpiry() {
    if (tokenExpiry_) tokenExpiry_->cancel();
    if (!tokenExpiresAt_) return;
    if (!tokenExpiry_) tokenExpiry_.emplace(connection_.loop().context());
    // The verifier accepted the token up to `exp` + leeway; the connection lasts as long.
    auto leeway = std::chrono::duration_cast<std::chrono::milliseconds>(node_.config().client.token.leeway);
    auto endsAtMs = *tokenExpiresAt_ * 1000 + leeway.count();
    tokenExpiry_->expires_after(
        std::chrono::milliseconds(std::max<std::int64_t>(0, endsAtMs - node_.clock().unixMillis())));
    tokenExpiry_->async_wait([self = self(), expiresAt = *tokenExpiresAt_](boost::system::error_code ec) {
        // A refresh in between moved the expiry: only the latest wait counts.
        if (ec || self->state_ != State::Connected || self->tokenExpiresAt_ != expiresAt) return;
        spdlog::debug("[{}] token expired", self->connection_.id());
        self->connection_.loop().metrics().tokenExpiryCloses.add();
        self->connection_.closeFor(disconnects::kTokenExpired);
    });
}

bool ClientProtocol::admitUser(const std::string& user, std::optional<std::uint64_t> connectId) {
    if (auto slot = node_.userConnections().admit(user)) {
        userSlot_ = std::move(*slot);
        return true;
    }
    connection_.loop().metrics().refusedUserLimit.add();
    spdlog::debug("[{}] connect from {} refused: user \"{}\" has {} connections on this node", connection_.id(),
                  connection_.peer(), user, node_.config().limits.connections_per_user);
    replyError(connectId, ErrorCode::LimitExceeded, "too many connections for this user");
    connection_.closeFor(disconnects::kTooManyConnections);
    return false;
}

void ClientProtocol::tryResume(std::string id, std::string token, std::string user, TimePoint giveUpAt) {
    if (state_ != State::AwaitingConnect && state_ != State::Connecting) return;
    EventLoop& loop = connection_.loop();
    bool busy = false;
    if (auto claim = node_.sessions().claim(id, token, &busy)) {
        if (claim->session->user() == user) {
            if (claim->loop == loop.index()) return resumeHere(std::move(claim->session));
            state_ = State::Connecting;
            moveSession(node_, std::move(claim->session), node_.loopAt(claim->loop), loop,
                        [self = self()](std::shared_ptr<ClientSession> session) {
                            if (self->state_ == State::Connecting) self->resumeHere(std::move(session));
                        });
            return;
        }
        node_.sessions().release(id, claim->loop);  // someone else's session: start afresh
    } else if (busy && node_.clock().now() < giveUpAt) {
        // Another connection is resuming it right now; once it has, this one takes over from it.
        state_ = State::Connecting;
        auto retry = std::make_shared<net::steady_timer>(loop.context(), std::chrono::milliseconds(5));
        retry->async_wait([self = self(), retry, id = std::move(id), token = std::move(token), user = std::move(user),
                           giveUpAt](boost::system::error_code) mutable {
            self->tryResume(std::move(id), std::move(token), std::move(user), giveUpAt);
        });
        return;
    }
    startNewSession(std::move(user));
}

void ClientProtocol::startNewSession(std::string user) {
    EventLoop& loop = connection_.loop();
    // 128 bits each: neither can be guessed, and the token proves the right to resume.
    auto session = std::make_shared<ClientSession>(node_, loop, randomHex(16), randomHex(16), std::move(user));
    node_.sessions().add(session->id(), session->resumeToken(), session, loop.index());
    // Messages for the user (POST /api/send) reach every one of its sessions through this channel.
    std::string personal = personalChannel(session->user());
    if (personal.empty()) return joinTokenChannels(std::move(session), std::nullopt);
    // `connected` waits until the node has joined that channel (on Redis, a SUBSCRIBE round trip):
    // from the reply on, a send to the user reaches this connection whichever node it is made on.
    state_ = State::Connecting;
    joining_ = session;
    if (device_.empty() || !node_.inboxEnabled()) return joinPersonalChannel(std::move(session), std::nullopt);
    // A device reads its inbox: what was sent to the user past its cursor comes first.
    node_.inboxCursor(session->user(), device_, [self = self()](std::variant<StreamPosition, BrokerError> result) {
        net::dispatch(self->connection_.loop().context(), [self, result = std::move(result)]() mutable {
            if (self->state_ != State::Connecting || !self->joining_) return;  // the connection closed
            if (auto* error = std::get_if<BrokerError>(&result)) return self->refuseJoin(self->joining_, *error);
            self->joinPersonalChannel(self->joining_, std::get<StreamPosition>(std::move(result)));
        });
    });
}

void ClientProtocol::joinPersonalChannel(std::shared_ptr<ClientSession> session,
                                         std::optional<StreamPosition> inboxCursor) {
    std::string personal = personalChannel(session->user());
    session->subscribe(
        personal, inboxCursor, [self = self(), inboxCursor](std::variant<SubscribeOutcome, BrokerError> result) {
            if (self->state_ != State::Connecting || !self->joining_) return;  // the connection closed
            auto session = std::move(self->joining_);
            if (auto* error = std::get_if<BrokerError>(&result)) return self->refuseJoin(std::move(session), *error);
            std::optional<ConnectedReply::Inbox> inbox;
            if (inboxCursor) {
                const auto& outcome = std::get<SubscribeOutcome>(result);
                inbox = ConnectedReply::Inbox{outcome.missed.size(), outcome.dropped};
                self->connection_.loop().metrics().observeInboxBacklog(outcome.missed.size(), outcome.dropped);
                // Before the session delivers them: each one it finishes moves the device's cursor.
                session->trackInbox(self->device_, *inboxCursor);
            }
            self->joinTokenChannels(std::move(session), inbox);
        });
}

void ClientProtocol::joinTokenChannels(std::shared_ptr<ClientSession> session,
                                       std::optional<ConnectedReply::Inbox> inbox) {
    if (tokenChannels_.empty()) return sessionReady(std::move(session), false, inbox);
    state_ = State::Connecting;
    joining_ = session;
    // The subscribes run concurrently (on Redis, round trips); the last one to finish answers.
    struct Joining {
        std::size_t left;
        std::vector<ConnectedReply::Subscription> subscriptions;
        std::optional<BrokerError> error;
        std::optional<ConnectedReply::Inbox> inbox;
    };
    auto joining = std::make_shared<Joining>(Joining{tokenChannels_.size(), {}, std::nullopt, inbox});
    for (const std::string& channel : tokenChannels_) {
        std::optional<StreamPosition> since;
        if (auto it = channelsSince_.find(channel); it != channelsSince_.end()) since = it->second;
        bool recovering = since.has_value();
        session->subscribe(
            channel, std::move(since),
            [self = self(), session, joining, channel, recovering](std::variant<SubscribeOutcome, BrokerError> result) {
                if (auto* error = std::get_if<BrokerError>(&result)) {
                    if (!joining->error) joining->error = *error;
                } else {
                    const auto& outcome = std::get<SubscribeOutcome>(result);
                    if (recovering) {
                        LoopMetrics& metrics = self->connection_.loop().metrics();
                        (*outcome.recovered ? metrics.recoveries : metrics.recoveryMisses).add();
                    }
                    joining->subscriptions.push_back({channel, outcome.position, outcome.recovered});
                }
                if (--joining->left > 0) return;
                if (self->state_ != State::Connecting || self->joining_ != session) return;  // the connection closed
                self->joining_ = nullptr;
                if (joining->error) return self->refuseJoin(session, *joining->error);
                std::sort(joining->subscriptions.begin(), joining->subscriptions.end(),
                          [](const auto& a, const auto& b) { return a.channel < b.channel; });
                self->sessionReady(session, false, joining->inbox, std::move(joining->subscriptions));
            });
    }
}

void ClientProtocol::refuseJoin(std::shared_ptr<ClientSession> session, const BrokerError& error) {
    // Connected without its channel, the user would miss every send: refuse, and let the client
    // come back (to this node once it reaches its engine again, or to another).
    joining_ = nullptr;
    session->end();
    replyError(connectId_, errorCodeOf(error), "cannot join the user's channel: " + error.message);
    connection_.closeFor(error.code == ApiErrorCode::Unavailable ? disconnects::kUnavailable
                                                                 : disconnects::kInternalError);
}

void ClientProtocol::resumeHere(std::shared_ptr<ClientSession> session) {
    if (session->ended()) return startNewSession(session->user());  // its end was already under way
    if (SessionConnection* previous = session->connection()) previous->closeFor(disconnects::kTakenOver);
    node_.sessions().release(session->id(), connection_.loop().index());
    sessionReady(std::move(session), true);
}

void ClientProtocol::sessionReady(std::shared_ptr<ClientSession> session, bool resumed,
                                  std::optional<ConnectedReply::Inbox> inbox,
                                  std::vector<ConnectedReply::Subscription> subscriptions) {
    state_ = State::Connected;
    session_ = std::move(session);
    connection_.connectAccepted();
    if (resumed) connection_.loop().metrics().sessionsResumed.add();
    // Presence counts connections: a resumed session's channels have this one in them now, before
    // `connected` tells the client so (it may ask at once).
    connectedAtMs_ = node_.clock().unixMillis();
    joinUserPresence();
    for (const std::string& channel : session_->channels()) presenceJoin(channel);
    const auto& ws = node_.config().websocket;
    ConnectedReply reply{connection_.id(),
                         session_->user(),
                         session_->id(),
                         session_->resumeToken(),
                         resumed,
                         ws.ping_interval.count(),
                         ws.pong_timeout.count(),
                         node_.name(),
                         Node::version(),
                         device_,
                         inbox,
                         tokenExpiresAt_,
                         std::move(subscriptions)};
    connection_.sendReply(encodeConnected(connectId_, reply));
    watchTokenExpiry();
    // After `connected`: resent and waiting deliveries follow it.
    session_->attach(&connection_);
}

PresenceEntry ClientProtocol::presenceEntry() const {
    return PresenceEntry{connection_.id(), session_->user(), device_, node_.name(), connectedAtMs_, info_};
}

void ClientProtocol::presenceJoin(const std::string& channel) {
    if (!node_.presenceEnabled(channel)) return;
    if (std::find(presentIn_.begin(), presentIn_.end(), channel) == presentIn_.end()) presentIn_.push_back(channel);
    node_.presenceJoin(connection_.loop().index(), channel, presenceEntry());
}

void ClientProtocol::joinUserPresence() {
    if (session_->user().empty()) return;
    for (std::string channel : {personalChannel(session_->user()), std::string(kOnlineChannel)}) {
        if (channel.empty()) continue;  // a user id that has no personal channel is online all the same
        node_.presenceJoin(connection_.loop().index(), channel, presenceEntry());
        presentIn_.push_back(std::move(channel));
    }
}

void ClientProtocol::handleStatus(const ClientCommand& command) {
    if (!node_.config().client.user_status)
        return replyError(command.id, ErrorCode::PermissionDenied, "clients may not ask for users' status");
    node_.usersOnline(command.users, [self = self(), id = command.id, users = command.users](auto result) {
        net::dispatch(self->connection_.loop().context(), [self, id, users, result = std::move(result)] {
            if (self->state_ != State::Connected) return;
            if (auto* error = std::get_if<BrokerError>(&result))
                return self->replyError(id, errorCodeOf(*error), error->message);
            const auto& online = std::get<std::vector<bool>>(result);
            std::vector<std::pair<std::string, bool>> status;
            status.reserve(users.size());
            for (std::size_t i = 0; i < users.size(); ++i) status.emplace_back(users[i], online[i]);
            self->connection_.sendReply(encodeStatus(id, status));
        });
    });
}

void ClientProtocol::presenceLeave(const std::string& channel) {
    auto it = std::find(presentIn_.begin(), presentIn_.end(), channel);
    if (it == presentIn_.end()) return;
    presentIn_.erase(it);
    node_.presenceLeave(connection_.loop().index(), channel, connection_.id(), "unsubscribed");
}

void ClientProtocol::handlePresence(const ClientCommand& command) {
    if (ChannelCheck check = node_.checkChannel(command.channel); check != ChannelCheck::Ok)
        return refuseChannel(command.id, check);
    const NamespaceConfig* options = node_.config().namespaceFor(command.channel);
    if (!options->presence || !options->client_presence)
        return replyError(command.id, ErrorCode::PermissionDenied,
                          options->presence ? "clients may not ask for this channel's presence"
                                            : "this channel's namespace keeps no presence");
    auto answer = [self = self(), id = command.id, channel = command.channel](auto encode) {
        return [self, id, channel, encode](auto result) {
            net::dispatch(self->connection_.loop().context(), [self, id, channel, encode, result = std::move(result)] {
                if (self->state_ != State::Connected) return;
                if (auto* error = std::get_if<BrokerError>(&result))
                    return self->replyError(id, errorCodeOf(*error), error->message);
                self->connection_.sendReply(encode(id, channel, result));
            });
        };
    };
    if (command.type == CommandType::Presence)
        return node_.presence(command.channel, answer([](RequestId id, const std::string& channel, const auto& result) {
                                  return encodePresence(id, channel, std::get<std::vector<PresenceEntry>>(result));
                              }));
    node_.presenceStats(command.channel, answer([](RequestId id, const std::string& channel, const auto& result) {
                            return encodePresenceStats(id, channel, std::get<PresenceStats>(result));
                        }));
}

bool ClientProtocol::maySubscribe(const ClientCommand& command) {
    SubscribePermission permission = node_.config().namespaceFor(command.channel)->subscribe;
    std::optional<VerifiedToken> token;
    if (permission == SubscribePermission::Token && command.token) {
        auto verifier = node_.credentials().current()->tokens;
        if (!verifier) {
            refuseSubscribe(command, ErrorCode::PermissionDenied, "this server verifies no tokens");
            return false;
        }
        auto result = verifier->verify(*command.token, node_.clock().unixMillis() / 1000);
        if (auto* error = std::get_if<TokenError>(&result)) {
            bool renewable = error->rejection != TokenRejection::Invalid;
            refuseSubscribe(command, renewable ? ErrorCode::TokenExpired : ErrorCode::PermissionDenied,
                            "subscription token: " + error->reason);
            return false;
        }
        token = std::get<VerifiedToken>(std::move(result));
    }
    if (auto refusal = subscribeRefusal(permission, command.channel, session_->user(), token ? &*token : nullptr)) {
        refuseSubscribe(command, ErrorCode::PermissionDenied, *refusal);
        return false;
    }
    return true;
}

void ClientProtocol::refuseSubscribe(const ClientCommand& command, ErrorCode code, std::string_view reason) {
    spdlog::debug("[{}] subscribe to \"{}\" refused (user \"{}\"): {}", connection_.id(), command.channel,
                  session_->user(), reason);
    connection_.loop().metrics().subscribesRefused.add();
    replyError(command.id, code, reason);
}

void ClientProtocol::handleSubscribe(const ClientCommand& command) {
    const std::string& channel = command.channel;
    if (ChannelCheck check = node_.checkChannel(channel); check != ChannelCheck::Ok)
        return refuseChannel(command.id, check);
    if (!maySubscribe(command)) return;
    if (session_->isSubscribed(channel))
        return replyError(command.id, ErrorCode::AlreadySubscribed, "already subscribed");
    if (session_->subscriptionCount() >= node_.config().websocket.max_subscriptions)
        return replyError(command.id, ErrorCode::LimitExceeded, "too many subscriptions");

    bool recovering = command.since.has_value();
    session_->subscribe(channel, command.since, [self = self(), channel, id = command.id, recovering](auto result) {
        if (self->state_ != State::Connected) return;
        if (auto* error = std::get_if<BrokerError>(&result))
            return self->replyError(id, errorCodeOf(*error), error->message);
        const auto& outcome = std::get<SubscribeOutcome>(result);
        LoopMetrics& metrics = self->connection_.loop().metrics();
        if (recovering) (*outcome.recovered ? metrics.recoveries : metrics.recoveryMisses).add();
        // Present before the reply says so: a client told `subscribed` may ask at once.
        self->presenceJoin(channel);
        // Before the recovered publications, which the session delivers once this returns.
        self->connection_.sendReply(encodeSubscribed(id, channel, outcome.position, outcome.recovered));
    });
}

void ClientProtocol::handleHistory(const ClientCommand& command) {
    if (ChannelCheck check = node_.checkChannel(command.channel); check != ChannelCheck::Ok)
        return refuseChannel(command.id, check);
    if (!node_.config().namespaceFor(command.channel)->client_history)
        return replyError(command.id, ErrorCode::PermissionDenied, "clients may not read this channel's history");
    HistoryQuery query{command.historySince, command.limit, command.reverse};
    node_.history(command.channel, query, [self = self(), id = command.id, channel = command.channel](auto result) {
        net::dispatch(self->connection_.loop().context(), [self, id, channel, result = std::move(result)] {
            if (self->state_ != State::Connected) return;
            if (auto* error = std::get_if<BrokerError>(&result))
                return self->replyError(id, errorCodeOf(*error), error->message);
            self->connection_.sendReply(encodeHistory(id, channel, std::get<HistoryPage>(result)));
        });
    });
}

void ClientProtocol::handleUnsubscribe(const ClientCommand& command) {
    // Also keeps the personal "$user:" channel out of reach: '$' makes it an invalid name. The
    // namespace is not checked: a channel of a namespace that does not exist is merely not subscribed.
    if (ChannelCheck check = node_.checkChannel(command.channel); check == ChannelCheck::InvalidName)
        return refuseChannel(command.id, check);
    if (!session_->isSubscribed(command.channel))
        return replyError(command.id, ErrorCode::NotSubscribed, "not subscribed");
    session_->unsubscribe(command.channel);
    // Not the personal channel's entry: it says the user is connected, subscribed or not.
    if (node_.presenceEnabled(command.channel)) presenceLeave(command.channel);
    connection_.sendReply(encodeUnsubscribed(command.id, command.channel));
}

void ClientProtocol::handlePublish(const ClientCommand& command) {
    if (ChannelCheck check = node_.checkChannel(command.channel); check != ChannelCheck::Ok)
        return refuseChannel(command.id, check);
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
    auto waiter = [self = self(), id = command.id, qos](const IdempotencyCache::Response& first) {
        net::dispatch(self->connection_.loop().context(),
                      [self, id, qos, first] { self->replyRemembered(id, qos, first); });
    };
    auto begun = node_.clientPublishes().begin("ws", key, fingerprint, waiter);
    switch (begun.outcome) {
        case IdempotencyCache::Outcome::Replay: return replyRemembered(command.id, qos, begun.response);
        case IdempotencyCache::Outcome::Wait: return;
        case IdempotencyCache::Outcome::Conflict:
            return replyError(command.id, ErrorCode::BadRequest, "this mid was already used for another publication");
        case IdempotencyCache::Outcome::Proceed: break;
    }
    // The engine remembers the key too (with the publication's fingerprint): a resend that comes
    // after this node forgot the mid still publishes nothing new.
    request.idempotencyKey = IdempotencyCache::engineKey(
        "client:" + key, command.channel + '\n' + std::to_string(qos) + '\n' + command.data);
    publishAndReply(std::move(request), command.id, key);
}

void ClientProtocol::publishAndReply(PublishRequest request, std::optional<std::uint64_t> id, std::string dedupKey) {
    int qos = request.qos;
    node_.publish(std::move(request), [self = self(), id, qos, dedupKey](PublishResult result) {
        IdempotencyCache& remembered = self->node_.clientPublishes();
        if (auto* error = std::get_if<BrokerError>(&result)) {
            if (!dedupKey.empty())
                remembered.abandon("ws", dedupKey, IdempotencyCache::Response{500, "", error->message});
            return net::dispatch(self->connection_.loop().context(),
                                 [self, id, code = errorCodeOf(*error), message = error->message] {
                                     self->replyError(id, code, message);
                                 });
        }
        const Publication& publication = *std::get<Published>(result).publication;
        if (!dedupKey.empty()) {
            nlohmann::json fields{
                {"channel", publication.channel}, {"offset", publication.offset}, {"mid", publication.mid}};
            remembered.complete("ws", dedupKey, IdempotencyCache::Response{200, "", fields.dump()});
        }
        std::string reply = qos == 2 ? encodePubrec(id, publication) : encodePublished(id, publication);
        net::dispatch(self->connection_.loop().context(),
                      [self, reply = std::move(reply)]() mutable { self->connection_.sendReply(std::move(reply)); });
    });
}

void ClientProtocol::replyRemembered(std::optional<std::uint64_t> id, int qos,
                                     const IdempotencyCache::Response& first) {
    if (first.status != 200) return replyError(id, ErrorCode::Internal, first.body);
    auto fields = nlohmann::json::parse(first.body, nullptr, false);
    Publication publication;
    publication.channel = fields.value("channel", "");
    publication.offset = fields.value("offset", std::uint64_t{0});
    publication.mid = fields.value("mid", "");
    connection_.sendReply(qos == 2 ? encodePubrec(id, publication) : encodePublished(id, publication));
}

void ClientProtocol::handleQosAnswer(const ClientCommand& command) {
    QosOutcome outcome = command.type == CommandType::Ack   ? session_->onAck(command.did)
                         : command.type == CommandType::Rec ? session_->onRec(command.did)
                                                            : session_->onComp(command.did);
    switch (outcome) {
        case QosOutcome::Completed: connection_.loop().metrics().qosAcks.add(); break;
        case QosOutcome::Ignored: break;  // a late duplicate is expected after a resend: no reply
        case QosOutcome::SendRel:
            connection_.loop().metrics().qosRecs.add();
            connection_.sendReply(encodeRel(command.did));
            break;
        case QosOutcome::ProtocolError:
            replyError(command.id, ErrorCode::QosViolation, "this answer does not fit the delivery's QoS or state");
            break;
    }
}

void ClientProtocol::refuseChannel(std::optional<std::uint64_t> id, ChannelCheck check) {
    switch (check) {
        case ChannelCheck::InvalidName: return replyError(id, ErrorCode::InvalidChannel, "invalid channel name");
        case ChannelCheck::UnknownNamespace: return replyError(id, ErrorCode::UnknownNamespace, "unknown namespace");
        case ChannelCheck::Ok: break;
    }
}

void ClientProtocol::replyError(std::optional<std::uint64_t> id, ErrorCode code, std::string_view message) {
    connection_.loop().metrics().protocolErrors.add();
    connection_.sendReply(encodeError(id, code, message));
}

}  // namespace wspush
