// Protocol v1 (docs/protocol.md) on one connection: turns each command the client sends into work
// and replies, and starts or resumes the client's session on `connect`. It reaches its connection
// only through ClientConnection, so it holds no socket: WebSocketSession owns one and hands it
// the text messages it reads. Lives on the connection's loop; every call runs on that thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/steady_timer.hpp>

#include "auth/token_verifier.h"
#include "node/event_loop.h"
#include "node/node.h"
#include "protocol/client_command.h"
#include "protocol/server_message.h"
#include "session/client_session.h"
#include "session/command_rate_limit.h"
#include "wspush/codes.h"

namespace wspush {

// What ClientProtocol needs from its connection. The session attached to the connection uses
// the SessionConnection part (sendFrame is the delivery path, straight to the connection).
class ClientConnection : public SessionConnection {
public:
    // Queues a reply for the client; ignored once the connection is closing.
    virtual void sendReply(std::string message) = 0;
    // The client is connected: the deadline for sending `connect` no longer applies.
    virtual void connectAccepted() = 0;
    virtual EventLoop& loop() = 0;
    // The connection's id, for logs and the `connected` reply.
    virtual const std::string& id() const = 0;
    // The client's address, for the logs of refusals.
    virtual std::string peer() const = 0;
    // Keeps the connection, and the ClientProtocol it owns, alive while held: completions that
    // arrive after the handler that started them returned hold one.
    virtual std::shared_ptr<void> keepAlive() = 0;
};

class ClientProtocol {
public:
    ClientProtocol(Node& node, ClientConnection& connection);
    // At shutdown only (a connection destroyed with its loop), the session still points at the connection.
    ~ClientProtocol();
    ClientProtocol(const ClientProtocol&) = delete;
    ClientProtocol& operator=(const ClientProtocol&) = delete;

    // Handles every command of one text message, in order. Stops early when one of them closes
    // the connection.
    void handleMessage(std::string_view message);

    // The connection is closing or gone: no more commands or replies. Detaches the session, which
    // keeps what it could not deliver for the client's resume, or, with `endSession` (the client
    // closed with 1000), ends at once. Idempotent.
    void connectionClosed(bool endSession);

    // A disconnect request (POST /api/disconnect): when this connection's client is `target`
    // (its user, or this connection's id), ends the session, which can then not be resumed, and
    // closes with 4503 (4007 with `reconnect`) and a `disconnect` message. Otherwise nothing.
    void disconnect(const DisconnectTarget& target);

private:
    // Connecting: `connect` was accepted and its reply waits, for a session living on another loop
    // to move here, or for the node to join a new session's personal channel.
    // Closed: the connection is closing; commands still in a message are ignored.
    enum class State { AwaitingConnect, Connecting, Connected, Closed };
    using TimePoint = std::chrono::steady_clock::time_point;

    std::shared_ptr<ClientProtocol> self() { return {connection_.keepAlive(), this}; }

    bool handleCommand(ClientCommand& command);  // false: stop reading this message's other commands
    // False when the rate limits refuse the command (`type` nullopt: a piece that did not parse):
    // it was answered with error 116, or the connection is closing with 4009.
    bool withinRate(std::optional<CommandType> type, std::optional<std::uint64_t> id);
    bool handleConnect(const ClientCommand& command);
    // Verifies a connection token; refuses it (error 101 and close 4501, or 114 and close 4006
    // when a new token would do; a `refreshing` connection keeps its current token after a 114)
    // and returns nullopt when it does not pass.
    std::optional<VerifiedToken> verifyToken(std::optional<std::uint64_t> id, std::string_view token, bool refreshing);
    void handleRefresh(const ClientCommand& command);
    // Closes the connection with 4006 once its token expires (after `connected` and each refresh).
    void watchTokenExpiry();
    // Counts this connection for `user` (limits.connections_per_user); false when the user has
    // enough already: the connect was answered with error 106, and the connection closes with 4010.
    bool admitUser(const std::string& user, std::optional<std::uint64_t> connectId);
    void startNewSession(std::string user);
    void tryResume(std::string id, std::string token, std::string user, TimePoint giveUpAt);
    void resumeHere(std::shared_ptr<ClientSession> session);
    // A new session joins its user's personal channel, from the device's inbox cursor when it has one.
    void joinPersonalChannel(std::shared_ptr<ClientSession> session, std::optional<StreamPosition> inboxCursor);
    void refuseJoin(std::shared_ptr<ClientSession> session, const BrokerError& error);
    void sessionReady(std::shared_ptr<ClientSession> session, bool resumed,
                      std::optional<ConnectedReply::Inbox> inbox = std::nullopt);
    void handleSubscribe(const ClientCommand& command);
    // Checks the namespace's `subscribe` permission (and a subscription token); replies 103 or
    // 114 and returns false when it refuses.
    bool maySubscribe(const ClientCommand& command);
    void refuseSubscribe(const ClientCommand& command, ErrorCode code, std::string_view reason);
    void handleUnsubscribe(const ClientCommand& command);
    void handlePublish(const ClientCommand& command);
    void handleHistory(const ClientCommand& command);
    void handlePresence(const ClientCommand& command);
    void handleStatus(const ClientCommand& command);
    // This connection is present in `channel` / is no more, as it unsubscribed (namespaces with
    // `presence`).
    void presenceJoin(const std::string& channel);
    void presenceLeave(const std::string& channel);
    // A connection of a user is present in the user's personal channel (GET /api/users/{id}) and
    // among the users online (Node::onlineUsers), whatever it subscribes to.
    void joinUserPresence();
    PresenceEntry presenceEntry() const;
    void handleQosAnswer(const ClientCommand& command);
    // `dedupKey` non-empty: remember the outcome under it in Node::clientPublishes().
    void publishAndReply(PublishRequest request, std::optional<std::uint64_t> id, std::string dedupKey);
    void replyRemembered(std::optional<std::uint64_t> id, int qos, const IdempotencyCache::Response& first);
    // Answers a channel Node::checkChannel refused with its error (110, 102); nothing for Ok.
    void refuseChannel(std::optional<std::uint64_t> id, ChannelCheck check);
    void replyError(std::optional<std::uint64_t> id, ErrorCode code, std::string_view message);

    Node& node_;
    ClientConnection& connection_;
    State state_ = State::AwaitingConnect;
    std::shared_ptr<ClientSession> session_;
    std::shared_ptr<ClientSession> joining_;                // a new session joining its personal channel
    std::optional<std::uint64_t> connectId_;                // the id of the `connect` being answered
    std::int64_t connectedAtMs_ = 0;                        // when `connected` was sent (Unix ms)
    std::string device_;                                    // from `connect`, "" when none
    std::string info_;                                      // from `connect`: a JSON object's text, "" when none
    std::vector<std::string> presentIn_;                    // channels this connection has a presence entry in
    std::optional<std::int64_t> tokenExpiresAt_;            // the connection token's `exp`, when it has one
    std::optional<boost::asio::steady_timer> tokenExpiry_;  // ends the connection at that time
    CommandRateLimit rates_;
    UserConnectionCount::Slot userSlot_;  // this connection, counted for its user while it lasts
};

}  // namespace wspush
