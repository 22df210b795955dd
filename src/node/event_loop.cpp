#include "node/event_loop.h"

#include <spdlog/spdlog.h>

namespace wspush {

EventLoop::EventLoop(unsigned index) : index_(index) {
    // The hint tells Asio that one thread runs this context, so it can skip internal locking.
    context_.emplace(1);
    work_.emplace(context_->get_executor());
}

EventLoop::~EventLoop() {
    stop();
    join();
    context_.reset();  // destroys pending handlers, and with them the connections they own
}

void EventLoop::drainConnections() {
    // drain() may detach synchronously, so iterate over a copy.
    std::vector<Connection*> snapshot(connections_.begin(), connections_.end());
    for (Connection* connection : snapshot)
        if (connections_.contains(connection)) connection->drain();
}

void EventLoop::start() {
    thread_ = std::thread([this] {
        for (;;) {
            try {
                context_->run();
                return;
            } catch (const std::exception& e) {
                // A handler let an exception escape: a bug. Keep the loop alive for everyone else.
                spdlog::critical("event loop {}: unhandled exception: {}", index_, e.what());
            }
        }
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

void EventLoopPool::start() {
    for (auto& loop : loops_) loop->start();
}
void EventLoopPool::stop() {
    for (auto& loop : loops_) loop->stop();
}
void EventLoopPool::join() {
    for (auto& loop : loops_) loop->join();
}

}  // namespace wspush
