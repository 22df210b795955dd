// Moves events from the cluster's WebhookStream into this node's WebhookDispatcher, and
// acknowledges each read once the dispatcher is done with it (delivered or given up: both final).
//
// It reads only while fewer than `maxInFlight` events are read and not yet done, so a slow
// receiver slows the reading instead of overflowing the dispatcher's queues: the events wait in
// the stream, where a node that dies does not take them along. A read that came back full is
// followed by the next at once; otherwise the pump looks again after `pollInterval` (the stream
// is polled, never blocked on: its Redis connection carries every other command of the node).
//
// Thread model: lives on one io_context (loop 0, the engine's and the dispatcher's), touched
// there only; start() and stop() are called there too. Owned by a shared_ptr that pending
// handlers hold until stop() cancels them.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>

#include <boost/asio/steady_timer.hpp>

#include "webhooks/webhook_dispatcher.h"
#include "wspush/webhook_stream.h"

namespace wspush {

class WebhookPump : public std::enable_shared_from_this<WebhookPump> {
public:
    struct Options {
        std::size_t maxInFlight = 100000;
        std::size_t maxRead = 500;  // events per read
        std::chrono::steady_clock::duration pollInterval = std::chrono::milliseconds(100);
    };

    // `stream` outlives the pump.
    WebhookPump(boost::asio::io_context& context, WebhookStream& stream, std::shared_ptr<WebhookDispatcher> dispatcher,
                Options options);

    void start();
    // Reads nothing more; what was read and is not done stays unacknowledged in the stream.
    void stop();

    std::size_t inFlight() const { return inFlight_; }

private:
    void read();
    void onRead(std::variant<std::vector<WebhookStreamEntry>, BrokerError> result, std::size_t asked);
    void later();

    boost::asio::io_context& context_;
    WebhookStream& stream_;
    std::shared_ptr<WebhookDispatcher> dispatcher_;
    Options options_;
    boost::asio::steady_timer timer_;
    std::size_t inFlight_ = 0;
    bool reading_ = false;
    bool stopped_ = false;
};

}  // namespace wspush
