#include "engine/redis/redis_connection.h"

#include <algorithm>
#include <deque>
#include <random>
#include <utility>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/durations.h"

namespace wspush {

namespace net = boost::asio;
using SteadyClock = std::chrono::steady_clock;

// Drives one redisAsyncContext from the io_context, as hiredis's adapters/libuv.h does from a libuv
// loop: hiredis says which readiness it wants (addRead, addWrite) and the adapter waits for it with
// at most one async_wait per direction. The descriptor is hiredis's: cleanup releases it from Asio
// and hiredis closes it.
//
// hiredis may free its context inside redisAsyncHandleRead/Write (the server closed, a protocol
// error): the handler holds the adapter and its connection while it calls hiredis, and looks at the
// context only through context(), which cleanup sets to null.
class RedisConnection::Adapter : public std::enable_shared_from_this<Adapter> {
public:
    // Takes over `redis`'s event hooks. Must come before redisAsyncSetConnectCallback, which asks
    // for the first write (the sign that connect(2) completed).
    static std::shared_ptr<Adapter> attach(net::io_context& context, redisAsyncContext* redis,
                                           std::weak_ptr<RedisConnection> owner) {
        auto adapter = std::make_shared<Adapter>(context, redis, std::move(owner));
        redis->ev.data = adapter.get();
        redis->ev.addRead = &Adapter::addRead;
        redis->ev.delRead = &Adapter::delRead;
        redis->ev.addWrite = &Adapter::addWrite;
        redis->ev.delWrite = &Adapter::delWrite;
        redis->ev.cleanup = &Adapter::cleanup;
        return adapter;
    }

    // The hiredis context, or null once hiredis let go of it.
    redisAsyncContext* context() const { return redis_; }
    // Why hiredis let go of the context (its errstr), empty when we freed it.
    const std::string& error() const { return error_; }

    // Frees the context: hiredis runs the pending callbacks with NULL replies, then cleanup.
    // Never from inside a hiredis callback (the owner defers its teardown until hiredis returned).
    void free() {
        if (redis_ == nullptr) return;
        auto keepAlive = shared_from_this();
        redisAsyncFree(redis_);
    }

    // Use attach(), which also hooks the adapter into the context.
    Adapter(net::io_context& context, redisAsyncContext* redis, std::weak_ptr<RedisConnection> owner)
        : socket_(context, redis->c.fd), redis_(redis), owner_(std::move(owner)) {}

private:
    using Descriptor = net::posix::stream_descriptor;

    static Adapter& from(void* data) { return *static_cast<Adapter*>(data); }
    static void addRead(void* data) { from(data).want(Descriptor::wait_read, true); }
    static void delRead(void* data) { from(data).want(Descriptor::wait_read, false); }
    static void addWrite(void* data) { from(data).want(Descriptor::wait_write, true); }
    static void delWrite(void* data) { from(data).want(Descriptor::wait_write, false); }
    // hiredis may call cleanup twice for one context (on disconnect, then on free).
    static void cleanup(void* data) {
        Adapter& adapter = from(data);
        if (adapter.redis_ == nullptr) return;
        if (adapter.redis_->err != 0 && adapter.redis_->errstr != nullptr) adapter.error_ = adapter.redis_->errstr;
        adapter.redis_ = nullptr;
        adapter.wantRead_ = adapter.wantWrite_ = false;
        boost::system::error_code ignored;
        adapter.socket_.cancel(ignored);
        // hiredis closes the descriptor right after cleanup: Asio must forget it, not close it.
        adapter.socket_.release();
    }

    // An interest hiredis dropped leaves its wait armed: the wait's handler finds the interest
    // gone and does nothing (cancel() would cancel both directions).
    void want(Descriptor::wait_type type, bool wanted) {
        if (redis_ == nullptr) return;
        bool read = type == Descriptor::wait_read;
        (read ? wantRead_ : wantWrite_) = wanted;
        bool& armed = read ? readArmed_ : writeArmed_;
        if (!wanted || armed) return;
        armed = true;
        // A connected socket is almost always writable: write at the end of this turn, together
        // with every command issued until then, instead of asking epoll first (an epoll_ctl and a
        // loop turn per command). Only a write that left data behind (a full socket buffer)
        // waits for writability; so does connect(2), whose completion is the first writability.
        if (!read && !writing_ && (redis_->c.flags & REDIS_CONNECTED) != 0) {
            net::post(socket_.get_executor(), [self = shared_from_this(), type] { self->onReady(type, {}); });
            return;
        }
        socket_.async_wait(
            type, [self = shared_from_this(), type](boost::system::error_code ec) { self->onReady(type, ec); });
    }

    // Runs hiredis for the readiness that came; defined after State, which it reports to.
    void onReady(Descriptor::wait_type type, boost::system::error_code ec);

    Descriptor socket_;
    redisAsyncContext* redis_;
    std::weak_ptr<RedisConnection> owner_;
    std::string error_;
    bool wantRead_ = false;
    bool wantWrite_ = false;
    bool readArmed_ = false;
    bool writeArmed_ = false;
    bool writing_ = false;  // inside redisAsyncHandleWrite
};

struct RedisConnection::Pending {
    RedisReplyHandler done;
    SteadyClock::time_point deadline;
    SteadyClock::time_point sent;
};

// Everything hiredis reports (replies, messages, connect) is recorded by its callbacks and acted on
// in afterHiredis(), once hiredis returned: no handler of ours or of the owner ever runs inside
// hiredis, where freeing the context (or this connection) would be a use after free.
struct RedisConnection::State {
    enum class Phase { Idle, Locating, Resolving, Connecting, Handshake, Ready, Backoff, Stopped };

    State(RedisConnection& owner, net::io_context& context, RedisConnectionOptions options, Events events)
        : owner(owner),
          context(context),
          options(std::move(options)),
          events(std::move(events)),
          timer(context),
          resolver(context),
          backoff(this->options.backoffMin),
          jitter(std::random_device{}()) {}

    RedisConnection& owner;
    net::io_context& context;
    RedisConnectionOptions options;
    Events events;
    PushHandler onPush;

    Phase phase = Phase::Idle;
    std::uint64_t attempt = 0;  // tells the handlers of an abandoned attempt apart
    std::shared_ptr<Adapter> adapter;
    std::deque<Pending> pending;  // in the order hiredis answers them
    std::vector<std::pair<RedisReplyHandler, RedisResult>> completed;
    std::vector<RedisReply> pushes;
    std::string failureOfPending;  // what a NULL reply means while we free the context ourselves
    bool connectReported = false;

    // One timer, armed to what comes next: the end of the connect attempt, the oldest pending
    // command's deadline, or the end of the backoff.
    net::steady_timer timer;
    std::uint64_t timerGeneration = 0;
    bool timerArmed = false;

    net::ip::tcp::resolver resolver;
    std::chrono::milliseconds backoff;
    std::minstd_rand jitter;  // spreads reconnections, not a secret
    std::string lastError = "not started";
    bool downReported = false;
    RedisAddress address;

    // The owner's handlers hold it weakly: a connection its owner dropped stops retrying.
    template <class Handler>
    auto guarded(Handler handler) {
        return [weak = owner.weak_from_this(), handler = std::move(handler)](auto&&... args) mutable {
            auto self = weak.lock();
            if (!self) return;
            handler(*self->state_, std::forward<decltype(args)>(args)...);
        };
    }

    void startAttempt() {
        phase = Phase::Locating;
        ++attempt;
        connectReported = false;
        armTimer(SteadyClock::now() + toClock(options.connectTimeout));
        if (!options.address) {
            down("no address source configured", "connection lost");
            return;
        }
        options.address(guarded([id = attempt](State& s, std::variant<RedisAddress, RedisFailure> found) {
            if (s.phase != Phase::Locating || s.attempt != id) return;
            if (auto* failure = std::get_if<RedisFailure>(&found)) {
                s.down("no address: " + failure->message, "connection lost");
                return;
            }
            s.resolve(std::get<RedisAddress>(std::move(found)));
        }));
    }

    void resolve(RedisAddress found) {
        phase = Phase::Resolving;
        address = std::move(found);
        resolver.async_resolve(
            address.host, std::to_string(address.port),
            guarded(
                [id = attempt](State& s, boost::system::error_code ec, net::ip::tcp::resolver::results_type results) {
                    if (s.phase != Phase::Resolving || s.attempt != id) return;
                    if (ec || results.empty()) {
                        s.down("cannot resolve " + s.address.describe() + ": " + ec.message(), "connection lost");
                        return;
                    }
                    s.connect(results.begin()->endpoint());
                }));
    }

    void connect(const net::ip::tcp::endpoint& endpoint) {
        phase = Phase::Connecting;
        std::string ip = endpoint.address().to_string();
        // An IP address: hiredis's getaddrinfo answers it without a lookup.
        redisAsyncContext* redis = redisAsyncConnect(ip.c_str(), endpoint.port());
        if (redis == nullptr) {
            down("cannot connect to " + address.describe() + ": out of memory", "connection lost");
            return;
        }
        if (redis->err != 0) {
            std::string error = redis->errstr;
            redisAsyncFree(redis);  // no adapter attached yet: hiredis only closes the descriptor
            down("cannot connect to " + address.describe() + ": " + error, "connection lost");
            return;
        }
        redis->data = this;
        adapter = Adapter::attach(context, redis, owner.weak_from_this());
        redisAsyncSetConnectCallback(redis, &State::onHiredisConnect);
    }

    static void onHiredisConnect(const redisAsyncContext* redis, int status) {
        // A failure is seen as the context gone, with hiredis's error, in afterHiredis().
        if (status == REDIS_OK) static_cast<State*>(redis->data)->connectReported = true;
    }

    static void onHiredisReply(redisAsyncContext*, void* reply, void* data) {
        State& s = *static_cast<State*>(data);
        // hiredis keeps one callback per pending command, in the same order.
        if (s.pending.empty()) return;
        RedisReplyHandler done = std::move(s.pending.front().done);
        SteadyClock::time_point sent = s.pending.front().sent;
        s.pending.pop_front();
        RedisCommandStats* stats = s.options.stats.get();
        if (reply == nullptr) {  // the context is being freed
            if (stats) stats->failures.fetch_add(1, std::memory_order_relaxed);
            std::string failure = s.failureOfPending.empty() ? "connection lost" : s.failureOfPending;
            s.completed.emplace_back(std::move(done), RedisFailure{std::move(failure)});
            return;
        }
        RedisReply parsed = RedisReply::fromHiredis(*static_cast<redisReply*>(reply));
        if (stats) {
            stats->latency.observe(SteadyClock::now() - sent);
            if (parsed.type == RedisReply::Type::Error) stats->errorReplies.fetch_add(1, std::memory_order_relaxed);
        }
        s.completed.emplace_back(std::move(done), std::move(parsed));
    }

    static void onHiredisPush(redisAsyncContext*, void* reply, void* data) {
        // NULL: the context is being freed (once per subscribed channel); the loss is seen anyway.
        if (reply == nullptr) return;
        static_cast<State*>(data)->pushes.push_back(RedisReply::fromHiredis(*static_cast<redisReply*>(reply)));
    }

    void afterHiredis() {
        if (adapter && adapter->context() == nullptr) {
            std::string error = adapter->error().empty() ? "connection closed" : adapter->error();
            adapter.reset();
            down((phase == Phase::Ready ? "connection to " : "cannot connect to ") + address.describe() + ": " + error,
                 "connection lost");
        } else if (phase == Phase::Connecting && connectReported) {
            startHandshake();
        }
        deliver();
    }

    // AUTH, SELECT, then ROLE or PING: ready means the server answered, not only that the kernel
    // accepted the connection (a stopped server's kernel still does).
    void startHandshake() {
        phase = Phase::Handshake;
        auto deadline = SteadyClock::now() + toClock(options.connectTimeout);
        if (!options.password.empty()) {
            send({"AUTH", options.password}, handshakeStep("AUTH", false, &expectOk), deadline);
        }
        if (options.db != 0) {
            send({"SELECT", std::to_string(options.db)}, handshakeStep("SELECT", false, &expectOk), deadline);
        }
        if (options.requireMaster) {
            send({"ROLE"}, handshakeStep("ROLE", true, &expectMaster), deadline);
        } else {
            send({"PING"}, handshakeStep("PING", true, &expectNoError), deadline);
        }
    }

    static std::optional<std::string> expectNoError(const RedisReply& reply) {
        if (reply.isError()) return reply.string;
        return std::nullopt;
    }
    static std::optional<std::string> expectOk(const RedisReply& reply) {
        if (reply.asString() != "OK") return reply.describe();
        return std::nullopt;
    }
    static std::optional<std::string> expectMaster(const RedisReply& reply) {
        if (!reply.isArray() || reply.elements.empty() || !reply.elements[0].asString()) return reply.describe();
        if (*reply.elements[0].asString() != "master") {
            return "not a master (role " + std::string(*reply.elements[0].asString()) + ")";
        }
        return std::nullopt;
    }

    RedisReplyHandler handshakeStep(std::string command, bool last,
                                    std::optional<std::string> (*check)(const RedisReply&)) {
        return guarded([id = attempt, command = std::move(command), last, check](State& s, RedisResult result) {
            if (s.phase != Phase::Handshake || s.attempt != id) return;  // the attempt already ended
            if (auto* failure = std::get_if<RedisFailure>(&result)) {
                s.down(command + " to " + s.address.describe() + ": " + failure->message, "connection lost");
                return;
            }
            if (auto problem = check(std::get<RedisReply>(result))) {
                s.down(command + " to " + s.address.describe() + ": " + *problem, "connection lost");
                return;
            }
            if (last) s.becomeReady();
        });
    }

    void becomeReady() {
        disarmTimer();
        phase = Phase::Ready;
        backoff = options.backoffMin;
        if (downReported) {
            spdlog::info("redis {}: connected to {} again", options.name, address.describe());
        } else {
            spdlog::info("redis {}: connected to {}", options.name, address.describe());
        }
        downReported = false;
        lastError.clear();
        armForPending();
        if (events.onReady) events.onReady();
    }

    // Sends one command; `done` gets its reply, or a failure if the connection goes first.
    void send(const std::vector<std::string>& argv, RedisReplyHandler done, SteadyClock::time_point deadline) {
        if (!issue(argv, &State::onHiredisReply)) {
            if (options.stats) options.stats->failures.fetch_add(1, std::memory_order_relaxed);
            done(RedisFailure{"cannot send: " + lastErrorOfContext()});
            return;
        }
        pending.push_back(Pending{std::move(done), deadline, SteadyClock::now()});
        if (phase == Phase::Ready) armForPending();
    }

    bool issue(const std::vector<std::string>& argv, redisCallbackFn* callback) {
        if (!adapter || adapter->context() == nullptr) return false;
        std::vector<const char*> pointers;
        std::vector<std::size_t> lengths;
        pointers.reserve(argv.size());
        lengths.reserve(argv.size());
        for (const auto& argument : argv) {
            pointers.push_back(argument.data());
            lengths.push_back(argument.size());
        }
        return redisAsyncCommandArgv(adapter->context(), callback, this, static_cast<int>(argv.size()), pointers.data(),
                                     lengths.data()) == REDIS_OK;
    }

    std::string lastErrorOfContext() const {
        if (adapter && adapter->context() && adapter->context()->errstr && adapter->context()->err != 0) {
            return adapter->context()->errstr;
        }
        return "hiredis refused the command";
    }

    // Hands out what hiredis reported, outside hiredis. A handler may call back into this
    // connection (even stop()): what that adds is handed out by the same loop.
    void deliver() {
        while (!completed.empty() || !pushes.empty()) {
            auto replies = std::move(completed);
            completed.clear();
            for (auto& [done, result] : replies) done(std::move(result));
            auto messages = std::move(pushes);
            pushes.clear();
            for (const auto& message : messages) {
                if (onPush) onPush(message);
            }
        }
    }

    // Frees the hiredis context, if any: its pending commands fail with `failure`.
    void closeContext(const std::string& failure) {
        resolver.cancel();
        if (!adapter) return;
        auto closing = std::move(adapter);
        failureOfPending = failure;
        closing->free();
        failureOfPending.clear();
    }

    // The connection, or the attempt, is lost: report it once per loss and retry after a backoff.
    void down(const std::string& error, const std::string& failureOfPendingCommands) {
        closeContext(failureOfPendingCommands);
        lastError = error;
        phase = Phase::Backoff;
        auto half = backoff / 2;
        auto delay = half + std::chrono::milliseconds(std::uniform_int_distribution<std::int64_t>(
                                0, std::max<std::int64_t>(0, (backoff - half).count()))(jitter));
        backoff = std::min(backoff * 2, options.backoffMax);
        armTimer(SteadyClock::now() + toClock(delay));
        if (!downReported) {
            downReported = true;
            spdlog::warn("redis {}: {}; reconnecting", options.name, error);
            if (events.onDown) events.onDown(error);
        } else {
            spdlog::debug("redis {}: {}; retry in {} ms", options.name, error, delay.count());
        }
        deliver();
    }

    void stop() {
        if (phase == Phase::Stopped) return;
        phase = Phase::Stopped;
        disarmTimer();
        closeContext("stopped");
        lastError = "stopped";
        deliver();
    }

    void armForPending() {
        if (!timerArmed && !pending.empty()) armTimer(pending.front().deadline);
    }

    void armTimer(SteadyClock::time_point at) {
        ++timerGeneration;
        timerArmed = true;
        timer.expires_at(at);
        timer.async_wait(guarded([generation = timerGeneration](State& s, boost::system::error_code) {
            if (s.timerGeneration != generation) return;  // re-armed or disarmed since
            s.timerArmed = false;
            s.onTimer();
        }));
    }

    void disarmTimer() {
        ++timerGeneration;
        timerArmed = false;
        timer.cancel();
    }

    void onTimer() {
        switch (phase) {
            case Phase::Locating:
            case Phase::Resolving:
            case Phase::Connecting:
            case Phase::Handshake:
                down("cannot connect to " + (address.host.empty() ? options.name : address.describe()) +
                         ": timed out after " + std::to_string(options.connectTimeout.count()) + " ms",
                     "connection lost");
                return;
            case Phase::Ready:
                // The deadlines grow with the queue: when the oldest one has not passed, it is the next.
                if (!pending.empty() && pending.front().deadline <= SteadyClock::now()) {
                    down("command to " + address.describe() + " timed out after " +
                             std::to_string(options.commandTimeout.count()) + " ms",
                         "timeout");
                    return;
                }
                armForPending();
                return;
            case Phase::Backoff: startAttempt(); return;
            case Phase::Idle:
            case Phase::Stopped: return;
        }
    }
};

void RedisConnection::Adapter::onReady(Descriptor::wait_type type, boost::system::error_code ec) {
    bool read = type == Descriptor::wait_read;
    (read ? readArmed_ : writeArmed_) = false;
    // A descriptor error other than cancellation is left to hiredis's next read, or to the
    // command timeout.
    if (ec || redis_ == nullptr || !(read ? wantRead_ : wantWrite_)) return;
    auto owner = owner_.lock();
    if (!owner) return;  // the connection is being destroyed and frees the context itself
    // hiredis calls the hooks again from inside, re-arming what it still wants.
    if (read) {
        redisAsyncHandleRead(redis_);
    } else {
        writing_ = true;
        redisAsyncHandleWrite(redis_);
        writing_ = false;
    }
    // redis_ may be null now. What hiredis reported during the call takes effect here,
    // outside hiredis.
    owner->state_->afterHiredis();
}

std::shared_ptr<RedisConnection> RedisConnection::create(boost::asio::io_context& context,
                                                         RedisConnectionOptions options, Events events) {
    // A local class may call the private constructor, and lets make_shared allocate once.
    struct Constructible : RedisConnection {
        Constructible(boost::asio::io_context& context, RedisConnectionOptions options, Events events)
            : RedisConnection(context, std::move(options), std::move(events)) {}
    };
    return std::make_shared<Constructible>(context, std::move(options), std::move(events));
}

RedisConnection::RedisConnection(boost::asio::io_context& context, RedisConnectionOptions options, Events events)
    : state_(std::make_unique<State>(*this, context, std::move(options), std::move(events))) {}

RedisConnection::~RedisConnection() {
    // The last owner let go: commands still pending fail like on stop(), and the context is freed
    // here, outside hiredis (an adapter handler holds its connection while hiredis runs).
    state_->stop();
}

void RedisConnection::start() {
    if (state_->phase != State::Phase::Idle) return;
    state_->lastError = "connecting";
    state_->startAttempt();
}

void RedisConnection::stop() {
    state_->stop();
}

bool RedisConnection::ready() const {
    return state_->phase == State::Phase::Ready;
}

const std::string& RedisConnection::lastError() const {
    return state_->lastError;
}

void RedisConnection::command(std::vector<std::string> argv, RedisReplyHandler done) {
    if (state_->phase != State::Phase::Ready) {
        if (state_->options.stats) state_->options.stats->failures.fetch_add(1, std::memory_order_relaxed);
        done(RedisFailure{"not connected: " + state_->lastError});
        return;
    }
    state_->send(argv, std::move(done), SteadyClock::now() + toClock(state_->options.commandTimeout));
}

void RedisConnection::restart(const std::string& why) {
    switch (state_->phase) {
        case State::Phase::Connecting:
        case State::Phase::Handshake:
        case State::Phase::Ready: state_->down("restarted: " + why, "restarted: " + why); return;
        default: return;  // no connection to drop: one is being looked for already, or never will be
    }
}

void RedisConnection::setPushHandler(PushHandler onPush) {
    state_->onPush = std::move(onPush);
}

bool RedisConnection::sendPubSub(const std::vector<std::string>& argv) {
    if (state_->phase != State::Phase::Ready) return false;
    return state_->issue(argv, &State::onHiredisPush);
}

}  // namespace wspush
