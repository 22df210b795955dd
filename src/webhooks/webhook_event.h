// One event a backend hears about through a webhook (docs/webhooks.md), and its JSON.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "wspush/config.h"

namespace wspush {

// In the order of kWebhookEventNames, which the config validates endpoints' `events` against.
enum class WebhookEventKind : unsigned char {
    UserOnline,
    UserOffline,
    ChannelOccupied,
    ChannelVacated,
    MemberAdded,
    MemberRemoved,
    MessageUnacked,
};
inline constexpr std::size_t kWebhookEventKinds = std::size(kWebhookEventNames);
static_assert(static_cast<std::size_t>(WebhookEventKind::MessageUnacked) + 1 == kWebhookEventKinds);

inline std::string_view webhookEventName(WebhookEventKind kind) {
    return kWebhookEventNames[static_cast<std::size_t>(kind)];
}
std::optional<WebhookEventKind> webhookEventKind(std::string_view name);

// A new event id: 128 random bits as 32 hex digits, so ids made by different nodes (and by one
// node before and after a restart) never meet, and a receiver can deduplicate by id alone.
std::string newWebhookEventId();

struct WebhookEvent {
    std::string id = newWebhookEventId();
    WebhookEventKind kind = WebhookEventKind::UserOnline;
    std::int64_t timeMs = 0;  // Unix milliseconds when it happened
    // The fields of its kind; absent ones are left out of the JSON.
    std::optional<std::string> user;
    std::optional<std::string> channel;
    std::optional<std::string> client;
    std::optional<std::string> device;
    std::optional<std::string> node;
    std::optional<std::string> reason;
    std::optional<std::uint64_t> offset;  // message_unacked
    std::optional<std::string> mid;       // message_unacked
};

// {"id":…,"name":…,"time_ms":…, then the fields present}: one element of a batch's "events".
std::string encodeWebhookEvent(const WebhookEvent& event);

}  // namespace wspush
