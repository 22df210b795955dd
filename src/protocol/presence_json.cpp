#include "protocol/presence_json.h"

namespace wspush {

using json = nlohmann::ordered_json;  // fields in the order docs/protocol.md shows them

json presenceEntryJson(const PresenceEntry& entry) {
    json object{{"client", entry.client},
                {"user", entry.user},
                {"device", entry.device},
                {"node", entry.node},
                {"connected_at", entry.connectedAtMs}};
    if (!entry.info.empty()) object["info"] = json::parse(entry.info, nullptr, false);
    return object;
}

std::optional<PresenceEntry> parsePresenceEntry(std::string_view text) {
    json object = json::parse(text, nullptr, false);
    if (!object.is_object()) return std::nullopt;
    auto string = [&](const char* key) -> std::optional<std::string> {
        auto it = object.find(key);
        if (it == object.end() || !it->is_string()) return std::nullopt;
        return it->get<std::string>();
    };
    auto client = string("client"), user = string("user"), device = string("device"), node = string("node");
    auto connectedAt = object.find("connected_at");
    if (!client || !user || !device || !node || connectedAt == object.end() || !connectedAt->is_number_integer())
        return std::nullopt;
    PresenceEntry entry{*client, *user, *device, *node, connectedAt->get<std::int64_t>(), {}};
    if (auto info = object.find("info"); info != object.end()) {
        if (!info->is_object()) return std::nullopt;
        entry.info = info->dump();
    }
    return entry;
}

}  // namespace wspush
