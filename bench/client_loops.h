// The event loops of the generator's WebSocket clients (ws_clients.cpp: the subscriber pool;
// recovery_clients.cpp: the recover clients). Both open many connections the same way: spread
// over --threads loops, at most --connect-concurrency handshakes in progress per process, each
// connection failed when its connect phase outlasts --connect-timeout. That machinery is here
// once; what a client does after connecting stays in its own file.
//
// Templates, not virtual functions: a loop calls its clients directly, and nothing here runs per
// received message.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "ws_stream.h"

namespace bench {

// What every loop of a client set reads: where to connect and how long a connect phase may take,
// and what the controller polls: how many clients are through their connect phase (succeeded or
// failed). A client set derives its own counters from this.
struct ClientsShared {
    ClientsShared(const Options& o, const Target& t)
        : options(o),
          target(t),
          endpoint(resolveEndpoint(o.host, o.port)),
          hostHeader(o.host + ":" + std::to_string(o.port)),
          connectTimeoutNs(secondsToNs(o.connectTimeout)) {
        // --servers: subscriber i connects to endpoints[serverIndexOf(options, i)].
        for (const auto& [host, port] : o.servers) {
            endpoints.push_back(resolveEndpoint(host, port));
            hostHeaders.push_back(host + ":" + std::to_string(port));
        }
        if (endpoints.empty()) {
            endpoints.push_back(endpoint);
            hostHeaders.push_back(hostHeader);
        }
        for (const std::string& address : o.localAddresses)
            localAddresses.push_back(boost::asio::ip::make_address_v4(address));
    }

    // The source address of the next connection to open, in turn (--local-addresses); the
    // kernel's choice (unspecified) without any. Any loop of the process may ask.
    boost::asio::ip::address_v4 nextLocalAddress() {
        if (localAddresses.empty()) return {};
        return localAddresses[nextLocal.fetch_add(1, std::memory_order_relaxed) % localAddresses.size()];
    }

    const Options& options;
    const Target& target;
    tcp::endpoint endpoint;
    std::string hostHeader;
    std::vector<tcp::endpoint> endpoints;
    std::vector<std::string> hostHeaders;
    std::vector<boost::asio::ip::address_v4> localAddresses;
    std::atomic<std::size_t> nextLocal{0};
    std::int64_t connectTimeoutNs;
    std::atomic<std::uint64_t> settled{0};
};

// The TCP connection of a client is up: the WebSocket handshake as a subscriber of `channel`,
// with the settings every bench client uses. `onHandshake(error_code)` follows.
template <class Handler>
void handshakeAsSubscriber(websocket::stream<Socket>& ws, const ClientsShared& shared, std::uint64_t channel,
                           Handler&& onHandshake, std::size_t server = 0) {
    error_code ignored;
    ws.next_layer().set_option(tcp::no_delay(true), ignored);
    configure(ws, shared.options);
    std::string target = shared.target.subscribeTarget(channelName(shared.options, channel));
    ws.async_handshake(shared.hostHeaders[server], target, std::forward<Handler>(onHandshake));
}

// One event loop and the clients that live on it. Everything here is touched only by the loop's
// thread (until the loop is stopped and joined). A client set derives its loop from this, adding
// what its clients count per loop.
//
// A Client provides:
//   void start();                    begin connecting (the loop has counted it in `connecting`)
//   bool settled() const;            its connect phase is over (succeeded or failed)
//   std::int64_t startedNs() const;  when start() was called
//   void failConnectTimedOut();      fail it: its connect phase outlasted --connect-timeout
//   void failConnectAborted();       fail it: the controller's connect phase time limit was reached
// and calls connectDone() on its loop when its connect phase ends after start().
template <class ClientType, class SharedType>
struct ClientLoop {
    using Client = ClientType;
    using Shared = SharedType;

    Shared& shared;
    net::io_context ctx{1};
    std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
    std::vector<std::unique_ptr<Client>> clients;
    std::size_t nextStart = 0;
    std::size_t connecting = 0;  // started, connect phase not over
    std::size_t connectLimit = 1;
    net::steady_timer sweep{ctx};
    bool sweeping = false;
    std::thread thread;

    explicit ClientLoop(Shared& s) : shared(s) { work.emplace(ctx.get_executor()); }

    // Starts clients up to the connect limit; each one that finishes its connect phase makes room
    // for the next.
    void startMore() {
        while (connecting < connectLimit && nextStart < clients.size()) {
            ++connecting;
            clients[nextStart++]->start();
        }
        armSweep();
    }

    // A started client's connect phase ended, either way.
    void connectDone() {
        --connecting;
        countSettled();
        startMore();
    }

    // A client settles without having started (aborted before its turn): the controller still
    // waits for it.
    void countSettled() { shared.settled.fetch_add(1, std::memory_order_release); }

    // Fails clients whose connect phase outlasts --connect-timeout. Runs only while some connect.
    void armSweep() {
        if (sweeping || connecting == 0) return;
        sweeping = true;
        sweep.expires_after(std::chrono::milliseconds(100));
        sweep.async_wait([this](const error_code& ec) {
            sweeping = false;
            if (ec) return;
            std::int64_t limit = nowNs() - shared.connectTimeoutNs;
            for (std::size_t i = 0; i < nextStart; ++i) {
                Client& c = *clients[i];
                if (!c.settled() && c.startedNs() < limit) c.failConnectTimedOut();
            }
            armSweep();
        });
    }
};

// The loops of one client set: clients with global indices [first, first + count), client i on
// loop i % loops, --threads loops at most (and no more than clients). Not thread-safe: one
// controller thread calls these.
template <class Loop>
class ClientLoops {
public:
    // makeClient(Loop&, global index) -> std::unique_ptr<Client>
    template <class MakeClient>
    ClientLoops(typename Loop::Shared& shared, std::uint64_t first, std::uint64_t count, MakeClient makeClient)
        : shared_(shared), count_(count) {
        const Options& o = shared.options;
        auto threads = static_cast<std::size_t>(std::max<std::uint64_t>(1, std::min<std::uint64_t>(o.threads, count)));
        for (std::size_t i = 0; i < threads; ++i) loops_.push_back(std::make_unique<Loop>(shared));
        for (auto& loop : loops_) {
            loop->connectLimit = std::max<std::size_t>(1, o.connectConcurrency / threads);
            loop->clients.reserve(count / threads + 1);
        }
        for (std::uint64_t i = 0; i < count; ++i) {
            std::uint64_t global = first + i;
            Loop& loop = *loops_[global % threads];
            loop.clients.push_back(makeClient(loop, global));
        }
    }

    ~ClientLoops() {
        stop();
        // Clients (and their sockets) go before the io_contexts that own their pending handlers.
        for (auto& loop : loops_) loop->clients.clear();
    }

    ClientLoops(const ClientLoops&) = delete;
    ClientLoops& operator=(const ClientLoops&) = delete;

    // Runs each loop on its own thread; clients start connecting, paced by the connect limit.
    void start() {
        for (auto& loop : loops_) {
            Loop* l = loop.get();
            net::post(l->ctx, [l] { l->startMore(); });
            l->thread = std::thread([l] { l->ctx.run(); });
        }
    }

    // Every client is through its connect phase.
    bool settled() const { return shared_.settled.load(std::memory_order_acquire) >= count_; }

    // Nothing new starts, and every client not through its connect phase fails.
    void abortConnecting() {
        onEachLoop([](Loop& l) {
            l.nextStart = l.clients.size();
            for (auto& c : l.clients)
                if (!c->settled()) c->failConnectAborted();
        });
    }

    // Runs f(Loop&) on each loop's thread.
    template <class F>
    void onEachLoop(F f) {
        for (auto& loop : loops_) {
            Loop* l = loop.get();
            net::post(l->ctx, [l, f] { f(*l); });
        }
    }

    // Stops the loops and joins their threads; the clients stay (and their connections open)
    // until destruction, for the counters to be read.
    void stop() {
        if (stopped_) return;
        stopped_ = true;
        for (auto& loop : loops_) {
            loop->work.reset();
            loop->ctx.stop();
        }
        for (auto& loop : loops_)
            if (loop->thread.joinable()) loop->thread.join();
    }

    std::uint64_t count() const { return count_; }
    std::size_t size() const { return loops_.size(); }
    auto begin() const { return loops_.begin(); }
    auto end() const { return loops_.end(); }

private:
    ClientsShared& shared_;
    std::uint64_t count_;
    std::vector<std::unique_ptr<Loop>> loops_;
    bool stopped_ = false;
};

}  // namespace bench
