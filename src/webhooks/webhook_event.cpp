#include "webhooks/webhook_event.h"

#include <nlohmann/json.hpp>

#include "base/random.h"

namespace wspush {

std::optional<WebhookEventKind> webhookEventKind(std::string_view name) {
    for (std::size_t i = 0; i < kWebhookEventKinds; ++i)
        if (kWebhookEventNames[i] == name) return static_cast<WebhookEventKind>(i);
    return std::nullopt;
}

std::string newWebhookEventId() {
    return randomHex(16);
}

std::string encodeWebhookEvent(const WebhookEvent& event) {
    // ordered_json: id, name and time_ms lead, as in the documented examples.
    nlohmann::ordered_json json;
    json["id"] = event.id;
    json["name"] = webhookEventName(event.kind);
    json["time_ms"] = event.timeMs;
    auto put = [&json](const char* key, const auto& field) {
        if (field) json[key] = *field;
    };
    put("user", event.user);
    put("channel", event.channel);
    put("client", event.client);
    put("device", event.device);
    put("node", event.node);
    put("reason", event.reason);
    put("offset", event.offset);
    put("mid", event.mid);
    // Names and ids come from clients: replace invalid UTF-8 rather than throw on the event path.
    return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace wspush
