#include "webhooks/webhook_event_source.h"

#include <chrono>

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "wspush/channel_name.h"

namespace wspush {

namespace {

std::optional<std::string> unlessEmpty(const std::string& text) {
    if (text.empty()) return std::nullopt;
    return text;
}

WebhookEventKind kindOf(PresenceTransitionKind kind) {
    switch (kind) {
        case PresenceTransitionKind::MemberAdded: return WebhookEventKind::MemberAdded;
        case PresenceTransitionKind::MemberRemoved: return WebhookEventKind::MemberRemoved;
        case PresenceTransitionKind::ChannelOccupied: return WebhookEventKind::ChannelOccupied;
        case PresenceTransitionKind::ChannelVacated: return WebhookEventKind::ChannelVacated;
        case PresenceTransitionKind::UserOnline: return WebhookEventKind::UserOnline;
        case PresenceTransitionKind::UserOffline: return WebhookEventKind::UserOffline;
    }
    return WebhookEventKind::MemberAdded;
}

bool isUserKind(WebhookEventKind kind) {
    return kind == WebhookEventKind::UserOnline || kind == WebhookEventKind::UserOffline;
}

// The fields docs/webhooks.md gives each kind.
WebhookEvent eventOf(const PresenceTransition& transition, WebhookEventKind kind) {
    WebhookEvent event;
    event.kind = kind;
    event.timeMs = transition.timeMs;
    const PresenceEntry& entry = transition.entry;
    event.user = unlessEmpty(entry.user);
    event.client = unlessEmpty(entry.client);
    event.node = unlessEmpty(entry.node);
    if (!isUserKind(kind)) event.channel = transition.channel;
    if (kind != WebhookEventKind::ChannelOccupied && kind != WebhookEventKind::ChannelVacated)
        event.device = unlessEmpty(entry.device);
    if (kind == WebhookEventKind::MemberRemoved || kind == WebhookEventKind::ChannelVacated ||
        kind == WebhookEventKind::UserOffline)
        event.reason = unlessEmpty(transition.reason);
    return event;
}

constexpr std::int64_t kDropLogIntervalMs = 10000;

}  // namespace

WebhookEventSource::WebhookEventSource(boost::asio::io_context& context, WebhookStream& stream,
                                       std::shared_ptr<const WebhookDispatcher> dispatcher)
    : context_(context), stream_(stream), dispatcher_(std::move(dispatcher)) {}

bool WebhookEventSource::wantsTransitionsOf(std::string_view channel, bool presenceNamespace) const {
    if (channel == kOnlineChannel) return wants(WebhookEventKind::UserOnline) || wants(WebhookEventKind::UserOffline);
    return presenceNamespace && (wants(WebhookEventKind::MemberAdded) || wants(WebhookEventKind::MemberRemoved) ||
                                 wants(WebhookEventKind::ChannelOccupied) || wants(WebhookEventKind::ChannelVacated));
}

void WebhookEventSource::presenceChanged(const std::vector<PresenceTransition>& transitions) {
    std::vector<WebhookEvent> events;
    for (const PresenceTransition& transition : transitions) {
        WebhookEventKind kind = kindOf(transition.kind);
        // $online's own members are every connection of a user: only its user events are news.
        bool news = transition.channel == kOnlineChannel ? isUserKind(kind)
                                                         : !isUserKind(kind) && !transition.channel.starts_with('$');
        if (news && wants(kind)) events.push_back(eventOf(transition, kind));
    }
    add(std::move(events));
}

void WebhookEventSource::add(std::vector<WebhookEvent> events) {
    std::vector<WebhookStreamEvent> encoded;
    encoded.reserve(events.size());
    for (const WebhookEvent& event : events) {
        if (!wants(event.kind)) continue;
        encoded.push_back({std::string(webhookEventName(event.kind)), encodeWebhookEvent(event)});
    }
    if (encoded.empty()) return;
    boost::asio::post(context_, [self = shared_from_this(), encoded = std::move(encoded)]() mutable {
        std::size_t count = encoded.size();
        self->stream_.append(std::move(encoded), [self, count](std::variant<std::size_t, BrokerError> result) {
            std::size_t dropped = count;
            std::string why;
            if (auto* full = std::get_if<std::size_t>(&result)) {
                dropped = *full;
                self->droppedStreamFull_.fetch_add(dropped, std::memory_order_relaxed);
                why = "the event stream is full (webhooks.max_queue)";
            } else {
                self->droppedUnavailable_.fetch_add(dropped, std::memory_order_relaxed);
                why = "the event stream cannot be reached: " + std::get<BrokerError>(result).message;
            }
            self->appended_.fetch_add(count - dropped, std::memory_order_relaxed);
            if (dropped == 0) return;
            // At most one line every 10 s; the counters say how many in all.
            std::int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count();
            std::int64_t last = self->lastDropLogMs_.load(std::memory_order_relaxed);
            if (now - last >= kDropLogIntervalMs &&
                self->lastDropLogMs_.compare_exchange_strong(last, now, std::memory_order_relaxed))
                spdlog::warn("webhooks: dropped {} event(s): {}", dropped, why);
        });
    });
}

WebhookSourceStats WebhookEventSource::stats() const {
    return {appended_.load(std::memory_order_relaxed), droppedStreamFull_.load(std::memory_order_relaxed),
            droppedUnavailable_.load(std::memory_order_relaxed)};
}

}  // namespace wspush
