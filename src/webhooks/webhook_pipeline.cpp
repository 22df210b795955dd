#include "webhooks/webhook_pipeline.h"

#include <sstream>

#include <spdlog/spdlog.h>

namespace wspush {

namespace {

constexpr std::chrono::seconds kSweepInterval{1};

template <class Duration>
std::chrono::milliseconds millis(Duration duration) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(duration);
}

}  // namespace

WebhookPipeline::WebhookPipeline(Node& node, boost::asio::io_context& loop0)
    : node_(node),
      dispatcher_(WebhookDispatcher::create(loop0, WebhookDispatcherOptions::fromConfig(node.config().webhooks))),
      source_(std::make_shared<WebhookEventSource>(loop0, node.webhookStream(), dispatcher_)),
      sweepTimer_(loop0) {
    const WebhooksConfig& config = node.config().webhooks;
    node.reportPresenceTransitions(PresenceTransitionOptions{
        [source = source_](std::vector<PresenceTransition> transitions) { source->presenceChanged(transitions); },
        [source = source_, &node](std::string_view channel) {
            return source->wantsTransitionsOf(channel, node.presenceEnabled(channel));
        },
        std::string(kOnlineChannel), millis(config.offline_grace)});
    if (dispatcher_->wants(WebhookEventKind::MessageUnacked)) {
        if (!node.inboxEnabled())
            spdlog::warn("webhooks: message_unacked needs the inbox (inbox.max_messages > 0): none will be sent");
        unacked_ = std::make_shared<UnackedMessageWatch>(
            loop0, source_,
            [&node](const std::string& user, InboxDevicesCompletion done) { node.inboxDevices(user, std::move(done)); },
            node.name(), std::chrono::duration_cast<std::chrono::steady_clock::duration>(config.unacked_after),
            config.max_queue);
        node.observePersonalMessages(
            [watch = unacked_](std::string user, std::string channel, StreamPosition position, std::string mid) {
                watch->watch(std::move(user), std::move(channel), std::move(position), std::move(mid));
            });
    }
    pump_ = std::make_shared<WebhookPump>(loop0, node.webhookStream(), dispatcher_,
                                          WebhookPump::Options{.maxInFlight = config.max_queue});
}

void WebhookPipeline::start() {
    pump_->start();
    sweep();
    spdlog::info("webhooks: {} endpoint(s)", node_.config().webhooks.endpoints.size());
}

void WebhookPipeline::stop() {
    stopped_ = true;
    sweepTimer_.cancel();
    pump_->stop();
    if (unacked_) unacked_->stop();
    dispatcher_->stop();
}

void WebhookPipeline::sweep() {
    if (stopped_) return;
    node_.sweepPresence();
    sweepTimer_.expires_after(kSweepInterval);
    sweepTimer_.async_wait([this](boost::system::error_code ec) {
        if (!ec) sweep();
    });
}

std::string WebhookPipeline::metrics() const {
    WebhookStats sent = dispatcher_->stats();
    WebhookSourceStats made = source_->stats();
    std::uint64_t unwatched = unacked_ ? unacked_->dropped() : 0;
    std::ostringstream out;
    auto metric = [&out](const char* name, const char* type, const char* help) {
        out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
    };
    metric("wspush_webhook_events_made_total", "counter",
           "Webhook events this node made and put into the cluster's event stream.");
    out << "wspush_webhook_events_made_total " << made.appended << '\n';
    metric("wspush_webhook_events_sent_total", "counter", "Webhook events in batches answered 2xx.");
    out << "wspush_webhook_events_sent_total " << sent.eventsSent << '\n';
    metric("wspush_webhook_requests_total", "counter", "Webhook POSTs attempted.");
    out << "wspush_webhook_requests_total " << sent.requests << '\n';
    metric("wspush_webhook_requests_failed_total", "counter", "Webhook POSTs without a 2xx answer.");
    out << "wspush_webhook_requests_failed_total " << sent.requestsFailed << '\n';
    metric("wspush_webhook_events_dropped_total", "counter", "Webhook events given up, by reason.");
    out << "wspush_webhook_events_dropped_total{reason=\"queue_full\"} " << sent.droppedQueueFull << '\n'
        << "wspush_webhook_events_dropped_total{reason=\"retry_expired\"} " << sent.droppedRetryExpired << '\n'
        << "wspush_webhook_events_dropped_total{reason=\"stream_full\"} " << made.droppedStreamFull << '\n'
        << "wspush_webhook_events_dropped_total{reason=\"stream_unavailable\"} " << made.droppedUnavailable << '\n'
        << "wspush_webhook_events_dropped_total{reason=\"unacked_watch_full\"} " << unwatched << '\n';
    metric("wspush_webhook_queue_events", "gauge", "Webhook events this node read and is sending.");
    out << "wspush_webhook_queue_events " << sent.queued << '\n';
    return out.str();
}

}  // namespace wspush
