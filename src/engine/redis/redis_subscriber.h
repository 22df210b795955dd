// The pub/sub connection of one shard: carries only SUBSCRIBE and UNSUBSCRIBE (a subscribed
// hiredis 0.14 context mis-routes PING, and would not route SSUBSCRIBE's `smessage`).
//
// Thread model and lifetime as RedisConnection (same io_context; shared_ptr; stop()).
//
// Subscriptions are the subscriber's desired set: subscribe()/unsubscribe() change it and the
// subscriber makes Redis agree, in batches (at most kBatch channels per command). After a
// reconnect it resubscribes the whole set by itself, then calls onReady. Per channel, a
// subscribe that arrives while an unsubscribe of it is unconfirmed waits for that confirmation
// (in hiredis 0.14 an `unsubscribe` reply removes the channel's callback, whichever SUBSCRIBE
// registered it).
//
// Liveness: every probeInterval the owner's `probe` function is called to PUBLISH
// `probePayload` on `probeChannel` (always in the set) through a command connection; when the
// message does not come back within the command timeout, the connection is restarted. This is
// how a wedged pub/sub connection (centrifugo#1189) is noticed. Probe payloads start with
// "probe-"; other messages on the probe channel (the node's own control channel) go to onMessage.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/redis/redis_connection.h"

namespace wspush {

class RedisSubscriber : public std::enable_shared_from_this<RedisSubscriber> {
public:
    static constexpr std::size_t kBatch = 512;

    struct Events {
        // A message on a subscribed channel (never the probe channel's probes).
        std::function<void(const std::string& channel, const std::string& payload)> onMessage;
        // Every channel wanted at that moment is confirmed subscribed: after the first connect
        // and after every reconnect (publications made while the connection was down were missed:
        // the owner checks positions now).
        std::function<void()> onReady;
        // The connection was lost (once per loss).
        std::function<void(const std::string& error)> onDown;
    };
    struct Probe {
        std::string channel;
        std::chrono::milliseconds interval{5000};
        // Publishes `payload` on `channel` through a command connection; false when it cannot now
        // (that connection is down): a probe never sent proves nothing, and is not awaited.
        std::function<bool(const std::string& channel, const std::string& payload)> publish;
    };

    static std::shared_ptr<RedisSubscriber> create(boost::asio::io_context& context, RedisConnectionOptions options,
                                                   Probe probe, Events events);
    ~RedisSubscriber();

    void start();
    void stop();
    bool ready() const;
    const std::string& lastError() const;

    // Adds `channel` to the set; `done` runs once Redis confirmed the subscription (true), or
    // false when the connection is down (the channel stays in the set and is subscribed after the
    // reconnect; onReady follows then).
    void subscribe(const std::string& channel, std::function<void(bool confirmed)> done);
    // Removes `channel` from the set. Never fails.
    void unsubscribe(const std::string& channel);

private:
    RedisSubscriber(boost::asio::io_context& context, RedisConnectionOptions options, Probe probe, Events events);
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace wspush
