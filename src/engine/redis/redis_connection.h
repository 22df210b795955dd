// One connection to one Redis server, driven by an Asio io_context over hiredis's async API.
//
// Thread model: a RedisConnection lives on one io_context (the event loop the Redis engine lives on); every
// member is called on that thread and every handler runs there. Nothing blocks: the host name is
// resolved with Asio (hiredis 0.14 would call a blocking getaddrinfo), connect and commands are
// bounded by timers (hiredis 0.14 has no timeouts), and a lost connection is re-established with
// jittered exponential backoff (backoffMin → backoffMax) so a dead Redis costs no CPU.
//
// Commands sent while connected are pipelined: hiredis buffers them and the adapter writes the
// buffer when the socket is writable, so commands issued in one turn leave in one write.
// A command issued while not connected fails at once (the caller answers 503 rather than wait).
// The oldest pending command older than commandTimeout marks the connection dead: every pending
// command fails, and the connection reconnects.
//
// Lifetime: owned by a shared_ptr (handlers of the adapter keep it alive); stop() ends it
// (idempotent, fails pending commands, never reconnects again). Never destroyed inside one of
// hiredis's callbacks: teardown of a hiredis context is deferred with post().
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "engine/redis/redis_reply.h"
#include "wspush/latency_histogram.h"

namespace wspush {

// Where a Redis server listens.
struct RedisAddress {
    std::string host;
    unsigned short port = 6379;
    std::string describe() const { return host + ":" + std::to_string(port); }
};

// A command that got no reply: not connected, the connection was lost while it was pending, or
// it timed out. (A Redis error reply is a RedisReply of Type::Error, not a failure.)
struct RedisFailure {
    std::string message;
};

using RedisResult = std::variant<RedisReply, RedisFailure>;
using RedisReplyHandler = std::function<void(RedisResult)>;

// Where to connect, asked before every connection attempt: a fixed address, or a Sentinel
// lookup of a master. Calls `found` once, with the address or a failure to report.
using RedisAddressSource = std::function<void(std::function<void(std::variant<RedisAddress, RedisFailure>)> found)>;

// What a connection's commands cost, for /metrics: written on the connection's thread, read on any.
struct RedisCommandStats {
    LatencyHistogram latency;                    // command sent → reply read
    std::atomic<std::uint64_t> errorReplies{0};  // replies of Type::Error (NOSCRIPT included)
    std::atomic<std::uint64_t> failures{0};      // RedisFailure: not connected, lost, timed out
};

struct RedisConnectionOptions {
    std::string name;            // for logs, e.g. "shard 127.0.0.1:6379 commands"
    RedisAddressSource address;  // required
    std::string password;        // AUTH after connecting when not empty
    int db = 0;                  // SELECT after connecting when not 0
    bool requireMaster = false;  // check ROLE after connecting; a replica is a failed attempt
    std::chrono::milliseconds connectTimeout{1000};
    std::chrono::milliseconds commandTimeout{2000};
    std::chrono::milliseconds backoffMin{250};
    std::chrono::milliseconds backoffMax{5000};
    std::shared_ptr<RedisCommandStats> stats;  // counts command() calls when set
};

class RedisConnection : public std::enable_shared_from_this<RedisConnection> {
public:
    struct Events {
        // The connection is ready for commands (connected, AUTH, SELECT and ROLE done): the
        // owner loads its scripts, resubscribes, checks positions. May be called many times.
        std::function<void()> onReady;
        // The connection was lost or an attempt failed (once per loss, not per retry while down).
        std::function<void(const std::string& error)> onDown;
    };

    static std::shared_ptr<RedisConnection> create(boost::asio::io_context& context, RedisConnectionOptions options,
                                                   Events events);
    ~RedisConnection();

    void start();  // begins connecting; reconnects by itself from then on
    void stop();   // idempotent; pending commands fail with "stopped"

    bool ready() const;
    // The last error, empty while ready: for /healthz.
    const std::string& lastError() const;

    // Sends one command (binary-safe argv). `done` runs exactly once, on this connection's thread.
    void command(std::vector<std::string> argv, RedisReplyHandler done);

    // Drops the current connection as if it was lost (pending commands fail, reconnect follows):
    // for an owner that found it unhealthy.
    void restart(const std::string& why);

private:
    // RedisSubscriber drives its own connection with SUBSCRIBE and UNSUBSCRIBE, which hiredis
    // routes by channel rather than to a pending command: it reaches them through these two.
    friend class RedisSubscriber;
    using PushHandler = std::function<void(const RedisReply&)>;
    // Every reply to sendPubSub() and every message goes to `onPush`, in arrival order (set
    // before start()).
    void setPushHandler(PushHandler onPush);
    // Sends SUBSCRIBE or UNSUBSCRIBE; false when not ready (nothing sent).
    bool sendPubSub(const std::vector<std::string>& argv);

    class Adapter;
    struct Pending;
    RedisConnection(boost::asio::io_context& context, RedisConnectionOptions options, Events events);
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace wspush
