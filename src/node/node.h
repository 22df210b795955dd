// The node: what every connection and API request on this process shares. It owns the engine
// (Broker) and the ChannelRouter, and holds the rules that WebSocket and HTTP publishing share.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "api/idempotency_cache.h"
#include "node/channel_router.h"
#include "node/event_loop.h"
#include "session/session_registry.h"
#include "wspush/broker.h"
#include "wspush/config.h"

namespace wspush {

enum class ChannelCheck { Ok, InvalidName, UnknownNamespace };

class Node {
public:
    Node(Config config, std::string name, std::unique_ptr<Broker> broker);

    // Binds the router to the event loops; call once, before any connection exists.
    void attach(EventLoopPool& loops);

    const Config& config() const { return config_; }
    const std::string& name() const { return name_; }
    static const char* version();
    std::chrono::steady_clock::duration uptime() const { return std::chrono::steady_clock::now() - started_; }

    Broker& broker() { return *broker_; }
    ChannelRouter& router() { return router_; }
    SessionRegistry& sessions() { return sessions_; }
    // Client publishes that carried a mid, for api.idempotency_window: a resent one is not published again.
    IdempotencyCache& clientPublishes() { return clientPublishes_; }
    EventLoop& loopAt(unsigned index) { return *loops_.at(index); }

    ChannelCheck checkChannel(std::string_view channel) const;

    NodeTotals totals() const;
    std::vector<const LoopMetrics*> loopMetrics() const;

private:
    Config config_;
    std::string name_;
    std::unique_ptr<Broker> broker_;
    ChannelRouter router_;
    SessionRegistry sessions_;
    IdempotencyCache clientPublishes_;
    std::vector<EventLoop*> loops_;
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace wspush
