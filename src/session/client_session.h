// A client session: who the client is, what it subscribed to, and its unfinished QoS ≥ 1
// deliveries. It outlives connections (docs/protocol.md, "Sessions"): a connection attaches to it,
// and when the connection is lost the session waits `sessions.ttl` for the client to resume.
//
// The session is what the hub delivers to. It lives on one event loop at a time and is only
// touched there; a client that resumes on another loop makes it move (session_move.cpp: prepareMove
// and leaveLoop on the old loop, holdPlace and enterLoop on the new one), without losing or
// repeating a publication. While it moves, its channel list does not change.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "node/event_loop.h"
#include "node/local_hub.h"
#include "node/node.h"
#include "protocol/frame.h"
#include "session/inbox_progress.h"
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
    // Whether the write queue is below half its bounds: a sender with more to come than the
    // queue may hold (a recovery) sends while this holds, then waits for whenWritable.
    virtual bool hasRoom() const = 0;
    // Calls `callback` once, on the connection's loop, when hasRoom() holds again after a write.
    // Dropped if the connection closes first. A later call replaces an earlier one.
    virtual void whenWritable(std::function<void()> callback) = 0;
};

// A channel and the position of the last publication the session got from it; nullopt when the
// session cannot know it (its subscribe was still under way, or the hub found a gap).
using ChannelPositions = std::vector<std::pair<std::string, std::optional<StreamPosition>>>;

class ClientSession final : public Subscriber, public std::enable_shared_from_this<ClientSession> {
public:
    using TimePoint = std::chrono::steady_clock::time_point;
    using SubscribeDone = std::function<void(std::variant<SubscribeOutcome, BrokerError>)>;

    ClientSession(Node& node, EventLoop& loop, std::string id, std::string resumeToken, std::string user);

    const std::string& id() const { return id_; }
    const std::string& resumeToken() const { return resumeToken_; }
    const std::string& user() const { return user_; }
    EventLoop& loop() const { return *loop_; }
    bool ended() const { return ended_; }

    bool isSubscribed(std::string_view channel) const;
    // Every channel the session is in, the personal one included.
    const std::vector<std::string>& channels() const { return channels_; }
    // Channels the client chose (the personal "$user:" channel is not one of them).
    std::size_t subscriptionCount() const;
    // Joins `channel` and learns its position and, with `since`, recovers what was missed after
    // it. `done` runs on this loop, unless the session unsubscribed or ended first, and before the
    // recovered publications are delivered; then publications after the position follow live,
    // with no gap and no duplicate between the recovered and the live ones.
    void subscribe(const std::string& channel, std::optional<StreamPosition> since, SubscribeDone done);
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

    // The session reads its user's inbox as `device`, from `start` (its cursor): the messages of
    // the personal channel it finishes move the device's cursor (InboxProgress), saved through
    // Node::inboxAdvance at most once a second and when the connection or the session ends.
    void trackInbox(std::string device, StreamPosition start);

    // The client's answers to QoS deliveries (docs/protocol.md, "QoS").
    QosOutcome onAck(DeliveryId did);
    QosOutcome onRec(DeliveryId did);
    QosOutcome onComp(DeliveryId did);

    void deliver(const PublicationPtr& publication, const SharedFrame& frame) override;
    // The hub found a gap: the subscription ends and the client is told to subscribe again with
    // `since` (`unsubscribed` with `resubscribe:true`), now or when it reconnects.
    void lost(const std::string& channel) override;

    // Moving to another loop, in four hops: prepareMove (old loop), holdPlace (new loop: the
    // session's hub entries buffer there from now on), leaveLoop (old loop), enterLoop (new).
    // Between holdPlace and leaveLoop both loops receive the channels, so nothing falls between.
    std::vector<std::string> prepareMove();
    void holdPlace(EventLoop& loop, const std::vector<std::string>& channels);
    ChannelPositions leaveLoop();
    void enterLoop(EventLoop& loop, const ChannelPositions& positions);

    // Ends the session now: leaves every channel and forgets it. Idempotent.
    void end();

    // What the session's timer does when it fires: resends what is due (closing a connection
    // whose client stopped answering), or ends the session once it has waited sessions.ttl for
    // its client. Reads the node's clock, so tests call it after moving a ManualClock.
    void checkDeadlines();

private:
    struct Pending {
        SharedFrame frame;
        int qos = 0;
        std::shared_ptr<DeliveryReport> report;
        std::uint64_t inboxOffset = 0;  // of a message of the tracked inbox; 0 otherwise
    };

    void leaveChannel(const std::string& channel);
    // Delivers recovered publications while the connection (and the QoS queue) has room, then
    // lets the channel's hub entry go live; resumes when the connection drains or acks arrive.
    void continueRecoveries();
    bool roomToRecover() const;
    void dropLostChannels();
    void sendUnsubscribedNotices();
    void transmitNew(Pending pending);
    void transmit(DeliveryId did, const SharedFrame& frame, bool dup);
    void sendWaiting();
    void resend(const typename QosTracker<Pending>::Resend& resend);
    std::shared_ptr<DeliveryReport> reportOf(DeliveryId did) const;
    void endSoon();
    // An inbox message is finished on the device; saves the cursor unless saved less than a second ago.
    void inboxFinished(std::uint64_t offset);
    void saveInboxCursor(bool now);
    void armTimer(TimePoint at);
    std::size_t waitingCount() const { return waiting_.size() - waitingHead_; }

    // The inbox this session reads for its device (trackInbox), and when its cursor was saved.
    struct InboxReading {
        std::string channel;
        std::string device;
        InboxProgress progress;
        StreamPosition saved;
        TimePoint savedAt{};
        std::vector<std::uint64_t> missedAway{};  // QoS 0 messages that came while the client was away
    };

    Node& node_;
    EventLoop* loop_;
    // What every delivery reads comes first, beside the vtable: at one message per delivery each
    // cache line of a session is a miss per subscriber per publication.
    SessionConnection* connection_ = nullptr;
    std::unique_ptr<InboxReading> inbox_;
    bool ended_ = false;
    bool moving_ = false;
    std::string id_;
    std::string resumeToken_;
    std::string user_;
    std::vector<std::string> channels_;
    // Subscribes whose missed publications are still being delivered, in the order they completed;
    // their hub entries keep buffering the live publications until then.
    struct Recovery {
        std::string channel;
        std::vector<PublicationPtr> missed;
        std::size_t next = 0;
        StreamPosition position;
    };
    std::deque<Recovery> recoveries_;
    bool waitingToRecover_ = false;  // a whenWritable callback is registered
    // Channels the hub found a gap in, not dropped yet; and dropped ones the client was not told of.
    std::vector<std::string> lostChannels_;
    std::vector<std::string> unsubscribedNotices_;
    // True while the session lives on the loop that created it; handlers posted to a loop check
    // theirs, so one that runs after the session moved away touches nothing (session_move).
    std::shared_ptr<bool> onLoop_ = std::make_shared<bool>(true);
    QosTracker<Pending> tracker_;
    // QoS ≥ 1 deliveries waiting for room in the inflight window (or for a connection), in order.
    std::vector<Pending> waiting_;
    std::size_t waitingHead_ = 0;
    // One timer: resends while attached, expiry while detached. Recreated on each loop it lives on.
    std::optional<boost::asio::steady_timer> timer_;
    TimePoint armedFor_ = TimePoint::max();
    TimePoint expiresAt_ = TimePoint::max();
};

}  // namespace wspush
