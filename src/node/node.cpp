#include "node/node.h"

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

Node::Node(Config config, std::string name, std::unique_ptr<Broker> broker, const Clock& clock)
    : config_(std::move(config)),
      name_(std::move(name)),
      broker_(std::move(broker)),
      clock_(clock),
      clientPublishes_(std::chrono::duration_cast<IdempotencyCache::Duration>(config_.api.idempotency_window),
                       config_.api.idempotency_max_entries) {
    broker_->setEventHandler(this, name_);
}

void Node::attach(EventLoopPool& loops) {
    loops_ = loops.all();
    router_.attach(loops_);
}

const char* Node::version() {
    return WSPUSH_VERSION;
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

void Node::publish(PublishRequest request, PublishCompletion done) {
    if (const NamespaceConfig* options = config_.namespaceFor(request.channel)) {
        request.history.size = options->history_size;
        request.history.ttl = std::chrono::duration_cast<std::chrono::milliseconds>(options->history_ttl);
    }
    if (!request.idempotencyKey.empty() && request.idempotencyWindow.count() == 0)
        request.idempotencyWindow =
            std::chrono::duration_cast<std::chrono::milliseconds>(config_.api.idempotency_window);
    broker_->publish(std::move(request), std::move(done));
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
    return totals;
}

std::vector<const LoopMetrics*> Node::loopMetrics() const {
    std::vector<const LoopMetrics*> metrics;
    for (const EventLoop* loop : loops_) metrics.push_back(&loop->metrics());
    return metrics;
}

void Node::onPublication(const PublicationPtr& publication) {
    router_.onPublication(publication);
}

void Node::onControl(std::string_view) {}

}  // namespace wspush
