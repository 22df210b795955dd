#include "engine/redis/redis_subscriber.h"

#include <algorithm>
#include <deque>
#include <unordered_map>
#include <utility>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/durations.h"
#include "base/random.h"

namespace wspush {

namespace net = boost::asio;

namespace {
// Every probe payload starts with it; other messages on the probe channel are the owner's.
constexpr std::string_view kProbeTag = "probe-";
}  // namespace
using SteadyClock = std::chrono::steady_clock;

// Per channel, what we want (`wanted`) and where Redis is (`redis`). A channel moves one step at a
// time and waits for Redis's confirmation before the next: SUBSCRIBE only from Unsubscribed,
// UNSUBSCRIBE only from Subscribed. That is what keeps hiredis 0.14 routing right: it files a
// channel's callback on SUBSCRIBE and deletes it on *any* `unsubscribe` reply for the channel, so a
// SUBSCRIBE sent behind an unconfirmed UNSUBSCRIBE would lose its confirmation and its messages.
//
//            SUBSCRIBE sent               "subscribe"
//   Unsubscribed ─────────────▶ Subscribing ─────────▶ Subscribed
//        ▲                                                  │ UNSUBSCRIBE sent
//        └──────────────────── Unsubscribing ◀──────────────┘
//                 "unsubscribe"
//
// A channel unwanted while Subscribing is unsubscribed once confirmed; a channel wanted again
// while Unsubscribing is subscribed once that is confirmed. A lost connection puts every channel
// back to Unsubscribed; the next ready connection subscribes the wanted ones again.
struct RedisSubscriber::State {
    enum class InRedis { Unsubscribed, Subscribing, Subscribed, Unsubscribing };

    struct Channel {
        bool wanted = false;
        InRedis redis = InRedis::Unsubscribed;
        bool dirty = false;                              // listed in `dirty`, to be looked at by the next reconcile()
        std::vector<std::function<void(bool)>> waiting;  // subscribe() calls until the confirmation
    };

    // One SUBSCRIBE or UNSUBSCRIBE: Redis confirms each of its channels, in order.
    struct Batch {
        bool subscribe = true;
        std::vector<std::string> channels;
        std::size_t confirmed = 0;
        SteadyClock::time_point deadline;
    };

    State(RedisSubscriber& owner, net::io_context& context, RedisConnectionOptions options, Probe probe, Events events)
        : owner(owner),
          context(context),
          options(std::move(options)),
          probe(std::move(probe)),
          events(std::move(events)),
          probePrefix(std::string(kProbeTag) + randomHex(8)),
          timer(context) {
        channels[this->probe.channel].wanted = true;
    }

    RedisSubscriber& owner;
    net::io_context& context;
    RedisConnectionOptions options;
    Probe probe;
    Events events;
    std::shared_ptr<RedisConnection> connection;

    std::unordered_map<std::string, Channel> channels;
    std::vector<std::string> dirty;
    bool reconcilePosted = false;
    std::deque<Batch> inFlight;
    bool ready = false;  // the connection is ready and every wanted channel confirmed since
    bool stopped = false;

    std::string probePrefix;  // tells our probes from other nodes' on a shared probe channel
    std::uint64_t probeCount = 0;
    std::optional<std::string> probeAwaited;
    SteadyClock::time_point probeDeadline;
    SteadyClock::time_point nextProbeAt;

    // One timer, armed to the earliest of: the oldest batch's deadline, the awaited probe's
    // deadline, the next probe.
    net::steady_timer timer;
    std::uint64_t timerGeneration = 0;

    template <class Handler>
    auto guarded(Handler handler) {
        return [weak = owner.weak_from_this(), handler = std::move(handler)](auto&&... args) mutable {
            auto self = weak.lock();
            if (!self) return;
            handler(*self->state_, std::forward<decltype(args)>(args)...);
        };
    }

    void subscribe(const std::string& name, std::function<void(bool)> done) {
        if (stopped) {
            if (done) done(false);
            return;
        }
        Channel& channel = channels[name];
        channel.wanted = true;
        if (!connection->ready()) {  // kept in the set: subscribed when the connection is back
            if (done) done(false);
            return;
        }
        if (channel.redis == InRedis::Subscribed) {
            if (done) done(true);
            return;
        }
        if (done) channel.waiting.push_back(std::move(done));
        touch(name, channel);
    }

    void unsubscribe(const std::string& name) {
        if (name == probe.channel) return;  // always subscribed: it proves the connection alive
        auto it = channels.find(name);
        if (it == channels.end() || !it->second.wanted) return;
        it->second.wanted = false;
        if (!connection->ready()) {
            if (it->second.redis == InRedis::Unsubscribed && it->second.waiting.empty()) channels.erase(it);
            return;
        }
        touch(name, it->second);
    }

    // Calls made in one turn of the io_context leave together, in batches of kBatch.
    void touch(const std::string& name, Channel& channel) {
        if (!channel.dirty) {
            channel.dirty = true;
            dirty.push_back(name);
        }
        if (reconcilePosted) return;
        reconcilePosted = true;
        net::post(context, guarded([](State& s) { s.reconcile(); }));
    }

    // Makes Redis agree with the wanted set, one step per channel (see the diagram above).
    void reconcile() {
        reconcilePosted = false;
        if (!connection->ready()) {  // the loss reset every channel; the next ready looks at them all
            for (const auto& name : dirty) {
                if (auto it = channels.find(name); it != channels.end()) it->second.dirty = false;
            }
            dirty.clear();
            return;
        }
        std::vector<std::string> toSubscribe;
        std::vector<std::string> toUnsubscribe;
        auto names = std::move(dirty);
        dirty.clear();
        for (auto& name : names) {
            auto it = channels.find(name);
            if (it == channels.end()) continue;
            Channel& channel = it->second;
            channel.dirty = false;
            if (channel.wanted && channel.redis == InRedis::Unsubscribed) {
                channel.redis = InRedis::Subscribing;
                toSubscribe.push_back(std::move(name));
            } else if (!channel.wanted && channel.redis == InRedis::Subscribed) {
                channel.redis = InRedis::Unsubscribing;
                toUnsubscribe.push_back(std::move(name));
            } else if (!channel.wanted && channel.redis == InRedis::Unsubscribed && channel.waiting.empty()) {
                channels.erase(it);
            }
        }
        if (!send("SUBSCRIBE", std::move(toSubscribe)) || !send("UNSUBSCRIBE", std::move(toUnsubscribe))) return;
        checkReady();
        rearm();
    }

    // False when the connection was restarted (the state was reset meanwhile).
    bool send(const char* command, std::vector<std::string> names) {
        for (std::size_t first = 0; first < names.size(); first += kBatch) {
            std::size_t last = std::min(names.size(), first + kBatch);
            Batch batch{std::string_view(command) == "SUBSCRIBE",
                        {std::make_move_iterator(names.begin() + first), std::make_move_iterator(names.begin() + last)},
                        0,
                        SteadyClock::now() + toClock(options.commandTimeout)};
            std::vector<std::string> argv;
            argv.reserve(batch.channels.size() + 1);
            argv.emplace_back(command);
            argv.insert(argv.end(), batch.channels.begin(), batch.channels.end());
            if (!connection->sendPubSub(argv)) {
                restart(std::string("cannot send ") + command);
                return false;
            }
            inFlight.push_back(std::move(batch));
        }
        return true;
    }

    // Every reply of the pub/sub connection: confirmations and messages, each checked for shape.
    void onPush(const RedisReply& reply) {
        if (stopped || !connection->ready()) return;  // left over from a connection already dropped
        const auto& elements = reply.elements;
        if (!reply.isArray() || elements.size() != 3 || !elements[0].asString() || !elements[1].asString()) {
            return unexpected(reply);
        }
        std::string_view kind = *elements[0].asString();
        const std::string& channel = elements[1].string;
        if (kind == "message") {
            if (!elements[2].asString()) return unexpected(reply);
            return onMessage(channel, elements[2].string);
        }
        if (kind != "subscribe" && kind != "unsubscribe") return unexpected(reply);
        if (elements[2].type != RedisReply::Type::Integer) return unexpected(reply);
        onConfirmation(kind == "subscribe", channel, reply);
    }

    void onMessage(const std::string& channel, const std::string& payload) {
        // Probes never reach the owner, ours nor other nodes'; anything else on the probe channel
        // (the node's own control channel) does.
        if (channel == probe.channel && payload.compare(0, kProbeTag.size(), kProbeTag) == 0) {
            if (probeAwaited && payload == *probeAwaited) {
                probeAwaited.reset();
                rearm();
            }
            return;
        }
        auto it = channels.find(channel);
        if (it == channels.end() || !it->second.wanted) return;  // unsubscribed, not yet confirmed
        if (events.onMessage) events.onMessage(channel, payload);
    }

    void onConfirmation(bool subscribed, const std::string& name, const RedisReply& reply) {
        if (inFlight.empty() || inFlight.front().subscribe != subscribed ||
            inFlight.front().channels[inFlight.front().confirmed] != name) {
            return unexpected(reply);
        }
        if (++inFlight.front().confirmed == inFlight.front().channels.size()) {
            inFlight.pop_front();
            rearm();
        }
        auto it = channels.find(name);
        if (it == channels.end()) return unexpected(reply);  // a channel in flight keeps its entry
        Channel& channel = it->second;
        if (subscribed) {
            channel.redis = InRedis::Subscribed;
            auto waiting = std::move(channel.waiting);
            channel.waiting.clear();
            if (!channel.wanted) touch(name, channel);
            for (auto& done : waiting) done(true);  // may change `channels`: `channel` is not used after
        } else {
            channel.redis = InRedis::Unsubscribed;
            if (channel.wanted) {
                touch(name, channel);
            } else if (channel.waiting.empty()) {
                channels.erase(it);
            }
        }
        checkReady();
    }

    void unexpected(const RedisReply& reply) {
        spdlog::warn("redis {}: unexpected reply on the pub/sub connection: {}", options.name, reply.describe());
        restart("unexpected reply " + reply.describe());
    }

    void restart(const std::string& why) { connection->restart(why); }

    void checkReady() {
        if (ready || !connection->ready() || !inFlight.empty() || !dirty.empty()) return;
        ready = true;
        nextProbeAt = SteadyClock::now() + toClock(probe.interval);
        rearm();
        if (events.onReady) events.onReady();
    }

    void onConnectionReady() {
        for (auto& [name, channel] : channels) {
            if (channel.wanted) touch(name, channel);
        }
        reconcile();
    }

    // Redis forgot this connection's subscriptions with it: every channel is back to Unsubscribed.
    void onConnectionDown(const std::string& error) {
        resetSubscriptions();
        if (events.onDown) events.onDown(error);
    }

    void resetSubscriptions() {
        ready = false;
        inFlight.clear();
        probeAwaited.reset();
        std::vector<std::function<void(bool)>> failed;
        for (auto it = channels.begin(); it != channels.end();) {
            Channel& channel = it->second;
            channel.redis = InRedis::Unsubscribed;
            channel.dirty = false;
            for (auto& done : channel.waiting) failed.push_back(std::move(done));
            channel.waiting.clear();
            it = channel.wanted ? std::next(it) : channels.erase(it);
        }
        dirty.clear();
        rearm();
        for (auto& done : failed) done(false);
    }

    void rearm() {
        std::optional<SteadyClock::time_point> next;
        auto consider = [&next](SteadyClock::time_point at) { next = next ? std::min(*next, at) : at; };
        if (!inFlight.empty()) consider(inFlight.front().deadline);
        if (probeAwaited) consider(probeDeadline);
        if (ready && !probeAwaited && probe.interval.count() > 0) consider(nextProbeAt);
        ++timerGeneration;
        if (!next) {
            timer.cancel();
            return;
        }
        timer.expires_at(*next);
        timer.async_wait(guarded([generation = timerGeneration](State& s, boost::system::error_code) {
            if (s.timerGeneration == generation) s.onTimer();
        }));
    }

    void onTimer() {
        auto now = SteadyClock::now();
        if (!inFlight.empty() && inFlight.front().deadline <= now) {
            return restart(std::string(inFlight.front().subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE") +
                           " not confirmed within " + std::to_string(options.commandTimeout.count()) + " ms");
        }
        if (probeAwaited && probeDeadline <= now) {
            return restart("probe not received within " + std::to_string(options.commandTimeout.count()) + " ms");
        }
        if (ready && !probeAwaited && probe.interval.count() > 0 && nextProbeAt <= now) sendProbe(now);
        rearm();
    }

    void sendProbe(SteadyClock::time_point now) {
        std::string payload = probePrefix + "-" + std::to_string(++probeCount);
        nextProbeAt = now + toClock(probe.interval);
        if (!probe.publish || !probe.publish(probe.channel, payload)) return;
        probeAwaited = std::move(payload);
        probeDeadline = now + toClock(options.commandTimeout);
    }

    void stop() {
        if (stopped) return;
        stopped = true;
        connection->stop();
        resetSubscriptions();
        ++timerGeneration;
        timer.cancel();
    }
};

std::shared_ptr<RedisSubscriber> RedisSubscriber::create(boost::asio::io_context& context,
                                                         RedisConnectionOptions options, Probe probe, Events events) {
    // A local class may call the private constructor, and lets make_shared allocate once.
    struct Constructible : RedisSubscriber {
        Constructible(boost::asio::io_context& context, RedisConnectionOptions options, Probe probe, Events events)
            : RedisSubscriber(context, std::move(options), std::move(probe), std::move(events)) {}
    };
    auto subscriber = std::make_shared<Constructible>(context, options, std::move(probe), std::move(events));
    State& state = *subscriber->state_;
    RedisConnection::Events connectionEvents{
        state.guarded([](State& s) { s.onConnectionReady(); }),
        state.guarded([](State& s, const std::string& error) { s.onConnectionDown(error); }),
    };
    state.connection = RedisConnection::create(context, std::move(options), std::move(connectionEvents));
    state.connection->setPushHandler(state.guarded([](State& s, const RedisReply& reply) { s.onPush(reply); }));
    return subscriber;
}

RedisSubscriber::RedisSubscriber(boost::asio::io_context& context, RedisConnectionOptions options, Probe probe,
                                 Events events)
    : state_(std::make_unique<State>(*this, context, std::move(options), std::move(probe), std::move(events))) {}

RedisSubscriber::~RedisSubscriber() {
    if (state_->connection) state_->connection->stop();
}

void RedisSubscriber::start() {
    if (state_->stopped) return;
    state_->connection->start();
}

void RedisSubscriber::stop() {
    state_->stop();
}

bool RedisSubscriber::ready() const {
    return state_->ready;
}

const std::string& RedisSubscriber::lastError() const {
    return state_->connection->lastError();
}

void RedisSubscriber::subscribe(const std::string& channel, std::function<void(bool confirmed)> done) {
    state_->subscribe(channel, std::move(done));
}

void RedisSubscriber::unsubscribe(const std::string& channel) {
    state_->unsubscribe(channel);
}

}  // namespace wspush
