// A presence entry as JSON: the object the `presence` reply and GET /api/presence list, and what
// the Redis engine stores per client: {"client","user","device","node","connected_at","info"}
// (`info` only when the client gave one).
#pragma once

#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

#include "wspush/presence_store.h"

namespace wspush {

nlohmann::ordered_json presenceEntryJson(const PresenceEntry& entry);
// Nullopt when `text` is not such an object.
std::optional<PresenceEntry> parsePresenceEntry(std::string_view text);

}  // namespace wspush
