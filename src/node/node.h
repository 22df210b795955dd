// The node: what every connection and API request on this process shares. It owns the engine
// (Broker) and the ChannelRouter, and it is where the layers above meet the engine: subscribe,
// unsubscribe, publish and history are Node operations, so that nothing above reaches into the
// router or the engine, and the node's interest in a channel changes in one place, under one
// per-channel serialization (see ChannelInterest in node.cpp).
#pragma once

#include <array>
#include <boost/asio/post.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "auth/credentials.h"
#include "base/clock.h"
#include "base/string_hash.h"
#include "node/channel_router.h"
#include "node/connection_gate.h"
#include "node/event_loop.h"
#include "node/idempotency_cache.h"
#include "node/local_presence.h"
#include "node/session_registry.h"
#include "node/user_connection_count.h"
#include "protocol/server_message.h"
#include "wspush/broker.h"
#include "wspush/channel_name.h"
#include "wspush/config.h"
#include "wspush/inbox_store.h"
#include "wspush/presence_store.h"
#include "wspush/webhook_stream.h"

namespace wspush {

enum class ChannelCheck { Ok, InvalidName, UnknownNamespace };

// What a subscribe found. With `since`: `recovered` says whether `missed` holds every publication
// after it up to `position` (never a part of them); without, `recovered` is unset and `missed` empty.
struct SubscribeOutcome {
    StreamPosition position;
    std::optional<bool> recovered;
    std::vector<PublicationPtr> missed;
    // A user's inbox (its personal channel with `since`): `missed` is whatever is still kept past
    // `since`, and this many publications between them expired or overflowed before it.
    std::uint64_t dropped = 0;
};
using SubscribeDone = std::function<void(std::variant<SubscribeOutcome, BrokerError>)>;

// The engine's parts, as server.cpp's makeEngine chooses them.
struct NodeEngine {
    std::unique_ptr<Broker> broker;
    std::unique_ptr<PresenceStore> presence;
    std::unique_ptr<InboxStore> inbox;
    std::unique_ptr<WebhookStream> webhooks;
};

// A message of QoS ≥ 1 stored in a user's personal channel (the inbox), for message_unacked.
using PersonalMessageObserver =
    std::function<void(std::string user, std::string channel, StreamPosition position, std::string mid)>;

using InboxCursorDone = std::function<void(std::variant<StreamPosition, BrokerError>)>;

class Node final : public BrokerEventHandler {
public:
    // `clock` outlives the node: Clock::system(), or a ManualClock in tests.
    Node(Config config, std::string name, NodeEngine engine, const Clock& clock = Clock::system());

    // Binds the router to the event loops; call once, before any connection exists.
    void attach(EventLoopPool& loops);

    const Config& config() const { return config_; }
    const std::string& name() const { return name_; }
    // Every deadline of the sessions and connections of this node is read from here.
    const Clock& clock() const { return clock_; }
    static const char* version();
    std::chrono::steady_clock::duration uptime() const { return std::chrono::steady_clock::now() - started_; }
    const char* engineName() const { return broker_->name(); }
    EngineStats engineStats() const { return broker_->stats(); }
    // True when several nodes share the engine (Broker::clustered()).
    bool clustered() const { return broker_->clustered(); }
    // One entry per storage shard of the engine (none for the memory engine). Thread-safe.
    std::vector<EngineShardHealth> engineHealth() const { return broker_->health(); }
    // Starts and stops the engine's own work (Broker::start, Broker::stop).
    // On loop 0 (attach() first); stopEngine() while the loops still run.
    void startEngine() { broker_->start(loops_.at(0)->context()); }
    void stopEngine() { broker_->stop(); }
    // Tells the other nodes about this one (/api/nodes) for `ttl`; and lists every node that did.
    void heartbeat(NodeHeartbeat heartbeat, std::chrono::milliseconds ttl) {
        broker_->heartbeat(std::move(heartbeat), ttl);
    }
    void nodes(NodesCompletion done) { broker_->nodes(std::move(done)); }
    // Asks every node, this one included, to close the connections of `target` and end their
    // sessions (a control message; at most once, no answer).
    void disconnect(const DisconnectTarget& target);

    SessionRegistry& sessions() { return sessions_; }
    // API keys and the token verifier: the only part of the configuration that a reload changes.
    CredentialStore& credentials() { return credentials_; }
    const CredentialStore& credentials() const { return credentials_; }
    // Client publishes that carried a mid, for api.idempotency_window: a resent one is not published again.
    IdempotencyCache& clientPublishes() { return clientPublishes_; }
    EventLoop& loopAt(unsigned index) { return *loops_.at(index); }
    // Who may open a WebSocket connection (limits.connections_per_node, per address), from any loop.
    ConnectionGate& connectionGate() { return connectionGate_; }
    // Connections per user on this node (limits.connections_per_user), from any loop.
    UserConnectionCount& userConnections() { return userConnections_; }

    ChannelCheck checkChannel(std::string_view channel) const;

    // A subscriber of `channel` was added to loop `loop`'s hub (`firstOnLoop`: the first there).
    // Makes the node receive the channel, then reads its position and, with `since`, what was
    // missed after it (at most the namespace's recovery_max, all or nothing). `done` runs once,
    // on any thread. On an error the caller must still call unsubscribe().
    void subscribe(std::string_view channel, unsigned loop, bool firstOnLoop, std::optional<StreamPosition> since,
                   SubscribeDone done);
    // Like subscribe, without reading anything: for a session moving here, which knows its positions.
    void join(std::string_view channel, unsigned loop, bool firstOnLoop, SubscribeCompletion done);
    // A subscriber of `channel` left loop `loop`'s hub (`lastOnLoop`: the last there).
    void unsubscribe(std::string_view channel, unsigned loop, bool lastOnLoop);

    // Presence: whether `channel`'s namespace tracks it (never a personal channel).
    bool presenceEnabled(std::string_view channel) const;
    // On loop `loop`: a connection of it subscribed to / left `channel`. join() again refreshes.
    // A new entry, and a leave, are pushed to the channel's subscribers in `join_leave` namespaces.
    // `reason`: why it left ("unsubscribed", "disconnected"), for PresenceStore::remove.
    void presenceJoin(unsigned loop, const std::string& channel, PresenceEntry entry);
    void presenceLeave(unsigned loop, const std::string& channel, const std::string& client, std::string reason);
    // On loop `loop`: adds its entries again before they expire (every third of presence_ttl).
    void refreshPresence(unsigned loop) { loopPresence_.at(loop).refresh(); }
    // Who is subscribed to `channel` on every node (at most its namespace's presence_max_members),
    // and how many: `done` runs once, on any thread.
    void presence(std::string_view channel, PresenceListCompletion done);
    void presenceStats(std::string_view channel, PresenceStatsCompletion done) {
        presence_->stats(channel, std::move(done));
    }

    // Users online, cluster-wide: a user is online while one of its connections is (a session
    // waiting for its client to resume is not). The connections of `user` (at most 1000)…
    void userConnections(std::string_view user, PresenceListCompletion done);
    // …whether each of `users` is online, in the order asked…
    void usersOnline(std::vector<std::string> users, PresenceHasUsersCompletion done) {
        presence_->hasUsers(kOnlineChannel, std::move(users), std::move(done));
    }
    // …and every user online, a page at a time (PresenceStore::users).
    void onlineUsers(std::string cursor, std::size_t limit, PresenceUsersCompletion done) {
        presence_->users(kOnlineChannel, std::move(cursor), limit, std::move(done));
    }

    // Offline messages (docs/protocol.md, "Offline messages"): the history of each user's
    // personal channel, read per device. Off with inbox.max_messages 0.
    bool inboxEnabled() const { return config_.inbox.max_messages > 0; }
    // Where `device` of `user` stands in the user's channel: its cursor when the device is
    // remembered; otherwise the channel's top less inbox.new_device_backlog, and the device is
    // remembered from now on. Subscribing the channel with it as `since` delivers the inbox.
    void inboxCursor(const std::string& user, const std::string& device, InboxCursorDone done);
    // The device has finished everything up to `cursor`: stores it and trims the user's history to
    // what every remembered device has finished. No answer.
    void inboxAdvance(const std::string& user, const std::string& device, StreamPosition cursor);
    void inboxDevices(const std::string& user, InboxDevicesCompletion done) {
        inbox_->devices(user, deviceTtl(), std::move(done));
    }
    // Deletes the user's messages, and moves every remembered device past them (a deletion is
    // not a loss to report). `done` runs once, on any thread.
    void clearInbox(const std::string& user, std::function<void(std::optional<BrokerError>)> done);

    // Webhook events (src/webhooks). Each of these is set, or started, before the engine starts.
    // The cluster's queue of webhook events.
    WebhookStream& webhookStream() { return *webhooks_; }
    // Presence changes, reported by the store to `options.handler` (PresenceStore::reportTransitions).
    void reportPresenceTransitions(PresenceTransitionOptions options) {
        presence_->reportTransitions(std::move(options));
    }
    // What is due without a call on its channel (PresenceStore::sweep): about once a second.
    void sweepPresence() { presence_->sweep(); }
    // Told of every message of QoS ≥ 1 stored in a personal channel while the inbox is on.
    void observePersonalMessages(PersonalMessageObserver observer) { personalMessages_ = std::move(observer); }

    // Runs `task` on loop 0 soon: the next engine call of a completion, which must not call the
    // engine itself (include/wspush/broker.h).
    template <class Task>
    void afterCompletion(Task&& task) {
        boost::asio::post(loops_.at(0)->context(), std::forward<Task>(task));
    }

    // Publishes with the channel's namespace options (history). `done` runs once, on any thread.
    // A request with a report: the report is released when the publish completes (after adding
    // Published::nodes parts on a clustered engine, whose nodes report back with control
    // messages); on an error nothing waits for it. The caller owns the report and must end it
    // (expire()) if the other nodes may never answer; the node only indexes it.
    void publish(PublishRequest request, PublishCompletion done);
    void history(std::string_view channel, HistoryQuery query, HistoryCompletion done);

    // Channels with subscribers on this node and their subscriber counts, sorted by name.
    std::vector<std::pair<std::string, std::uint64_t>> channels() const { return router_.channels(); }
    // Channel subscriptions on this node, every channel summed.
    std::uint64_t subscriptions() const { return router_.subscriptionCount(); }

    NodeTotals totals() const;

    // From the engine (BrokerEventHandler), on any thread.
    void onPublication(const PublicationPtr& publication) override;
    void onControl(std::string_view payload) override;
    std::vector<const LoopMetrics*> loopMetrics() const;

private:
    // The engine subscription of one channel, shared by the subscribers that wait for it.
    class EngineSubscription;
    struct InterestShard {
        std::mutex mutex;
        std::unordered_map<std::string, std::shared_ptr<EngineSubscription>, StringHash, std::equal_to<>> channels;
    };
    static constexpr std::size_t kInterestShards = 64;

    // Pushes a join or leave of `channel` to its subscribers on every node, unless the channel
    // has more members than its namespace's join_leave_max_members. From loop `loop`.
    void announce(unsigned loop, PresenceChange change, const std::string& channel, const PresenceEntry& entry);
    void recover(std::string_view channel, const StreamPosition& since, SubscribeDone done);
    // recover() for a user's inbox: whatever is still kept past `since`, and how much is not.
    void recoverInbox(std::string_view channel, const StreamPosition& since, SubscribeDone done);
    std::chrono::milliseconds deviceTtl() const {
        return std::chrono::duration_cast<std::chrono::milliseconds>(config_.inbox.device_ttl);
    }
    // Clustered engine: the report this node's loops count for a publication whose report lives
    // on node `origin.node`, and which tells that report what it counted.
    std::shared_ptr<DeliveryReport> partReport(const ReportOrigin& origin);
    std::shared_ptr<DeliveryReport> findReport(std::uint64_t id);
    void forgetReport(std::uint64_t id);
    // publishControl from a loop: the engine's handler (onPublication) must not call the engine.
    void sendControl(std::string target, std::string payload);

    Config config_;
    CredentialStore credentials_;
    std::string name_;
    std::unique_ptr<Broker> broker_;
    const Clock& clock_;
    std::unique_ptr<PresenceStore> presence_;
    std::unique_ptr<InboxStore> inbox_;
    std::unique_ptr<WebhookStream> webhooks_;
    PersonalMessageObserver personalMessages_;
    std::vector<LocalPresence> loopPresence_;  // one per loop, touched there
    ChannelRouter router_;
    SessionRegistry sessions_;
    IdempotencyCache clientPublishes_;
    ConnectionGate connectionGate_;
    UserConnectionCount userConnections_;
    std::vector<EventLoop*> loops_;
    std::array<InterestShard, kInterestShards> interest_;
    // Clustered engine: the reports of publishes made here, by the id other nodes report to.
    // Reports are rare (a backend waiting for acks or /api/send): one mutex.
    std::mutex reportsMutex_;
    std::unordered_map<std::uint64_t, std::weak_ptr<DeliveryReport>> reports_;
    std::uint64_t lastReportId_ = 0;
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace wspush
