#include "protocol/server_message.h"

#include <charconv>
#include <cstring>

#include <nlohmann/json.hpp>

#include "protocol/presence_json.h"

namespace wspush {
namespace {

using json = nlohmann::ordered_json;  // fields in the order docs/protocol.md shows them

json reply(RequestId id, std::string_view type) {
    json object = json::object();
    if (id) object["id"] = *id;
    object["type"] = type;
    return object;
}

// Non-UTF-8 text from a client (a `user` name, say) is replaced rather than thrown on.
std::string dump(const json& object) {
    return object.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

std::string encodeMessage(const Publication& p) {
    // Hand-built because it is the one message on the hot path. Channel names, epochs and mids
    // are restricted to characters that need no JSON escaping, and `data` is already compact JSON.
    std::string frame;
    frame.reserve(96 + p.channel.size() + p.epoch.size() + p.mid.size() + p.data.size());
    frame += R"({"type":"message","channel":")";
    frame += p.channel;
    frame += R"(","offset":)";
    frame += std::to_string(p.offset);
    frame += R"(,"epoch":")";
    frame += p.epoch;
    frame += R"(","mid":")";
    frame += p.mid;
    frame += R"(","ts":)";
    frame += std::to_string(p.timestampMs);
    frame += R"(,"data":)";
    frame += p.data;
    if (p.qos == 0) {
        frame += '}';
    } else {
        frame += R"(,"qos":)";
        frame += static_cast<char>('0' + p.qos);
    }
    return frame;
}

FrameSuffix encodeDeliverySuffix(std::uint64_t did, bool dup) {
    FrameSuffix suffix;
    char* out = suffix.text;
    constexpr std::string_view kDid = R"(,"did":)";
    constexpr std::string_view kDup = R"(,"dup":true)";
    std::memcpy(out, kDid.data(), kDid.size());
    out += kDid.size();
    out = std::to_chars(out, suffix.text + sizeof suffix.text, did).ptr;
    if (dup) {
        std::memcpy(out, kDup.data(), kDup.size());
        out += kDup.size();
    }
    *out++ = '}';
    suffix.length = static_cast<std::uint8_t>(out - suffix.text);
    return suffix;
}

std::string encodeConnected(RequestId id, const ConnectedReply& r) {
    json object = reply(id, "connected");
    object["client"] = r.client;
    object["user"] = r.user;
    object["session"] = r.session;
    object["resume"] = r.resume;
    object["resumed"] = r.resumed;
    // Whole seconds print as integers ("ping_interval":25), as the protocol's examples show.
    auto seconds = [](double value) -> json {
        if (value == static_cast<double>(static_cast<std::int64_t>(value))) return static_cast<std::int64_t>(value);
        return value;
    };
    object["ping_interval"] = seconds(r.pingInterval);
    object["pong_timeout"] = seconds(r.pongTimeout);
    object["node"] = r.node;
    object["version"] = r.version;
    object["device"] = r.device;
    if (r.inbox) object["inbox"] = json{{"pending", r.inbox->pending}, {"dropped", r.inbox->dropped}};
    if (r.expiresAt) object["expires_at"] = *r.expiresAt;
    if (!r.subscriptions.empty()) {
        json subscriptions = json::array();
        for (const auto& s : r.subscriptions) {
            json entry{{"channel", s.channel}, {"offset", s.position.offset}, {"epoch", s.position.epoch}};
            if (s.recovered) entry["recovered"] = *s.recovered;
            subscriptions.push_back(std::move(entry));
        }
        object["subscriptions"] = std::move(subscriptions);
    }
    return dump(object);
}

std::string encodeRefreshed(RequestId id, std::optional<std::int64_t> expiresAt) {
    json object = reply(id, "refreshed");
    object["expires_at"] = expiresAt ? json(*expiresAt) : json(nullptr);
    return dump(object);
}

std::string encodeSubscribed(RequestId id, std::string_view channel, const StreamPosition& position,
                             std::optional<bool> recovered) {
    json object = reply(id, "subscribed");
    object["channel"] = channel;
    object["offset"] = position.offset;
    object["epoch"] = position.epoch;
    if (recovered) object["recovered"] = *recovered;
    return dump(object);
}

std::string encodeUnsubscribedPush(std::string_view channel, std::string_view reason, bool resubscribe) {
    json object = reply(std::nullopt, "unsubscribed");
    object["channel"] = channel;
    object["reason"] = reason;
    object["resubscribe"] = resubscribe;
    return dump(object);
}

namespace {
// Hand-built like encodeMessage: `data` is compact JSON already and must not be parsed again.
void appendHistoryFields(std::string& out, std::string_view channel, const HistoryPage& page) {
    out += R"("channel":")";
    out += channel;
    out += R"(","epoch":")";
    out += page.position.epoch;
    out += R"(","offset":)";
    out += std::to_string(page.position.offset);
    out += R"(,"publications":[)";
    bool first = true;
    for (const PublicationPtr& p : page.publications) {
        if (!first) out += ',';
        first = false;
        out += R"({"offset":)";
        out += std::to_string(p->offset);
        out += R"(,"mid":")";
        out += p->mid;
        out += R"(","ts":)";
        out += std::to_string(p->timestampMs);
        out += R"(,"data":)";
        out += p->data;
        if (p->qos != 0) {
            out += R"(,"qos":)";
            out += static_cast<char>('0' + p->qos);
        }
        out += '}';
    }
    out += "]}";
}
}  // namespace

std::string encodeHistory(RequestId id, std::string_view channel, const HistoryPage& page) {
    std::string out = "{";
    if (id) {
        out += R"("id":)";
        out += std::to_string(*id);
        out += ',';
    }
    out += R"("type":"history",)";
    appendHistoryFields(out, channel, page);
    return out;
}

std::string encodeHistoryBody(std::string_view channel, const HistoryPage& page) {
    std::string out = "{";
    appendHistoryFields(out, channel, page);
    return out;
}

std::string encodePresence(RequestId id, std::string_view channel, const std::vector<PresenceEntry>& entries,
                           bool withType) {
    json object = withType ? reply(id, "presence") : json::object();
    object["channel"] = channel;
    json& clients = object["clients"] = json::array();
    for (const PresenceEntry& entry : entries) clients.push_back(presenceEntryJson(entry));
    return dump(object);
}

std::string encodePresenceStats(RequestId id, std::string_view channel, const PresenceStats& stats, bool withType) {
    json object = withType ? reply(id, "presence_stats") : json::object();
    object["channel"] = channel;
    object["clients"] = stats.clients;
    object["users"] = stats.users;
    return dump(object);
}

std::string encodePresenceChange(PresenceChange change, std::string_view channel, const PresenceEntry& entry) {
    json object = reply(std::nullopt, change == PresenceChange::Join ? "join" : "leave");
    object["channel"] = channel;
    object["client"] = entry.client;
    object["user"] = entry.user;
    object["device"] = entry.device;
    if (!entry.info.empty()) object["info"] = json::parse(entry.info, nullptr, false);
    return dump(object);
}

std::string encodeStatus(RequestId id, const std::vector<std::pair<std::string, bool>>& users, bool withType) {
    json object = withType ? reply(id, "status") : json::object();
    json& online = object["users"] = json::object();
    for (const auto& [user, isOnline] : users) online[user] = isOnline;
    return dump(object);
}

std::string encodeUnsubscribed(RequestId id, std::string_view channel) {
    json object = reply(id, "unsubscribed");
    object["channel"] = channel;
    return dump(object);
}

namespace {
// `published` and, for QoS 2, `pubrec` say the same: the publication has its place in the stream.
std::string encodeAccepted(RequestId id, std::string_view type, const Publication& publication) {
    json object = reply(id, type);
    object["channel"] = publication.channel;
    object["offset"] = publication.offset;
    object["mid"] = publication.mid;
    return dump(object);
}
}  // namespace

std::string encodePublished(RequestId id, const Publication& publication) {
    return encodeAccepted(id, "published", publication);
}

std::string encodePong(RequestId id) {
    return dump(reply(id, "pong"));
}

std::string encodeRel(std::uint64_t did) {
    json object = reply(std::nullopt, "rel");
    object["did"] = did;
    return dump(object);
}

std::string encodePubrec(RequestId id, const Publication& publication) {
    return encodeAccepted(id, "pubrec", publication);
}

std::string encodePubcomp(RequestId id, std::string_view mid) {
    json object = reply(id, "pubcomp");
    object["mid"] = mid;
    return dump(object);
}

std::string encodeError(RequestId id, ErrorCode code, std::string_view message) {
    json object = reply(id, "error");
    object["code"] = static_cast<int>(code);
    object["message"] = message;
    return dump(object);
}

std::string encodeDisconnect(const Disconnect& d) {
    json object = reply(std::nullopt, "disconnect");
    object["code"] = d.code;
    object["reason"] = d.reason;
    object["reconnect"] = d.reconnect;
    return dump(object);
}

}  // namespace wspush
