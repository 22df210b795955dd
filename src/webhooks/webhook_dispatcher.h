// Delivers webhook events to the configured endpoints: per endpoint, a bounded queue of the
// events it subscribes to, sent in order as signed JSON batches, one request in flight, retried
// with exponential backoff and full jitter until the batch's oldest event has waited `retryFor`.
// At least once: a batch whose answer was lost is sent again, so receivers deduplicate by id.
//
// Thread model: the dispatcher and its endpoints live on the io_context they are given (one
// event loop; the Redis engine's loop 0 in the daemon) and touch their queues, timers and
// connections only there, without a lock. enqueue() and stop() may be called from any thread:
// they post to that loop (enqueue() encodes the events on the caller's thread first). stats()
// reads relaxed atomics that only the loop writes. Lifetime: owned by shared_ptrs; pending
// handlers keep it alive until stop() has cancelled them.
//
// What is dropped is counted and logged (at most one line per endpoint and reason every 10 s,
// with the count since the last line): an event that finds its endpoint's queue at `maxQueue`
// (the newest is dropped, the queue keeps its order), and a batch that failed once more after
// its oldest event waited `retryFor`.
//
// In the daemon, the events reach enqueueEncoded() through the cluster's WebhookStream
// (include/wspush/webhook_stream.h) and WebhookPump, whose `done` acknowledges them in the stream:
// one node sends each event, and a node that dies or stops before `done` leaves its events there
// for itself or another node to send again.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/clock.h"
#include "webhooks/webhook_event.h"
#include "wspush/config.h"
#include "wspush/webhook_stream.h"

namespace boost::asio {
class io_context;
}

namespace wspush {

struct WebhookDispatcherOptions {
    std::vector<WebhookEndpointConfig> endpoints;                              // validated by the config (URLs parse)
    std::chrono::steady_clock::duration timeout = std::chrono::seconds(5);     // one POST
    std::chrono::steady_clock::duration retryFor = std::chrono::seconds(300);  // per batch, from its oldest event
    std::size_t maxQueue = 100000;                                             // events waiting, per endpoint
    std::size_t maxBatch = 100;                                                // events per POST
    bool tlsVerify = true;
    // Not user config; tests shorten them. A retry waits a random time up to
    // min(backoffCap, backoffBase × 2^(failures − 1)).
    std::chrono::steady_clock::duration backoffBase = std::chrono::milliseconds(500);
    std::chrono::steady_clock::duration backoffCap = std::chrono::seconds(30);
    std::string trustedCertificatePem;  // tests: trust this certificate instead of the system store

    static WebhookDispatcherOptions fromConfig(const WebhooksConfig& config);
};

// Summed over the endpoints; an event sent to two endpoints counts twice.
struct WebhookStats {
    std::uint64_t eventsSent = 0;           // answered 2xx
    std::uint64_t requests = 0;             // POSTs attempted
    std::uint64_t requestsFailed = 0;       // attempts without a 2xx (error, timeout, other status)
    std::uint64_t droppedQueueFull = 0;     // events that found their endpoint's queue full
    std::uint64_t droppedRetryExpired = 0;  // events given up after retryFor
    std::uint64_t queued = 0;               // events waiting or in flight (a gauge)
};

class WebhookDispatcher : public std::enable_shared_from_this<WebhookDispatcher> {
public:
    // Runs once per enqueue() call, on the dispatcher's loop, when every endpoint subscribed to
    // one of its events is done with them: `delivered` is true when all got a 2xx, false when
    // some were dropped. Not run when stop() comes first (they were neither delivered nor given up).
    using Done = std::function<void(bool delivered)>;

    static std::shared_ptr<WebhookDispatcher> create(boost::asio::io_context& context, WebhookDispatcherOptions options,
                                                     const Clock& clock = Clock::system());
    ~WebhookDispatcher();

    // Whether any endpoint subscribes to `kind`: producers need not build events nobody wants.
    // Any thread.
    bool wants(WebhookEventKind kind) const;

    // Queues `events` for every endpoint subscribed to their kinds, in this order after the
    // events of earlier calls from the same thread. Any thread.
    void enqueue(std::vector<WebhookEvent> events, Done done = {});
    // The same for events already encoded (a WebhookStream's): an unknown name is not sent, as
    // if no endpoint wanted it. Any thread.
    void enqueueEncoded(const std::vector<WebhookStreamEvent>& events, Done done = {});

    // Cancels timers and requests and forgets what is queued. Idempotent; any thread.
    void stop();

    // Any thread.
    WebhookStats stats() const;

    // Use create(): handlers need shared_from_this().
    WebhookDispatcher(boost::asio::io_context& context, WebhookDispatcherOptions options, const Clock& clock);

private:
    struct Counters;  // relaxed atomics, written on the dispatcher's loop only
    class Endpoint;   // one endpoint's queue, batches and retries
    struct Encoded {
        WebhookEventKind kind;
        std::shared_ptr<const std::string> json;
    };
    void accept(const std::vector<Encoded>& events, Done done);

    boost::asio::io_context& context_;
    const Clock& clock_;
    std::shared_ptr<Counters> counters_;
    std::vector<std::shared_ptr<Endpoint>> endpoints_;
    unsigned wanted_ = 0;   // bit i: some endpoint subscribes to WebhookEventKind(i)
    bool stopped_ = false;  // on the loop only
};

}  // namespace wspush
