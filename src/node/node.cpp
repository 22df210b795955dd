#include "node/node.h"

#include "wspush/channel_name.h"

namespace wspush {

Node::Node(Config config, std::string name, std::unique_ptr<Broker> broker)
    : config_(std::move(config)),
      name_(std::move(name)),
      broker_(std::move(broker)),
      clientPublishes_(std::chrono::duration_cast<IdempotencyCache::Duration>(config_.api.idempotency_window),
                       config_.api.idempotency_max_entries) {
    broker_->setEventHandler(&router_);
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

NodeTotals Node::totals() const {
    NodeTotals totals;
    for (const EventLoop* loop : loops_) {
        totals.websocketConnections += loop->metrics().websocketConnections.get();
        totals.httpConnections += loop->metrics().httpConnections.get();
    }
    totals.channels = router_.channelCount();
    totals.publications = router_.publications();
    totals.sessions = sessions_.size();
    return totals;
}

std::vector<const LoopMetrics*> Node::loopMetrics() const {
    std::vector<const LoopMetrics*> metrics;
    for (const EventLoop* loop : loops_) metrics.push_back(&loop->metrics());
    return metrics;
}

}  // namespace wspush
