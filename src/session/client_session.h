// A client session: who the client is, what it subscribed to, and its unfinished QoS ≥ 1
// deliveries. It outlives connections (docs/protocol.md, "Sessions"): a connection attaches to it,
// and when the connection is lost the session waits `sessions.ttl` for the client to resume.
//
// The session is what the hub delivers to. It lives on one event loop at a time and is only
// touched there; a client that resumes on another loop makes it move (prepareMove → leaveLoop on
// the old loop, enterLoop on the new one), without losing or repeating a publication.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "node/event_loop.h"
#include "node/frame.h"
#include "node/local_hub.h"
#include "node/node.h"
#include "session/qos_tracker.h"
#include "wspush/codes.h"

namespace wspush {

// What a session needs from the connection attached to it (WebSocketSession).
class SessionConnection {
public:
    virtual ~SessionConnection() = default;
    // Queues a frame for the client; false when the connection cannot take it (it is closing).
    virtual bool sendFrame(OutboundFrame frame) = 0;
    // Closes the connection for `reason`; the connection detaches from the session at once.
    virtual void closeFor(const Disconnect& reason) = 0;
};

// Stands in for a moving session in the new loop's hub and keeps what arrives meanwhile.
class MigrationBuffer final : public Subscriber {
public:
    void deliver(const PublicationPtr& publication, const SharedFrame& frame) override {
        held.emplace_back(publication, frame);
    }
    std::vector<std::pair<PublicationPtr, SharedFrame>> held;
};

// A channel and the offset of the last publication the session got from it.
using ChannelOffsets = std::vector<std::pair<std::string, std::uint64_t>>;

class ClientSession final : public Subscriber, public std::enable_shared_from_this<ClientSession> {
public:
    using Clock = std::chrono::steady_clock;
    using PositionDone = std::function<void(std::variant<StreamPosition, BrokerError>)>;

    ClientSession(Node& node, EventLoop& loop, std::string id, std::string resumeToken, std::string user);

    const std::string& id() const { return id_; }
    const std::string& resumeToken() const { return resumeToken_; }
    const std::string& user() const { return user_; }
    EventLoop& loop() const { return *loop_; }
    bool ended() const { return ended_; }

    bool isSubscribed(std::string_view channel) const;
    // Channels the client chose (the personal "$user:" channel is not one of them).
    std::size_t subscriptionCount() const;
    // Joins `channel` and learns its position; `done` runs on this loop, unless the session
    // unsubscribed or ended first. Publications after that position are delivered.
    void subscribe(const std::string& channel, PositionDone done);
    void unsubscribe(const std::string& channel);

    SessionConnection* connection() const { return connection_; }
    // Resends every unfinished delivery (dup), then sends what waited.
    void attach(SessionConnection* connection);
    // The connection is gone. `endSession`: the client said goodbye (close 1000), don't wait for it.
    void detach(SessionConnection* connection, bool endSession);
    // The connection is being destroyed with its loop (shutdown): just stop pointing at it.
    void forget(SessionConnection* connection) {
        if (connection_ == connection) connection_ = nullptr;
    }

    // The client's answers to QoS deliveries (docs/protocol.md, "QoS").
    QosOutcome onAck(DeliveryId did);
    QosOutcome onRec(DeliveryId did);
    QosOutcome onComp(DeliveryId did);

    void deliver(const PublicationPtr& publication, const SharedFrame& frame) override;

    // Moving to another loop. prepareMove and leaveLoop run on the old loop (the new loop's hub
    // holds a MigrationBuffer for every channel in between), enterLoop on the new one.
    std::vector<std::string> prepareMove();
    ChannelOffsets leaveLoop();
    void enterLoop(EventLoop& loop, const ChannelOffsets& offsets, MigrationBuffer& buffer);

    // Ends the session now: leaves every channel and forgets it. Idempotent.
    void end();

private:
    struct Pending {
        SharedFrame frame;
        int qos = 0;
        std::shared_ptr<DeliveryReport> report;
    };

    void leaveChannel(const std::string& channel);
    void transmitNew(Pending pending);
    void transmit(DeliveryId did, const SharedFrame& frame, bool dup);
    void sendWaiting();
    void resend(const typename QosTracker<Pending>::Resend& resend);
    std::shared_ptr<DeliveryReport> reportOf(DeliveryId did) const;
    void endSoon();
    void armTimer(Clock::time_point at);
    void onTimer(const boost::system::error_code& ec);
    std::size_t waitingCount() const { return waiting_.size() - waitingHead_; }

    Node& node_;
    EventLoop* loop_;
    std::string id_;
    std::string resumeToken_;
    std::string user_;
    std::vector<std::string> channels_;
    SessionConnection* connection_ = nullptr;
    QosTracker<Pending> tracker_;
    // QoS ≥ 1 deliveries waiting for room in the inflight window (or for a connection), in order.
    std::vector<Pending> waiting_;
    std::size_t waitingHead_ = 0;
    bool ended_ = false;
    bool moving_ = false;
    // One timer: resends while attached, expiry while detached. Recreated on each loop it lives on.
    std::optional<boost::asio::steady_timer> timer_;
    Clock::time_point armedFor_ = Clock::time_point::max();
    Clock::time_point expiresAt_ = Clock::time_point::max();
};

}  // namespace wspush
