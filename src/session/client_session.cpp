#include "session/client_session.h"

#include <algorithm>

#include <spdlog/spdlog.h>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>

#include "base/durations.h"
#include "node/session_registry.h"
#include "protocol/server_message.h"

namespace wspush {

namespace net = boost::asio;

namespace {

QosTimings timingsFrom(const QosConfig& qos) {
    QosTimings timings;
    timings.ackTimeout = std::chrono::duration_cast<std::chrono::milliseconds>(qos.ack_timeout);
    timings.maxBackoff = std::max(timings.ackTimeout, std::chrono::milliseconds(60000));
    timings.maxRedeliveries = qos.max_redeliveries;
    return timings;
}

}  // namespace

ClientSession::ClientSession(Node& node, EventLoop& loop, std::string id, std::string resumeToken, std::string user)
    : node_(node),
      loop_(&loop),
      id_(std::move(id)),
      resumeToken_(std::move(resumeToken)),
      user_(std::move(user)),
      tracker_(node.config().qos.max_inflight, timingsFrom(node.config().qos)) {
    timer_.emplace(loop.context());
}

bool ClientSession::isSubscribed(std::string_view channel) const {
    return std::find(channels_.begin(), channels_.end(), channel) != channels_.end();
}

std::size_t ClientSession::subscriptionCount() const {
    return static_cast<std::size_t>(
        std::count_if(channels_.begin(), channels_.end(), [](const std::string& c) { return !c.starts_with('$'); }));
}

void ClientSession::subscribe(const std::string& channel, std::optional<StreamPosition> since, SubscribeDone done) {
    // The hub entry comes first and buffers until the position is known: whatever the engine
    // hands this loop from the moment the node joins the channel is kept, so the recovered
    // publications (up to the position) and the live ones (after it) meet without a gap.
    channels_.push_back(channel);
    bool firstOnLoop = !loop_->hub().contains(channel);
    loop_->hub().add(channel, this);
    // The completion may run on another loop (the Redis engine's): it reads nothing of the session
    // there, only the loop and residence captured here; a session that moved meanwhile ignores it
    // (the new loop found no position for the channel and asks the client to subscribe again).
    node_.subscribe(channel, loop_->index(), firstOnLoop, std::move(since),
                    [self = shared_from_this(), loop = loop_, residence = onLoop_, channel,
                     done = std::move(done)](auto result) mutable {
                        net::dispatch(loop->context(), [self, residence, channel, done = std::move(done),
                                                        result = std::move(result)]() mutable {
                            if (!*residence || self->moving_ || self->ended_ || !self->isSubscribed(channel)) return;
                            if (auto* error = std::get_if<BrokerError>(&result)) {
                                self->unsubscribe(channel);
                                return done(std::move(*error));
                            }
                            auto& outcome = std::get<SubscribeOutcome>(result);
                            // `done` sees them too (an inbox counts them): pointers, copied once.
                            Recovery recovery{channel, outcome.missed, 0, outcome.position};
                            done(std::move(outcome));
                            if (self->ended_ || !self->isSubscribed(channel)) return;
                            self->recoveries_.push_back(std::move(recovery));
                            self->continueRecoveries();
                        });
                    });
}

void ClientSession::unsubscribe(const std::string& channel) {
    auto it = std::find(channels_.begin(), channels_.end(), channel);
    if (it == channels_.end()) return;
    channels_.erase(it);
    std::erase_if(recoveries_, [&](const Recovery& r) { return r.channel == channel; });
    leaveChannel(channel);
}

bool ClientSession::roomToRecover() const {
    // Half of each bound: live traffic keeps the other half, so a recovery never makes the
    // client look like a slow consumer.
    if (waitingCount() >= std::max<std::size_t>(node_.config().sessions.max_queued / 2, 1)) return false;
    return connection_ == nullptr || connection_->hasRoom();
}

void ClientSession::continueRecoveries() {
    while (!recoveries_.empty()) {
        Recovery& recovery = recoveries_.front();
        while (recovery.next < recovery.missed.size()) {
            if (!roomToRecover()) {
                // Resumed by the connection draining, or by acks making room in the QoS queue
                // (onAck, onComp), or by a connection attaching.
                if (connection_ && !waitingToRecover_) {
                    waitingToRecover_ = true;
                    connection_->whenWritable([self = shared_from_this(), residence = onLoop_] {
                        self->waitingToRecover_ = false;
                        if (*residence) self->continueRecoveries();
                    });
                }
                return;
            }
            const PublicationPtr& publication = recovery.missed[recovery.next++];
            deliver(publication, std::make_shared<const std::string>(encodeMessage(*publication)));
            if (ended_) return;
        }
        std::string channel = std::move(recovery.channel);
        StreamPosition position = std::move(recovery.position);
        recoveries_.pop_front();
        loop_->hub().goLive(channel, this, position);
    }
}

void ClientSession::leaveChannel(const std::string& channel) {
    bool lastOnLoop = loop_->hub().remove(channel, this);
    node_.unsubscribe(channel, loop_->index(), lastOnLoop);
}

void ClientSession::lost(const std::string& channel) {
    loop_->metrics().subscriptionsLost.add();
    lostChannels_.push_back(channel);
    if (lostChannels_.size() > 1) return;  // the handler is posted already
    // The hub is delivering: entries must not vanish under it, so the channel is left afterwards.
    net::post(loop_->context(), [self = shared_from_this(), residence = onLoop_] {
        if (*residence) self->dropLostChannels();
    });
}

void ClientSession::dropLostChannels() {
    if (moving_) return;  // enterLoop drops them: the move's hops rely on an unchanging channel list
    for (const std::string& channel : std::exchange(lostChannels_, {})) {
        if (ended_ || !isSubscribed(channel)) continue;
        unsubscribe(channel);
        if (channel.starts_with('$')) {
            // The personal channel is the server's to hold, and no client may name it: join it again.
            spdlog::info("session {}: gap in {}; joining it again", id_, channel);
            subscribe(channel, std::nullopt, [self = shared_from_this()](const auto& result) {
                auto* error = std::get_if<BrokerError>(&result);
                if (error == nullptr) return;
                // Without it no send would reach the user: end the session, so that the client's
                // next connect makes one that joins the channel (or is refused until it can).
                spdlog::warn("session {}: cannot join its user's channel again: {}", self->id_, error->message);
                if (self->connection_) self->connection_->closeFor(disconnects::kUnavailable);
                self->end();
            });
            continue;
        }
        spdlog::debug("session {}: gap in {}; asking the client to subscribe again", id_, channel);
        unsubscribedNotices_.push_back(channel);
    }
    sendUnsubscribedNotices();
}

void ClientSession::sendUnsubscribedNotices() {
    if (!connection_) return;  // kept for the client's resume
    for (const std::string& channel : std::exchange(unsubscribedNotices_, {}))
        connection_->sendFrame(OutboundFrame::text(
            std::make_shared<const std::string>(encodeUnsubscribedPush(channel, "insufficient state", true))));
}

void ClientSession::attach(SessionConnection* connection) {
    connection_ = connection;
    expiresAt_ = TimePoint::max();
    if (inbox_ && !inbox_->missedAway.empty()) {
        for (std::uint64_t offset : std::exchange(inbox_->missedAway, {})) inbox_->progress.finished(offset);
        saveInboxCursor(false);
    }
    tracker_.resendAll(node_.clock().now(), [this](const auto& r) { resend(r); });
    sendWaiting();
    sendUnsubscribedNotices();
    waitingToRecover_ = false;  // a callback registered with an earlier connection is gone with it
    continueRecoveries();
    if (auto due = tracker_.nextDue()) armTimer(*due);
}

void ClientSession::detach(SessionConnection* connection, bool endSession) {
    if (connection_ != connection) return;
    connection_ = nullptr;
    saveInboxCursor(true);
    if (endSession) return endSoon();
    expiresAt_ = node_.clock().now() + toClock(node_.config().sessions.ttl);
    armTimer(expiresAt_);
}

void ClientSession::deliver(const PublicationPtr& publication, const SharedFrame& frame) {
    if (ended_) return;
    if (publication->event) {
        // A join or leave: for whoever is connected now; presence tells a later client the rest.
        if (connection_) connection_->sendFrame(OutboundFrame::text(frame));
        return;
    }
    if (publication->report && connection_) publication->report->reached();
    loop_->metrics().deliveries[static_cast<std::size_t>(std::clamp(publication->qos, 0, 2))].add();
    std::uint64_t inboxOffset = 0;
    if (inbox_ && publication->channel == inbox_->channel) {
        // QoS 0 is finished once sent, QoS ≥ 1 once acknowledged. A QoS 0 message missed while
        // the client is away stays open: if the client resumes, it accepted the loss (at most
        // once, attach() closes it); if it never does, the device's next session gets it from
        // the inbox.
        bool sent = publication->qos == 0 && connection_ != nullptr;
        inbox_->progress.delivered(*publication, sent);
        if (sent)
            saveInboxCursor(false);
        else if (publication->qos == 0)
            inbox_->missedAway.push_back(publication->offset);
        else
            inboxOffset = publication->offset;
    }
    if (publication->qos == 0) {
        // At most once: a client that is away misses it.
        if (connection_)
            connection_->sendFrame(OutboundFrame::text(frame));
        else
            loop_->metrics().qos0DroppedAway.add();
        return;
    }
    Pending pending{frame, publication->qos, publication->report, inboxOffset};
    if (connection_ && waitingCount() == 0 && tracker_.hasRoom()) return transmitNew(std::move(pending));
    if (waitingCount() >= node_.config().sessions.max_queued) {
        loop_->metrics().sessionOverflows.add();
        if (connection_) {
            // The client reads too slowly for its QoS traffic: drop the connection, keep the session.
            spdlog::info("session {}: {} QoS deliveries waiting; closing its connection as a slow consumer", id_,
                         waitingCount());
            connection_->closeFor(disconnects::kSlowConsumer);
        } else {
            // Away (the connection was closed above, or lost) and still more arrives: holding it all
            // would let one absent client grow memory without bound, so the session ends, and the
            // deliveries it could not finish are counted (wspush_qos_abandoned_total) and logged.
            spdlog::info("session {}: more than {} QoS deliveries while away; ending it", id_, waitingCount());
            return endSoon();
        }
    }
    waiting_.push_back(std::move(pending));
}

void ClientSession::transmitNew(Pending pending) {
    SharedFrame frame = pending.frame;
    int qos = pending.qos;
    DeliveryId did = tracker_.track(std::move(pending), qos, node_.clock().now());
    transmit(did, frame, false);
    armTimer(node_.clock().now() + toClock(node_.config().qos.ack_timeout));
}

void ClientSession::transmit(DeliveryId did, const SharedFrame& frame, bool dup) {
    // A connection that cannot take it is closing; the delivery stays tracked and goes out again on resume.
    if (connection_) connection_->sendFrame(OutboundFrame::text(frame, encodeDeliverySuffix(did, dup)));
}

void ClientSession::resend(const typename QosTracker<Pending>::Resend& r) {
    loop_->metrics().qosRedeliveries.add();
    if (r.message != nullptr) return transmit(r.did, r.message->frame, true);
    if (connection_) connection_->sendFrame(OutboundFrame::text(std::make_shared<const std::string>(encodeRel(r.did))));
}

void ClientSession::sendWaiting() {
    while (connection_ && waitingCount() > 0 && tracker_.hasRoom()) {
        Pending pending = std::move(waiting_[waitingHead_++]);
        transmitNew(std::move(pending));
    }
    if (waitingCount() == 0) {
        waitingHead_ = 0;
        waiting_.clear();
        if (waiting_.capacity() > 64) waiting_.shrink_to_fit();  // an idle session holds nothing
    }
}

std::shared_ptr<DeliveryReport> ClientSession::reportOf(DeliveryId did) const {
    const Pending* pending = tracker_.messageOf(did);
    return pending == nullptr ? nullptr : pending->report;
}

QosOutcome ClientSession::onAck(DeliveryId did) {
    auto report = reportOf(did);
    const Pending* pending = tracker_.messageOf(did);
    std::uint64_t inboxOffset = pending ? pending->inboxOffset : 0;
    QosOutcome outcome = tracker_.onAck(did);
    if (outcome == QosOutcome::Completed) {
        if (report) report->acked();
        if (inboxOffset != 0) inboxFinished(inboxOffset);
        sendWaiting();
        if (!recoveries_.empty()) continueRecoveries();
    }
    return outcome;
}

QosOutcome ClientSession::onRec(DeliveryId did) {
    // For a backend waiting on acks, QoS 2 counts at `rec`: the application has the message then.
    bool firstRec = tracker_.stateOf(did) == DeliveryState::AwaitingRec;
    auto report = reportOf(did);
    const Pending* pending = tracker_.messageOf(did);
    std::uint64_t inboxOffset = pending && firstRec ? pending->inboxOffset : 0;
    QosOutcome outcome = tracker_.onRec(did, node_.clock().now());
    if (outcome == QosOutcome::SendRel && firstRec && report) report->acked();
    // QoS 2 too is the device's at `rec`: the application has it then.
    if (outcome == QosOutcome::SendRel && inboxOffset != 0) inboxFinished(inboxOffset);
    return outcome;
}

QosOutcome ClientSession::onComp(DeliveryId did) {
    QosOutcome outcome = tracker_.onComp(did);
    if (outcome == QosOutcome::Completed) {
        sendWaiting();
        if (!recoveries_.empty()) continueRecoveries();
    }
    return outcome;
}

std::vector<std::string> ClientSession::prepareMove() {
    moving_ = true;
    if (connection_) connection_->closeFor(disconnects::kTakenOver);  // detaches it
    connection_ = nullptr;
    timer_->cancel();
    armedFor_ = TimePoint::max();
    return channels_;
}

void ClientSession::holdPlace(EventLoop& loop, const std::vector<std::string>& channels) {
    // On the new loop, touching only its hub: the session itself still belongs to the old one.
    for (const auto& channel : channels) {
        bool firstOnLoop = !loop.hub().contains(channel);
        loop.hub().add(channel, this);
        // The old loop's entry keeps the node subscribed, so this completes at once.
        node_.join(channel, loop.index(), firstOnLoop, [](std::optional<BrokerError>) {});
    }
}

ChannelPositions ClientSession::leaveLoop() {
    // What the router handed this loop before the new loop joined must reach the session here:
    // the delivery window (websocket.write_delay) may still be holding some of it.
    loop_->deliverPending();
    ChannelPositions positions;
    for (const auto& channel : channels_) {
        positions.emplace_back(channel, loop_->hub().positionOf(channel, this));
        leaveChannel(channel);
    }
    // A recovery under way is not carried over: its channel has no position yet, so the new
    // loop asks the client to subscribe again (and recover again) instead.
    recoveries_.clear();
    waitingToRecover_ = false;
    *onLoop_ = false;  // handlers still queued on this loop for the session now do nothing
    timer_.reset();    // bound to this loop
    return positions;
}

void ClientSession::enterLoop(EventLoop& loop, const ChannelPositions& positions) {
    loop_ = &loop;
    onLoop_ = std::make_shared<bool>(true);
    timer_.emplace(loop.context());
    armedFor_ = TimePoint::max();
    for (const auto& [channel, position] : positions) {
        // The new entry buffered since before the old loop let go, so between them they saw
        // everything; goLive delivers what the old loop had not, past the old position.
        if (position)
            loop.hub().goLive(channel, this, *position);
        else
            lost(channel);
    }
    moving_ = false;
    if (!lostChannels_.empty()) dropLostChannels();
    expiresAt_ = node_.clock().now() + toClock(node_.config().sessions.ttl);
    armTimer(expiresAt_);
}

void ClientSession::endSoon() {
    // Called from delivery or close paths, which must not see hub entries vanish under them.
    net::post(loop_->context(), [self = shared_from_this(), residence = onLoop_] {
        if (*residence) self->end();
    });
}

void ClientSession::trackInbox(std::string device, StreamPosition start) {
    inbox_ = std::make_unique<InboxReading>(
        InboxReading{personalChannel(user_), std::move(device), InboxProgress(start), start, node_.clock().now()});
}

void ClientSession::inboxFinished(std::uint64_t offset) {
    inbox_->progress.finished(offset);
    saveInboxCursor(false);
}

void ClientSession::saveInboxCursor(bool now) {
    if (!inbox_) return;
    StreamPosition cursor = inbox_->progress.cursor();
    if (cursor.offset == inbox_->saved.offset && cursor.epoch == inbox_->saved.epoch) return;
    // At most once a second while messages flow; what is left is saved when the connection or
    // the session ends, so a cursor lags by a second at worst (its messages come again, at least once).
    if (!now && node_.clock().now() - inbox_->savedAt < std::chrono::seconds(1)) return;
    inbox_->saved = cursor;
    inbox_->savedAt = node_.clock().now();
    node_.inboxAdvance(user_, inbox_->device, std::move(cursor));
}

void ClientSession::end() {
    if (ended_ || moving_) return;
    saveInboxCursor(true);
    ended_ = true;
    for (const auto& channel : channels_) leaveChannel(channel);
    channels_.clear();
    if (timer_) timer_->cancel();
    std::size_t unfinished = tracker_.inflight() + waitingCount();
    if (unfinished > 0) {
        // Counted; those of a tracked inbox come again at the device's next connect.
        loop_->metrics().qosAbandoned.add(unfinished);
        spdlog::debug("session {} ended with {} unfinished QoS deliveries", id_, unfinished);
    }
    loop_->metrics().sessionsEnded.add();
    node_.sessions().remove(id_);
}

void ClientSession::armTimer(TimePoint at) {
    if (at >= armedFor_ || !timer_) return;
    armedFor_ = at;
    // Relative to the node's clock, which is what every deadline here is read from.
    timer_->expires_after(at - node_.clock().now());
    timer_->async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
        if (!ec) self->checkDeadlines();
    });
}

void ClientSession::checkDeadlines() {
    if (ended_ || moving_) return;
    armedFor_ = TimePoint::max();
    auto now = node_.clock().now();
    if (connection_) {
        if (!tracker_.resendDue(now, [this](const auto& r) { resend(r); })) {
            loop_->metrics().unhealthyCloses.add();
            connection_->closeFor(disconnects::kUnhealthy);  // detaches, which arms the expiry
            return;
        }
        if (auto due = tracker_.nextDue()) armTimer(*due);
        return;
    }
    if (now >= expiresAt_) return end();
    armTimer(expiresAt_);
}

}  // namespace wspush
