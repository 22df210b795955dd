#include "node/node.h"

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

#include "base/bounded_json.h"
#include "wspush/channel_name.h"

namespace wspush {

// The engine subscription of a channel from the node's first subscriber to its last: the
// subscribers that arrive while the engine has not confirmed it yet wait here, and all of them
// learn the same outcome. Its mutex is a leaf: nothing is called while it is held.
class Node::EngineSubscription {
public:
    void whenReady(SubscribeCompletion waiter) {
        std::unique_lock lock(mutex_);
        if (!ready_) {
            waiters_.push_back(std::move(waiter));
            return;
        }
        std::optional<BrokerError> error = error_;
        lock.unlock();
        waiter(std::move(error));
    }

    void complete(std::optional<BrokerError> error) {
        std::vector<SubscribeCompletion> waiters;
        {
            std::lock_guard lock(mutex_);
            ready_ = true;
            error_ = error;
            waiters.swap(waiters_);
        }
        for (auto& waiter : waiters) waiter(error);
    }

private:
    std::mutex mutex_;
    bool ready_ = false;
    std::optional<BrokerError> error_;
    std::vector<SubscribeCompletion> waiters_;
};

Node::Node(Config config, std::string name, NodeEngine engine, const Clock& clock)
    : config_(std::move(config)),
      credentials_(Credentials{config_.api.keys, nullptr}),
      name_(std::move(name)),
      broker_(std::move(engine.broker)),
      clock_(clock),
      presence_(std::move(engine.presence)),
      inbox_(std::move(engine.inbox)),
      webhooks_(std::move(engine.webhooks)),
      clientPublishes_(std::chrono::duration_cast<IdempotencyCache::Duration>(config_.api.idempotency_window),
                       config_.api.idempotency_max_entries),
      connectionGate_(config_.limits, clock_),
      userConnections_(config_.limits.connections_per_user) {
    broker_->setEventHandler(this, name_);
}

void Node::attach(EventLoopPool& loops) {
    loops_ = loops.all();
    router_.attach(loops_);
    auto ttl = std::chrono::duration_cast<std::chrono::milliseconds>(config_.presence_ttl);
    loopPresence_.assign(loops_.size(), LocalPresence(*presence_, ttl));
}

const char* Node::version() {
    return WSPUSH_VERSION;
}

bool Node::presenceEnabled(std::string_view channel) const {
    if (channel.starts_with('$')) return false;
    const NamespaceConfig* options = config_.namespaceFor(channel);
    return options != nullptr && options->presence;
}

void Node::presenceJoin(unsigned loop, const std::string& channel, PresenceEntry entry) {
    PresenceEntry announced = entry;
    if (loopPresence_.at(loop).join(channel, std::move(entry)))
        announce(loop, PresenceChange::Join, channel, announced);
}

void Node::presenceLeave(unsigned loop, const std::string& channel, const std::string& client, std::string reason) {
    if (auto entry = loopPresence_.at(loop).leave(channel, client, std::move(reason)))
        announce(loop, PresenceChange::Leave, channel, *entry);
}

void Node::announce(unsigned loop, PresenceChange change, const std::string& channel, const PresenceEntry& entry) {
    if (channel.starts_with('$')) return;  // the users' own presence ($user:…, $online) is never pushed
    const NamespaceConfig* options = config_.namespaceFor(channel);
    if (options == nullptr || !options->join_leave) return;
    // The member count decides, so a channel that grew past the cap goes quiet, and speaks again
    // once it shrank. A leave is counted after the entry left, a join with it.
    presence_->stats(channel, [this, loop, max = options->join_leave_max_members,
                               frame = encodePresenceChange(change, channel, entry),
                               channel](std::variant<PresenceStats, BrokerError> result) mutable {
        auto* stats = std::get_if<PresenceStats>(&result);
        if (stats == nullptr || stats->clients > max) return;
        // Completions must not call the engine: publish from the loop instead.
        boost::asio::post(loops_.at(loop)->context(),
                          [this, channel = std::move(channel), frame = std::move(frame)]() mutable {
                              broker_->publishEvent(channel, std::move(frame));
                          });
    });
}

void Node::userConnections(std::string_view user, PresenceListCompletion done) {
    std::string channel = personalChannel(user);
    if (channel.empty()) return done(std::vector<PresenceEntry>{});
    presence_->list(channel, 1000, std::move(done));
}

void Node::presence(std::string_view channel, PresenceListCompletion done) {
    const NamespaceConfig* options = config_.namespaceFor(channel);
    presence_->list(channel, options ? options->presence_max_members : kMaxPresenceMembers, std::move(done));
}

ChannelCheck Node::checkChannel(std::string_view channel) const {
    if (!isValidChannelName(channel)) return ChannelCheck::InvalidName;
    if (config_.namespaceFor(channel) == nullptr) return ChannelCheck::UnknownNamespace;
    return ChannelCheck::Ok;
}

void Node::join(std::string_view channel, unsigned loop, bool firstOnLoop, SubscribeCompletion done) {
    std::shared_ptr<EngineSubscription> subscription;
    {
        // The router's count and the engine's subscription change together, under one lock per
        // channel. Changed apart, the last subscriber leaving on one loop and the first arriving
        // on another could leave the engine unsubscribed while the node has subscribers, and
        // the channel silent for them.
        InterestShard& shard = interest_[StringHash{}(channel) % kInterestShards];
        std::lock_guard lock(shard.mutex);
        if (router_.addSubscriber(channel, loop, firstOnLoop)) {
            subscription = std::make_shared<EngineSubscription>();
            shard.channels.insert_or_assign(std::string(channel), subscription);
            broker_->subscribe(channel, [subscription](std::optional<BrokerError> error) {
                subscription->complete(std::move(error));
            });
        } else {
            subscription = shard.channels.find(channel)->second;
        }
    }
    subscription->whenReady(std::move(done));
}

void Node::unsubscribe(std::string_view channel, unsigned loop, bool lastOnLoop) {
    InterestShard& shard = interest_[StringHash{}(channel) % kInterestShards];
    std::lock_guard lock(shard.mutex);
    if (!router_.removeSubscriber(channel, loop, lastOnLoop)) return;
    if (auto it = shard.channels.find(channel); it != shard.channels.end()) shard.channels.erase(it);
    broker_->unsubscribe(channel);
}

void Node::subscribe(std::string_view channel, unsigned loop, bool firstOnLoop, std::optional<StreamPosition> since,
                     SubscribeDone done) {
    join(channel, loop, firstOnLoop,
         [this, name = std::string(channel), since = std::move(since),
          done = std::move(done)](std::optional<BrokerError> error) mutable {
             if (error) return done(std::move(*error));
             // Read after the engine subscription is confirmed: every publication past the
             // position read here reaches the subscriber live.
             if (since) return recover(name, *since, std::move(done));
             broker_->history(name, HistoryQuery{}, [done = std::move(done)](auto result) {
                 if (auto* failed = std::get_if<BrokerError>(&result)) return done(std::move(*failed));
                 done(SubscribeOutcome{std::get<HistoryPage>(result).position, std::nullopt, {}});
             });
         });
}

void Node::recover(std::string_view channel, const StreamPosition& since, SubscribeDone done) {
    if (inboxEnabled() && channel.starts_with(kPersonalChannelPrefix))
        return recoverInbox(channel, since, std::move(done));
    const NamespaceConfig* options = config_.namespaceFor(channel);
    bool keepsHistory = options != nullptr && options->history_size > 0;
    HistoryQuery query{since.offset, keepsHistory ? options->recovery_max : 0, false};
    broker_->history(channel, query, [since, keepsHistory, done = std::move(done)](auto result) {
        if (auto* failed = std::get_if<BrokerError>(&result)) return done(std::move(*failed));
        HistoryPage& page = std::get<HistoryPage>(result);
        SubscribeOutcome outcome{page.position, false, {}};
        // All or nothing: a partial recovery would be a gap the client cannot see.
        if (keepsHistory && since.epoch == page.position.epoch && since.offset <= page.position.offset) {
            std::uint64_t missed = page.position.offset - since.offset;
            if (missed == 0) {
                outcome.recovered = true;
            } else if (page.publications.size() == missed && page.publications.front()->offset == since.offset + 1) {
                outcome.recovered = true;
                outcome.missed = std::move(page.publications);
            }
        }
        done(std::move(outcome));
    });
}

void Node::recoverInbox(std::string_view channel, const StreamPosition& since, SubscribeDone done) {
    HistoryQuery query{since.offset, config_.inbox.max_messages, false};
    broker_->history(
        channel, query, [this, name = std::string(channel), since, done = std::move(done)](auto result) mutable {
            if (auto* failed = std::get_if<BrokerError>(&result)) return done(std::move(*failed));
            HistoryPage& page = std::get<HistoryPage>(result);
            if (page.position.epoch != since.epoch && since.offset > 0) {
                // The stream started over (it expired whole): everything it keeps now is new to the
                // device. What the old epoch held past the cursor expired with it, uncounted.
                // (Completions must not call the engine: read again from a loop.)
                return afterCompletion(
                    [this, name = std::move(name), epoch = page.position.epoch, done = std::move(done)]() mutable {
                        recoverInbox(name, StreamPosition{0, std::move(epoch)}, std::move(done));
                    });
            }
            SubscribeOutcome outcome{page.position, true, std::move(page.publications), 0};
            std::uint64_t firstKept =
                outcome.missed.empty() ? page.position.offset + 1 : outcome.missed.front()->offset;
            if (page.position.epoch == since.epoch && firstKept > since.offset + 1)
                outcome.dropped = firstKept - since.offset - 1;
            done(std::move(outcome));
        });
}

void Node::inboxCursor(const std::string& user, const std::string& device, InboxCursorDone done) {
    inbox_->touch(user, device, deviceTtl(), [this, user, device, done = std::move(done)](auto result) mutable {
        if (auto* failed = std::get_if<BrokerError>(&result)) return done(std::move(*failed));
        if (auto& known = std::get<std::optional<InboxDevice>>(result)) return done(std::move(known->cursor));
        // A device never seen starts near the top. It is remembered from here, so that the
        // messages it has not got yet are kept for it.
        afterCompletion([this, user, device, done = std::move(done)]() mutable {
            broker_->history(
                personalChannel(user), HistoryQuery{}, [this, user, device, done = std::move(done)](auto read) {
                    if (auto* failed = std::get_if<BrokerError>(&read)) return done(std::move(*failed));
                    StreamPosition top = std::get<HistoryPage>(read).position;
                    std::uint64_t backlog = std::min<std::uint64_t>(config_.inbox.new_device_backlog, top.offset);
                    StreamPosition start{top.offset - backlog, top.epoch};
                    afterCompletion([this, user, device, start] {
                        inbox_->advance(user, device, start, deviceTtl(), [](std::optional<std::uint64_t>) {});
                    });
                    done(std::move(start));
                });
        });
    });
}

void Node::inboxAdvance(const std::string& user, const std::string& device, StreamPosition cursor) {
    inbox_->advance(user, device, cursor, deviceTtl(),
                    [this, channel = personalChannel(user), epoch = cursor.epoch](std::optional<std::uint64_t> lowest) {
                        if (!lowest || *lowest == 0) return;
                        afterCompletion([this, channel, epoch, lowest] {
                            broker_->trimHistory(channel, StreamPosition{*lowest, epoch});
                        });
                    });
}

void Node::clearInbox(const std::string& user, std::function<void(std::optional<BrokerError>)> done) {
    std::string channel = personalChannel(user);
    broker_->history(channel, HistoryQuery{}, [this, user, channel, done = std::move(done)](auto read) mutable {
        if (auto* failed = std::get_if<BrokerError>(&read)) return done(std::move(*failed));
        StreamPosition top = std::get<HistoryPage>(read).position;
        inbox_->devices(user, deviceTtl(), [this, user, channel, top, done = std::move(done)](auto listed) mutable {
            if (auto* failed = std::get_if<BrokerError>(&listed)) return done(std::move(*failed));
            auto devices = std::get<std::vector<InboxDevice>>(std::move(listed));
            afterCompletion([this, user, channel, top, devices = std::move(devices), done = std::move(done)]() mutable {
                for (const InboxDevice& device : devices)
                    inbox_->advance(user, device.device, top, deviceTtl(), [](std::optional<std::uint64_t>) {});
                broker_->trimHistory(channel, top);
                done(std::nullopt);
            });
        });
    });
}

void Node::publish(PublishRequest request, PublishCompletion done) {
    if (const NamespaceConfig* options = config_.namespaceFor(request.channel)) {
        request.history.size = options->history_size;
        request.history.ttl = std::chrono::duration_cast<std::chrono::milliseconds>(options->history_ttl);
    } else if (inboxEnabled() && request.channel.starts_with(kPersonalChannelPrefix)) {
        request.history.size = config_.inbox.max_messages;
        request.history.ttl = std::chrono::duration_cast<std::chrono::milliseconds>(config_.inbox.ttl);
        request.history.maxBytes = config_.inbox.max_bytes;
    }
    if (!request.idempotencyKey.empty() && request.idempotencyWindow.count() == 0)
        request.idempotencyWindow =
            std::chrono::duration_cast<std::chrono::milliseconds>(config_.api.idempotency_window);
    if (personalMessages_ && request.qos >= 1 && inboxEnabled() &&
        request.channel.starts_with(kPersonalChannelPrefix)) {
        done = [this, done = std::move(done)](PublishResult result) {
            if (auto* published = std::get_if<Published>(&result); published && !published->duplicate) {
                const Publication& publication = *published->publication;
                personalMessages_(publication.channel.substr(kPersonalChannelPrefix.size()), publication.channel,
                                  StreamPosition{publication.offset, publication.epoch}, publication.mid);
            }
            done(std::move(result));
        };
    }
    std::shared_ptr<DeliveryReport> report = request.report;
    if (!report) return broker_->publish(std::move(request), std::move(done));
    if (!broker_->clustered()) {
        // The engine attached the report; this node's loops are its parts, added before `done`.
        return broker_->publish(std::move(request), [report, done = std::move(done)](PublishResult result) {
            if (std::holds_alternative<Published>(result)) report->release();
            done(std::move(result));
        });
    }
    // Every node that receives it (this one too) reports to this report by its id.
    std::uint64_t id = 0;
    {
        std::lock_guard lock(reportsMutex_);
        id = ++lastReportId_;
        reports_.emplace(id, report);
    }
    report->whenFinished([this, id] { forgetReport(id); });
    request.report = nullptr;
    request.reportOrigin = ReportOrigin{name_, id};
    broker_->publish(std::move(request), [this, report, id, done = std::move(done)](PublishResult result) {
        if (auto* published = std::get_if<Published>(&result)) {
            report->addParts(published->nodes);
            report->release();
        } else {
            forgetReport(id);
        }
        done(std::move(result));
    });
}

void Node::history(std::string_view channel, HistoryQuery query, HistoryCompletion done) {
    broker_->history(channel, query, std::move(done));
}

NodeTotals Node::totals() const {
    NodeTotals totals;
    for (const EventLoop* loop : loops_) {
        totals.websocketConnections += loop->metrics().websocketConnections.get();
        totals.httpConnections += loop->metrics().httpConnections.get();
    }
    totals.channels = router_.channelCount();
    totals.publications = router_.publications();
    totals.sessions = sessions_.size();
    EngineStats engine = broker_->stats();
    totals.historyPublications = engine.historyPublications;
    totals.historyBytes = engine.historyBytes;
    totals.streams = engine.streams;
    totals.engineGapsFound = engine.gapsFound;
    totals.engineGapsRepaired = engine.gapsRepaired;
    totals.engineShardsDown = engine.shardsDown;
    totals.engineShards = std::move(engine.shards);
    totals.subscriptions = router_.subscriptionCount();
    totals.publicationsByQos = router_.publicationsByQos();
    return totals;
}

std::vector<const LoopMetrics*> Node::loopMetrics() const {
    std::vector<const LoopMetrics*> metrics;
    for (const EventLoop* loop : loops_) metrics.push_back(&loop->metrics());
    return metrics;
}

void Node::onPublication(const PublicationPtr& publication) {
    if (!publication->reportOrigin || publication->report) return router_.onPublication(publication);
    // A publication is immutable once shared: this node's part report goes on a copy.
    auto copy = std::make_shared<Publication>(*publication);
    copy->report = partReport(*publication->reportOrigin);
    std::shared_ptr<DeliveryReport> report = copy->report;
    router_.onPublication(copy);
    report->release();  // the router added this node's loops
}

std::shared_ptr<DeliveryReport> Node::partReport(const ReportOrigin& origin) {
    if (origin.node == name_) {  // published here: no round trip through the engine
        std::weak_ptr<DeliveryReport> local = findReport(origin.id);
        return std::make_shared<DeliveryReport>(
            0,
            [local](std::uint64_t reached, std::uint64_t) {
                if (auto report = local.lock()) report->partDone(reached);
            },
            [local] {
                if (auto report = local.lock()) report->acked();
            });
    }
    return std::make_shared<DeliveryReport>(
        0,
        [this, node = origin.node, id = origin.id](std::uint64_t reached, std::uint64_t) {
            sendControl(node, nlohmann::json{{"type", "reached"}, {"report", id}, {"reached", reached}}.dump());
        },
        [this, node = origin.node, id = origin.id] {
            sendControl(node, nlohmann::json{{"type", "ack"}, {"report", id}}.dump());
        });
}

std::shared_ptr<DeliveryReport> Node::findReport(std::uint64_t id) {
    std::lock_guard lock(reportsMutex_);
    auto it = reports_.find(id);
    return it == reports_.end() ? nullptr : it->second.lock();
}

void Node::forgetReport(std::uint64_t id) {
    std::lock_guard lock(reportsMutex_);
    reports_.erase(id);
}

void Node::sendControl(std::string target, std::string payload) {
    // Any loop will do; spread by the payload's size so that one loop does not take them all.
    EventLoop& loop = *loops_[payload.size() % loops_.size()];
    boost::asio::post(loop.context(), [this, target = std::move(target), payload = std::move(payload)]() mutable {
        broker_->publishControl(target, std::move(payload));
    });
}

void Node::disconnect(const DisconnectTarget& target) {
    nlohmann::json message{{"type", "disconnect"}, {"reconnect", target.reconnect}};
    if (!target.user.empty())
        message["user"] = target.user;
    else
        message["client"] = target.client;
    broker_->publishControl("", message.dump());
}

// Control messages come from other nodes of the cluster: a malformed or unknown one (another
// version, say) is logged and ignored.
void Node::onControl(std::string_view payload) {
    using json = nlohmann::json;
    BoundedJson<json> parsed = parseBoundedJson<json>(payload);
    const json& message = parsed.value;
    auto type = parsed.error == JsonParseError::None && message.is_object() ? message.find("type") : message.end();
    if (parsed.error != JsonParseError::None || !message.is_object() || type == message.end() || !type->is_string()) {
        spdlog::debug("ignoring a malformed control message: {:.200}", payload);
        return;
    }
    const std::string& kind = type->get_ref<const std::string&>();
    if (kind == "reached" || kind == "ack") {
        auto id = message.find("report");
        auto reached = message.find("reached");
        if (id == message.end() || !id->is_number_unsigned() ||
            (kind == "reached" && (reached == message.end() || !reached->is_number_unsigned()))) {
            spdlog::debug("ignoring a malformed control message: {:.200}", payload);
            return;
        }
        auto report = findReport(id->get<std::uint64_t>());
        if (!report) return;  // done already (its timeout, or enough acks)
        if (kind == "reached")
            report->partDone(reached->get<std::uint64_t>());
        else
            report->acked();
        return;
    }
    if (kind == "disconnect") {
        DisconnectTarget target;
        auto user = message.find("user");
        auto client = message.find("client");
        auto reconnect = message.find("reconnect");
        if (user != message.end() && user->is_string()) target.user = user->get<std::string>();
        if (client != message.end() && client->is_string()) target.client = client->get<std::string>();
        if (reconnect != message.end() && reconnect->is_boolean()) target.reconnect = reconnect->get<bool>();
        if (target.user.empty() == target.client.empty()) {
            spdlog::debug("ignoring a malformed control message: {:.200}", payload);
            return;
        }
        for (EventLoop* loop : loops_)
            boost::asio::post(loop->context(), [loop, target] { loop->disconnectConnections(target); });
        return;
    }
    spdlog::debug("ignoring a control message of unknown type \"{}\"", kind);
}

}  // namespace wspush
