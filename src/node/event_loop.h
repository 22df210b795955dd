// One event loop: an io_context run by exactly one thread, and everything that lives on it.
// A connection is bound to one loop for its whole life; all its handlers run on that thread,
// so nothing reachable only from one loop needs a lock (docs/architecture.md).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/batched_sends.h"
#include "base/raw_deflate.h"
#include "node/frame_compressor.h"
#include "node/joined_frame_cache.h"
#include "node/local_hub.h"
#include "node/metrics.h"
#include "node/wire_frame_cache.h"

namespace wspush {

// Whose connections a disconnect request (POST /api/disconnect, on every node) is for: the
// connections of `user`, or the one connection whose id is `client`. Exactly one is non-empty.
struct DisconnectTarget {
    std::string user;
    std::string client;
    bool reconnect = false;  // whether the client is told it may reconnect (4007) or not (4503)
};

// A connection as the loop sees it at shutdown and for disconnect requests.
class Connection {
public:
    virtual ~Connection() = default;
    // Ends the connection gracefully (WebSocket: `disconnect` + close 1001; HTTP: after the
    // request in flight). Called on the connection's loop; idempotent.
    virtual void drain() = 0;
    // Whether draining it sends a client to reconnect elsewhere: a WebSocket, drained at
    // shutdown.drain_rate. Anything else is drained at once.
    virtual bool isWebSocket() const = 0;
    // When a connected client of `target`: closes the connection and ends its session, which can
    // then not be resumed. Otherwise (an HTTP connection, another client) nothing. On the loop.
    virtual void disconnect(const DisconnectTarget& target) = 0;
};

// A writer that can hold what it was given during a turn of deliveries and write it all at once
// when the turn ends (EventLoop::flushAfterDeliveries).
class DeferredWriter {
public:
    virtual ~DeferredWriter() = default;
    virtual void flushDeferred() = 0;
};

class EventLoop {
public:
    explicit EventLoop(unsigned index);
    ~EventLoop();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    unsigned index() const { return index_; }
    boost::asio::io_context& context() { return *context_; }
    LocalHub& hub() { return hub_; }
    JoinedFrameCache& joinedFrames() { return joinedFrames_; }
    WireFrameCache& wireFrames() { return wireFrames_; }
    // The shared compression's zlib streams (frame_compressor.h), made for the first connection
    // that negotiates it: a loop whose clients never compress costs nothing.
    FrameCompressor& frameCompressor(const CompressionConfig& config) {
        if (!frameCompressor_)
            frameCompressor_ = std::make_unique<FrameCompressor>(config, metrics_.deflateCompressions);
        return *frameCompressor_;
    }
    RawInflater& inflater() {
        if (!inflater_) inflater_ = std::make_unique<RawInflater>();
        return *inflater_;
    }
    LoopMetrics& metrics() { return metrics_; }
    const LoopMetrics& metrics() const { return metrics_; }

    // Hands a publication to this loop's hub, from any thread. Deliveries run on this loop in
    // exactly the order they were handed over.
    void deliverSoon(PublicationPtr publication, SharedFrame frame);

    // How long deliveries handed over to a busy loop (one whose last turn of deliveries ended
    // less than this long, or less than that turn lasted, ago) wait for more to join them; an
    // idle loop delivers at once, and 0 never waits. Everything that arrives within the window is delivered in one
    // turn, and each connection writes its share of it in one system call. Set before start().
    void setDeliveryWindow(std::chrono::steady_clock::duration window) { deliveryWindow_ = window; }
    // Delivers everything handed over so far, now rather than when the window closes: for a
    // session leaving this loop, which must not miss what was already on its way here. On this
    // loop, outside a turn of deliveries.
    void deliverPending() { drainInbox(false); }
    // True while this loop delivers a turn of publications (on this loop's thread).
    bool delivering() const { return delivering_; }
    // While the connections given a turn's deliveries write (after the turn), where a connection
    // queues its write to go out with the others' in one system call; else null, as where io_uring
    // is not available: the connection writes at once.
    BatchedSends* batchedSends() { return batchingSends_ ? sends_.get() : nullptr; }
    // Calls writer->flushDeferred() once the current turn of deliveries ends. Only while delivering().
    void flushAfterDeliveries(std::shared_ptr<DeferredWriter> writer) { deferredWriters_.push_back(std::move(writer)); }

    void attach(Connection* connection);
    void detach(Connection* connection) { connections_.erase(connection); }
    // Drains this loop's connections: the WebSocket ones `rate` per second (0: all at once),
    // faster when needed to have told the last one by `closeBy`, and every other one at once.
    // Call on this loop, once.
    void drainConnections(double rate, std::chrono::steady_clock::time_point closeBy);
    // Hands `target` to every connection of this loop (Connection::disconnect). Call on this loop.
    void disconnectConnections(const DisconnectTarget& target);

    // How often the loop measures its lag (LoopMetrics::lag): a timer due every interval is run
    // late by as long as the loop was busy with something else.
    static constexpr std::chrono::milliseconds kLagProbeInterval{100};

    void start();  // run() on a thread of its own
    // Runs the loop on the calling thread, measuring its lag, until stop().
    void run();
    void stop();  // makes run() return; pending handlers are destroyed with the io_context
    void join();

private:
    struct Delivery {
        PublicationPtr publication;
        SharedFrame frame;
    };
    void drainInbox(bool windowed = false);
    bool openSends();             // sends_, made on first use; false where io_uring is not available
    void scheduleDrain();         // on this loop
    void drainNextConnections();  // the paced drain's next step, on this loop
    void probeLag(std::chrono::steady_clock::time_point due);  // on this loop

    // The paced drain of the connections (drainConnections), on this loop. A connection that
    // closes by itself meanwhile is skipped, not counted.
    struct ConnectionDrain {
        std::vector<Connection*> queue;  // in the order they are told to go
        std::size_t next = 0;            // the first not yet told
        double rate = 0;                 // per second; infinite: everyone at once
        std::chrono::steady_clock::time_point closeBy;
        std::chrono::steady_clock::time_point lastStep;
        double credit = 1;         // connections the next step may tell: the first goes at once
        bool stepPending = false;  // a next step is posted or its timer armed
    };

    unsigned index_;
    // Deliveries from other threads wait here; one posted handler drains them all. The order is
    // fixed by this mutex, not by the io_context, which does not promise FIFO between a loop's
    // own posts and other threads' (observed: a loop's post to itself overtaken by a later one).
    std::mutex inboxMutex_;
    std::vector<Delivery> inbox_;
    bool drainPosted_ = false;
    std::vector<Delivery> draining_;  // only touched by drainInbox, on this loop
    std::chrono::steady_clock::duration deliveryWindow_{0};
    // Until when (steady_clock ticks) the loop counts as busy: the end of the last turn plus the
    // window or that turn's length, whichever is longer. Read by other threads' deliverSoon.
    std::atomic<std::chrono::steady_clock::rep> busyUntil_{0};
    // Until when the loop does not wait even when busy: the last window did not pay off.
    std::atomic<std::chrono::steady_clock::rep> windowOffUntil_{0};
    bool delivering_ = false;
    std::vector<std::shared_ptr<DeferredWriter>> deferredWriters_;
    std::vector<std::shared_ptr<DeferredWriter>> flushing_;  // deferredWriters_ being flushed
    // Declared before the io_context: handlers destroyed with it still reach the hub and metrics.
    LocalHub hub_;
    JoinedFrameCache joinedFrames_;
    WireFrameCache wireFrames_;
    LoopMetrics metrics_;
    std::unique_ptr<FrameCompressor> frameCompressor_;  // counts in metrics_
    std::unique_ptr<RawInflater> inflater_;
    std::unique_ptr<BatchedSends> sends_;  // opened by the first turn with several writes
    bool sendsOpened_ = false;             // tried already (it may be unavailable)
    bool batchingSends_ = false;
    std::uint64_t sendsCounted_ = 0;  // of sends_->sends(), in metrics_.batchedSends
    std::unordered_set<Connection*> connections_;
    std::optional<ConnectionDrain> connectionDrain_;
    std::optional<boost::asio::io_context> context_;
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
    std::optional<boost::asio::steady_timer> windowTimer_;  // the delivery window; after context_
    std::optional<boost::asio::steady_timer> drainTimer_;   // the paced drain's steps; after context_
    std::optional<boost::asio::steady_timer> lagTimer_;     // probeLag; after context_
    std::thread thread_;
};

class EventLoopPool {
public:
    explicit EventLoopPool(unsigned count);

    std::size_t size() const { return loops_.size(); }
    EventLoop& at(std::size_t i) { return *loops_[i]; }
    // Round-robin choice of the loop for a new connection.
    EventLoop& next();
    std::vector<EventLoop*> all();

    // Runs loop 0 on the calling thread and every other loop on a thread of its own; returns
    // once loop 0 stops. With one loop the process has no other thread, so the kernel looks up
    // its sockets without counting references (one atomic pair less per system call).
    void run();
    void stop();  // every loop; any thread
    void join();  // the threads of loops 1..N-1

private:
    std::vector<std::unique_ptr<EventLoop>> loops_;
    std::size_t next_ = 0;
};

}  // namespace wspush
