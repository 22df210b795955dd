// message_unacked (docs/webhooks.md): a message of QoS 1 or 2 to a user that no device of the
// user has finished `after` the publish, so the backend can reach the user another way (a
// mobile push notification). "Finished" is what the inbox cursors say (Node::inboxCursor): a
// device whose cursor, in the message's epoch, is at or past the message's offset has acked it
// (with everything before it). The cursors live in the engine, so the check is cluster-wide and
// is made once, by the node that published the message; a node that dies within `after` of a
// publish does not report it.
//
// Thread model: watch() from any thread; everything else on the given io_context (loop 0), in
// one deadline-ordered queue with one timer (every message waits the same `after`). The queue is
// bounded: a message that finds it full is not watched, counted and logged.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/steady_timer.hpp>

#include "webhooks/webhook_event_source.h"
#include "wspush/inbox_store.h"

namespace wspush {

class UnackedMessageWatch : public std::enable_shared_from_this<UnackedMessageWatch> {
public:
    // The user's remembered devices and their cursors (Node::inboxDevices).
    using DeviceLookup = std::function<void(const std::string& user, InboxDevicesCompletion done)>;

    UnackedMessageWatch(boost::asio::io_context& context, std::shared_ptr<WebhookEventSource> source,
                        DeviceLookup devices, std::string nodeName, std::chrono::steady_clock::duration after,
                        std::size_t maxWatched);

    // A message of QoS ≥ 1 was stored in `user`'s personal channel `channel` at `position`. Any thread.
    void watch(std::string user, std::string channel, StreamPosition position, std::string mid);
    void stop();

    std::uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

private:
    struct Watched {
        std::chrono::steady_clock::time_point due;
        std::string user;
        std::string channel;
        StreamPosition position;
        std::string mid;
    };
    void enqueue(Watched watched);
    void arm();
    void checkDue();
    void check(Watched watched, std::vector<InboxDevice> devices);

    boost::asio::io_context& context_;
    std::shared_ptr<WebhookEventSource> source_;
    DeviceLookup devices_;
    std::string nodeName_;
    std::chrono::steady_clock::duration after_;
    std::size_t maxWatched_;
    boost::asio::steady_timer timer_;
    std::deque<Watched> queue_;  // by due time: every message waits the same `after`
    bool armed_ = false;
    bool stopped_ = false;
    std::atomic<std::uint64_t> dropped_{0};
};

}  // namespace wspush
