#include "webhooks/webhook_dispatcher.h"

#include <algorithm>
#include <deque>
#include <random>

#include <spdlog/spdlog.h>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/durations.h"
#include "webhooks/webhook_client.h"
#include "webhooks/webhook_signature.h"

namespace wspush {

namespace net = boost::asio;
using std::chrono::steady_clock;

namespace {

constexpr steady_clock::duration kDropLogInterval = std::chrono::seconds(10);

// One enqueue() call: how many (event, endpoint) deliveries are still open, and its `done`.
struct Ticket {
    std::size_t open = 1;  // a hold, released once every endpoint has taken the events
    bool delivered = true;
    WebhookDispatcher::Done done;
};

void settle(Ticket& ticket, bool delivered) {
    ticket.delivered = ticket.delivered && delivered;
    if (--ticket.open == 0 && ticket.done) ticket.done(ticket.delivered);
}

struct QueuedEvent {
    std::shared_ptr<const std::string> json;
    steady_clock::time_point enqueuedAt;
    std::shared_ptr<Ticket> ticket;
};

// Lines about drops, at most one per interval, each with the count since the last.
class DropLog {
public:
    DropLog(std::string endpoint, const char* reason) : endpoint_(std::move(endpoint)), reason_(reason) {}

    void add(std::uint64_t events, steady_clock::time_point now) {
        unlogged_ += events;
        if (logged_ && now - lastLine_ < kDropLogInterval) return;
        flush();
        logged_ = true;
        lastLine_ = now;
    }

    void flush() {
        if (unlogged_ == 0) return;
        spdlog::warn("webhook {}: dropped {} event(s): {}", endpoint_, unlogged_, reason_);
        unlogged_ = 0;
    }

private:
    std::string endpoint_;
    const char* reason_;
    std::uint64_t unlogged_ = 0;
    bool logged_ = false;
    steady_clock::time_point lastLine_;
};

}  // namespace

struct WebhookDispatcher::Counters {
    class Atomic {
    public:
        // One writer (the loop): a relaxed load and store, no locked instruction.
        void add(std::uint64_t n) {
            value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
        }
        void sub(std::uint64_t n) {
            value_.store(value_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
        }
        std::uint64_t get() const { return value_.load(std::memory_order_relaxed); }

    private:
        std::atomic<std::uint64_t> value_{0};
    };
    Atomic eventsSent;
    Atomic requests;
    Atomic requestsFailed;
    Atomic droppedQueueFull;
    Atomic droppedRetryExpired;
    Atomic queued;
};

class WebhookDispatcher::Endpoint : public std::enable_shared_from_this<Endpoint> {
public:
    Endpoint(net::io_context& context, const WebhookEndpointConfig& config, const WebhookDispatcherOptions& options,
             std::shared_ptr<Counters> counters, const Clock& clock)
        : context_(context),
          url_(*parseWebhookUrl(config.url)),
          secret_(config.secret),
          retryFor_(options.retryFor),
          maxQueue_(options.maxQueue),
          maxBatch_(options.maxBatch),
          backoffBase_(options.backoffBase),
          backoffCap_(options.backoffCap),
          counters_(std::move(counters)),
          clock_(clock),
          client_(WebhookClient::create(context, url_,
                                        {options.timeout, options.tlsVerify, options.trustedCertificatePem})),
          retryTimer_(context),
          jitter_(std::random_device{}()),
          queueFullLog_(url_.describe(), "the queue is full (webhooks.max_queue)"),
          expiredLog_(url_.describe(), "not delivered within webhooks.retry_for") {
        for (const auto& name : config.events)
            if (auto kind = webhookEventKind(name)) wanted_ |= 1u << static_cast<unsigned>(*kind);
    }

    unsigned wanted() const { return wanted_; }

    void accept(const std::vector<Encoded>& events, const std::shared_ptr<Ticket>& ticket,
                steady_clock::time_point now) {
        std::uint64_t accepted = 0;
        std::uint64_t dropped = 0;
        for (const auto& event : events) {
            if ((wanted_ & (1u << static_cast<unsigned>(event.kind))) == 0) continue;
            ++ticket->open;
            if (queue_.size() >= maxQueue_) {
                ++dropped;
                settle(*ticket, false);
                continue;
            }
            queue_.push_back({event.json, now, ticket});
            ++accepted;
        }
        counters_->queued.add(accepted);
        if (dropped > 0) {
            counters_->droppedQueueFull.add(dropped);
            queueFullLog_.add(dropped, now);
        }
        // Posted, so that the events queued in this turn of the loop leave in one batch.
        if (!busy_ && !queue_.empty()) {
            busy_ = true;
            net::post(context_, [self = shared_from_this()] { self->send(); });
        }
    }

    void stop() {
        stopped_ = true;
        retryTimer_.cancel();
        client_->stop();
        counters_->queued.sub(queue_.size());
        queue_.clear();  // their tickets stay open: neither delivered nor given up
        queueFullLog_.flush();
        expiredLog_.flush();
    }

private:
    void send() {
        if (stopped_ || queue_.empty()) {
            busy_ = false;
            return;
        }
        batchSize_ = std::min(queue_.size(), maxBatch_);
        std::string body = R"({"time_ms":)" + std::to_string(clock_.unixMillis()) + R"(,"events":[)";
        for (std::size_t i = 0; i < batchSize_; ++i) {
            if (i > 0) body += ',';
            body += *queue_[i].json;
        }
        body += "]}";
        std::string signature = webhookSignature(secret_, body);
        counters_->requests.add(1);
        client_->post(std::move(body), std::move(signature),
                      [self = shared_from_this()](WebhookResponse response) { self->onResponse(std::move(response)); });
    }

    void onResponse(const WebhookResponse& response) {
        if (stopped_) return;
        if (response.ok()) return onDelivered();
        counters_->requestsFailed.add(1);
        ++failures_;
        steady_clock::time_point now = clock_.now();
        if (now >= queue_.front().enqueuedAt + retryFor_) {
            counters_->droppedRetryExpired.add(batchSize_);
            expiredLog_.add(batchSize_, now);
            finishBatch(false);
            if (queue_.empty()) {
                busy_ = false;
                return;
            }
        }
        // The last attempt is made when the oldest event's time is up, not after it.
        steady_clock::duration untilGiveUp = queue_.front().enqueuedAt + retryFor_ - now;
        steady_clock::duration delay = std::clamp(backoff(), steady_clock::duration::zero(),
                                                  std::max(untilGiveUp, steady_clock::duration::zero()));
        std::string why = response.status != 0 ? "answered " + std::to_string(response.status) : response.error;
        if (failures_ == 1)
            spdlog::warn("webhook {}: {}; retrying each batch for up to webhooks.retry_for", url_.describe(), why);
        else
            spdlog::debug("webhook {}: {}; {} failed attempts, next in {} ms", url_.describe(), why, failures_,
                          std::chrono::duration_cast<std::chrono::milliseconds>(delay).count());
        retryTimer_.expires_after(delay);
        retryTimer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
            if (!ec && !self->stopped_) self->send();
        });
    }

    void onDelivered() {
        if (failures_ > 0)
            spdlog::info("webhook {}: delivered again after {} failed attempt(s)", url_.describe(), failures_);
        failures_ = 0;
        counters_->eventsSent.add(batchSize_);
        finishBatch(true);
        send();
    }

    // Full jitter: uniform in [0, min(cap, base × 2^(failures − 1))], so that a receiver coming
    // back is not hit by every node's retries at the same moment.
    steady_clock::duration backoff() {
        steady_clock::duration ceiling = backoffBase_;
        for (unsigned i = 1; i < failures_ && ceiling < backoffCap_; ++i) ceiling *= 2;
        ceiling = std::min(ceiling, backoffCap_);
        std::uniform_int_distribution<steady_clock::rep> pick(0, ceiling.count());
        return steady_clock::duration(pick(jitter_));
    }

    void finishBatch(bool delivered) {
        // Taken off the queue before any `done` runs: one may call stop(), which clears it.
        std::vector<std::shared_ptr<Ticket>> tickets;
        tickets.reserve(batchSize_);
        for (std::size_t i = 0; i < batchSize_; ++i) {
            tickets.push_back(std::move(queue_.front().ticket));
            queue_.pop_front();
        }
        counters_->queued.sub(batchSize_);
        batchSize_ = 0;
        for (const auto& ticket : tickets) settle(*ticket, delivered);
    }

    net::io_context& context_;
    WebhookUrl url_;
    std::string secret_;
    steady_clock::duration retryFor_;
    std::size_t maxQueue_;
    std::size_t maxBatch_;
    steady_clock::duration backoffBase_;
    steady_clock::duration backoffCap_;
    std::shared_ptr<Counters> counters_;
    const Clock& clock_;
    std::shared_ptr<WebhookClient> client_;
    net::steady_timer retryTimer_;
    std::minstd_rand jitter_;        // spreads retries; not a secret
    unsigned wanted_ = 0;            // bit i: WebhookEventKind(i)
    std::deque<QueuedEvent> queue_;  // the batch in flight is its first batchSize_ events
    std::size_t batchSize_ = 0;
    unsigned failures_ = 0;  // consecutive failed attempts
    bool busy_ = false;      // a send is posted, in flight or waiting for its retry
    bool stopped_ = false;
    DropLog queueFullLog_;
    DropLog expiredLog_;
};

WebhookDispatcherOptions WebhookDispatcherOptions::fromConfig(const WebhooksConfig& config) {
    WebhookDispatcherOptions options;
    options.endpoints = config.endpoints;
    options.timeout = toClock(config.timeout);
    options.retryFor = toClock(config.retry_for);
    options.maxQueue = config.max_queue;
    options.maxBatch = config.max_batch;
    options.tlsVerify = config.tls_verify;
    return options;
}

std::shared_ptr<WebhookDispatcher> WebhookDispatcher::create(net::io_context& context, WebhookDispatcherOptions options,
                                                             const Clock& clock) {
    return std::make_shared<WebhookDispatcher>(context, std::move(options), clock);
}

WebhookDispatcher::WebhookDispatcher(net::io_context& context, WebhookDispatcherOptions options, const Clock& clock)
    : context_(context), clock_(clock), counters_(std::make_shared<Counters>()) {
    for (const auto& endpoint : options.endpoints) {
        endpoints_.push_back(std::make_shared<Endpoint>(context, endpoint, options, counters_, clock));
        wanted_ |= endpoints_.back()->wanted();
    }
}

WebhookDispatcher::~WebhookDispatcher() = default;

bool WebhookDispatcher::wants(WebhookEventKind kind) const {
    return (wanted_ & (1u << static_cast<unsigned>(kind))) != 0;
}

void WebhookDispatcher::enqueue(std::vector<WebhookEvent> events, Done done) {
    // Encoded here, on the producer's loop, once for every endpoint.
    std::vector<Encoded> encoded;
    encoded.reserve(events.size());
    for (const auto& event : events)
        if (wants(event.kind))
            encoded.push_back({event.kind, std::make_shared<const std::string>(encodeWebhookEvent(event))});
    net::post(context_, [self = shared_from_this(), encoded = std::move(encoded), done = std::move(done)]() mutable {
        self->accept(encoded, std::move(done));
    });
}

void WebhookDispatcher::enqueueEncoded(const std::vector<WebhookStreamEvent>& events, Done done) {
    std::vector<Encoded> encoded;
    encoded.reserve(events.size());
    for (const auto& event : events)
        if (auto kind = webhookEventKind(event.name); kind && wants(*kind))
            encoded.push_back({*kind, std::make_shared<const std::string>(event.json)});
    net::post(context_, [self = shared_from_this(), encoded = std::move(encoded), done = std::move(done)]() mutable {
        self->accept(encoded, std::move(done));
    });
}

void WebhookDispatcher::accept(const std::vector<Encoded>& events, Done done) {
    if (stopped_) return;
    auto ticket = std::make_shared<Ticket>();
    ticket->done = std::move(done);
    steady_clock::time_point now = clock_.now();
    for (auto& endpoint : endpoints_) endpoint->accept(events, ticket, now);
    settle(*ticket, true);  // the hold: `done` runs now if no endpoint took any of them
}

void WebhookDispatcher::stop() {
    net::dispatch(context_, [self = shared_from_this()] {
        if (self->stopped_) return;
        self->stopped_ = true;
        for (auto& endpoint : self->endpoints_) endpoint->stop();
    });
}

WebhookStats WebhookDispatcher::stats() const {
    return {counters_->eventsSent.get(),          counters_->requests.get(),
            counters_->requestsFailed.get(),      counters_->droppedQueueFull.get(),
            counters_->droppedRetryExpired.get(), counters_->queued.get()};
}

}  // namespace wspush
