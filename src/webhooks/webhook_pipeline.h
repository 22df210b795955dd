// Webhooks in the daemon, assembled: this node's events (WebhookEventSource, from the presence
// store's transitions and UnackedMessageWatch) go into the cluster's WebhookStream, and
// WebhookPump feeds what this node reads from it to its WebhookDispatcher. Built only when
// webhooks.endpoints is set; every node of a cluster should name the same endpoints.
//
// Thread model: everything runs on loop 0 (the engine's), where start() and stop() are called;
// the source and the watch take events from any thread (their headers). metrics() from any thread.
#pragma once

#include <memory>
#include <string>

#include <boost/asio/steady_timer.hpp>

#include "node/node.h"
#include "webhooks/unacked_message_watch.h"
#include "webhooks/webhook_dispatcher.h"
#include "webhooks/webhook_event_source.h"
#include "webhooks/webhook_pump.h"

namespace wspush {

class WebhookPipeline {
public:
    // Before the engine starts and before any connection: it asks the presence store for its
    // transitions and the node for its personal messages. `node` outlives the pipeline.
    WebhookPipeline(Node& node, boost::asio::io_context& loop0);

    // On loop 0, after the engine started.
    void start();
    // On loop 0, before the engine stops: what is read and not delivered stays in the stream.
    void stop();

    // The webhook counters in Prometheus's text format (docs/webhooks.md lists them).
    std::string metrics() const;

private:
    // Every second, what the presence store reports without a call on its channel (UserOffline
    // after the grace, a dead node's channels).
    void sweep();

    Node& node_;
    std::shared_ptr<WebhookDispatcher> dispatcher_;
    std::shared_ptr<WebhookEventSource> source_;  // shared with the store's handler and the watch
    std::shared_ptr<UnackedMessageWatch> unacked_;
    std::shared_ptr<WebhookPump> pump_;
    boost::asio::steady_timer sweepTimer_;
    bool stopped_ = false;
};

}  // namespace wspush
