#include "node/event_loop.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

namespace wspush {

namespace {
// After a window that did not pay off, how long a busy loop delivers at once before it tries again.
constexpr std::chrono::seconds kWindowRetry{1};
// Sends per io_uring submission: 1,000 connections' writes take four system calls, in a ring of
// about 25 KiB per loop.
constexpr unsigned kBatchedSends = 256;
}  // namespace

EventLoop::EventLoop(unsigned index) : index_(index) {
    // The default concurrency hint: with hint 1 Asio queues a loop's posts to itself privately,
    // behind other threads' posts. Deliveries do not depend on post order either way (deliverSoon).
    context_.emplace();
    work_.emplace(context_->get_executor());
    windowTimer_.emplace(*context_);
    drainTimer_.emplace(*context_);
    lagTimer_.emplace(*context_);
}

EventLoop::~EventLoop() {
    stop();
    join();
    windowTimer_.reset();
    drainTimer_.reset();
    lagTimer_.reset();
    context_.reset();  // destroys pending handlers, and with them the connections they own
}

void EventLoop::deliverSoon(PublicationPtr publication, SharedFrame frame) {
    bool post = false;
    {
        std::lock_guard lock(inboxMutex_);
        inbox_.push_back(Delivery{std::move(publication), std::move(frame)});
        post = !std::exchange(drainPosted_, true);
    }
    if (!post) return;
    // Like Nagle's algorithm: an idle loop delivers at once, a busy one lets more publications
    // join the next turn. Low latency at low rates, one write per connection for many
    // publications at high ones. Busy means the last turn ended less than a window ago, or
    // less than that turn lasted: after a long turn the loop first works through the writes'
    // completions and the requests that waited, and a publication arriving then would otherwise
    // find the loop "idle" and get a turn to itself.
    // And the window must pay off: when a windowed turn gave connections hardly more than one
    // message each (publications spread over many channels with few subscribers each), waiting
    // only adds latency, so the loop stops waiting and tries again a while later.
    auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    if (deliveryWindow_ == std::chrono::steady_clock::duration::zero() ||
        now >= busyUntil_.load(std::memory_order_relaxed) || now < windowOffUntil_.load(std::memory_order_relaxed))
        boost::asio::post(*context_, [this] { drainInbox(); });
    else
        boost::asio::post(*context_, [this] { scheduleDrain(); });  // the timer belongs to this loop's thread
}

void EventLoop::scheduleDrain() {
    windowTimer_->expires_after(deliveryWindow_);
    windowTimer_->async_wait([this](const boost::system::error_code& ec) {
        if (!ec) drainInbox(/*windowed=*/true);
    });
}

void EventLoop::drainInbox(bool windowed) {
    assert(!delivering_);
    {
        std::lock_guard lock(inboxMutex_);
        draining_.swap(inbox_);
        drainPosted_ = false;
    }
    // Connections queue what they are given and write once, after the whole turn: a burst of
    // publications reaches each subscriber in one system call instead of one per publication.
    auto start = std::chrono::steady_clock::now();
    delivering_ = true;
    std::size_t delivered = 0;
    for (const Delivery& delivery : draining_) {
        delivered += hub_.deliver(delivery.publication, delivery.frame);
        if (delivery.publication->report) delivery.publication->report->partDone();
    }
    delivering_ = false;
    draining_.clear();
    flushing_.swap(deferredWriters_);
    std::size_t writes = flushing_.size();
    batchingSends_ = writes > 1 && openSends();
    for (std::shared_ptr<DeferredWriter>& writer : flushing_) {
        // Let go right after its flush, while its reference count is still in the cache.
        std::shared_ptr<DeferredWriter>(std::move(writer))->flushDeferred();
    }
    flushing_.clear();
    if (batchingSends_) {
        batchingSends_ = false;  // what the writers do once told their results goes out at once
        sends_->submit();
        metrics_.batchedSends.add(sends_->sends() - sendsCounted_);
        sendsCounted_ = sends_->sends();
    }
    joinedFrames_.clear();

    auto end = std::chrono::steady_clock::now();
    busyUntil_.store((end + std::max(deliveryWindow_, end - start)).time_since_epoch().count(),
                     std::memory_order_relaxed);
    if (windowed) {
        bool paidOff = 2 * delivered >= 3 * writes;  // at least 1.5 messages per write
        windowOffUntil_.store(paidOff ? 0 : (end + kWindowRetry).time_since_epoch().count(), std::memory_order_relaxed);
    }
}

bool EventLoop::openSends() {
    if (sendsOpened_) return sends_ != nullptr;
    sendsOpened_ = true;
    std::string why;
    sends_ = BatchedSends::open(kBatchedSends, why);
    if (!sends_) spdlog::info("event loop {}: io_uring is not available ({}): one system call per write", index_, why);
    return sends_ != nullptr;
}

void EventLoop::attach(Connection* connection) {
    connections_.insert(connection);
    // A WebSocket that appears during the drain (an upgrade that was under way) goes last, but it
    // goes. An HTTP connection accepted now (the API listener stays open) is answered with
    // `Connection: close` (HttpApi::draining) and needs nothing from here.
    if (!connectionDrain_ || !connection->isWebSocket()) return;
    connectionDrain_->queue.push_back(connection);
    if (connectionDrain_->stepPending) return;
    connectionDrain_->stepPending = true;
    // Not from here: the connection is still being constructed.
    boost::asio::post(*context_, [this] { drainNextConnections(); });
}

void EventLoop::drainConnections(double rate, std::chrono::steady_clock::time_point closeBy) {
    if (connectionDrain_) return;
    // drain() may detach synchronously, so iterate over a copy.
    std::vector<Connection*> snapshot(connections_.begin(), connections_.end());
    ConnectionDrain paced;
    for (Connection* connection : snapshot) {
        if (!connections_.contains(connection)) continue;
        if (rate > 0 && connection->isWebSocket())
            paced.queue.push_back(connection);
        else
            connection->drain();
    }
    // No rate: everyone at once.
    paced.rate = rate > 0 ? rate : std::numeric_limits<double>::infinity();
    paced.closeBy = closeBy;
    paced.lastStep = std::chrono::steady_clock::now();
    connectionDrain_ = std::move(paced);
    drainNextConnections();
}

void EventLoop::drainNextConnections() {
    using Seconds = std::chrono::duration<double>;
    constexpr double kInfinite = std::numeric_limits<double>::infinity();
    ConnectionDrain& paced = *connectionDrain_;
    paced.stepPending = false;
    auto now = std::chrono::steady_clock::now();
    // The rate, raised when the rest would not be told by the deadline at it; past the deadline
    // everyone left goes at once rather than being cut without a word later.
    double left = Seconds(paced.closeBy - now).count();
    double remaining = static_cast<double>(paced.queue.size() - paced.next);
    double rate = left > 0 ? std::max(paced.rate, remaining / left) : kInfinite;
    double step = std::clamp(1.0 / rate, 0.01, 1.0);  // 10 ms, or one connection per step at low rates
    // Credit for the time since the last step, but for no more than 100 ms of it (or two steps at
    // low rates): a loop that was busy for a moment keeps up the pace, and one that was busy for
    // long does not make up for it in a burst. The rate stays a ceiling for any second, give or
    // take a tenth.
    double since = std::min(Seconds(now - paced.lastStep).count(), std::max(2 * step, 0.1));
    paced.lastStep = now;
    paced.credit = rate == kInfinite ? kInfinite : paced.credit + rate * since;
    while (paced.next < paced.queue.size() && paced.credit >= 1) {
        Connection* connection = paced.queue[paced.next++];
        if (!connections_.contains(connection)) continue;  // closed by itself meanwhile: free
        connection->drain();
        paced.credit -= 1;
    }
    if (paced.next == paced.queue.size()) return;
    paced.stepPending = true;
    drainTimer_->expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(Seconds(step)));
    drainTimer_->async_wait([this](const boost::system::error_code& ec) {
        if (!ec) drainNextConnections();
    });
}

void EventLoop::disconnectConnections(const DisconnectTarget& target) {
    // disconnect() may detach synchronously, so iterate over a copy.
    std::vector<Connection*> snapshot(connections_.begin(), connections_.end());
    for (Connection* connection : snapshot)
        if (connections_.contains(connection)) connection->disconnect(target);
}

void EventLoop::start() {
    thread_ = std::thread([this] { run(); });
}

void EventLoop::run() {
    probeLag(std::chrono::steady_clock::now() + kLagProbeInterval);
    for (;;) {
        try {
            context_->run();
            return;
        } catch (const std::exception& e) {
            // A handler let an exception escape: a bug. Keep the loop alive for everyone else.
            spdlog::critical("event loop {}: unhandled exception: {}", index_, e.what());
        }
    }
}

void EventLoop::probeLag(std::chrono::steady_clock::time_point due) {
    lagTimer_->expires_at(due);
    lagTimer_->async_wait([this, due](boost::system::error_code ec) {
        if (ec) return;
        auto now = std::chrono::steady_clock::now();
        metrics_.lag.observe(now - due);
        // From now, not from `due`: a long stall is one late sample, not a burst of catching up.
        probeLag(now + kLagProbeInterval);
    });
}

void EventLoop::stop() {
    work_.reset();
    if (context_) context_->stop();
}

void EventLoop::join() {
    if (thread_.joinable()) thread_.join();
}

EventLoopPool::EventLoopPool(unsigned count) {
    for (unsigned i = 0; i < count; ++i) loops_.push_back(std::make_unique<EventLoop>(i));
}

EventLoop& EventLoopPool::next() {
    EventLoop& loop = *loops_[next_];
    next_ = (next_ + 1) % loops_.size();
    return loop;
}

std::vector<EventLoop*> EventLoopPool::all() {
    std::vector<EventLoop*> loops;
    for (auto& loop : loops_) loops.push_back(loop.get());
    return loops;
}

void EventLoopPool::run() {
    for (std::size_t i = 1; i < loops_.size(); ++i) loops_[i]->start();
    loops_[0]->run();
}
void EventLoopPool::stop() {
    for (auto& loop : loops_) loop->stop();
}
void EventLoopPool::join() {
    for (auto& loop : loops_) loop->join();
}

}  // namespace wspush
