// Server → client messages of protocol v1 (docs/protocol.md), encoded as compact JSON without
// a trailing newline.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/frame.h"
#include "wspush/broker.h"
#include "wspush/codes.h"
#include "wspush/presence_store.h"
#include "wspush/publication.h"

namespace wspush {

using RequestId = std::optional<std::uint64_t>;

// The delivery frame: built once per publication and shared by every recipient. For QoS ≥ 1
// it stops before the closing brace: each session appends its own delivery suffix.
std::string encodeMessage(const Publication& publication);

// The per-session end of a QoS ≥ 1 message frame: `,"did":17}` or `,"did":17,"dup":true}`.
FrameSuffix encodeDeliverySuffix(std::uint64_t did, bool dup);

struct ConnectedReply {
    std::string client;
    std::string user;
    std::string session;
    std::string resume;
    bool resumed = false;
    double pingInterval = 0;
    double pongTimeout = 0;
    std::string node;
    std::string version;
    std::string device;  // the device `connect` named, "" when none
    // The user's offline messages for this device: how many follow `connected`, and how many were
    // lost (expired or overflowed) before it got them. Only for a new session of a device.
    struct Inbox {
        std::uint64_t pending = 0;
        std::uint64_t dropped = 0;
    };
    std::optional<Inbox> inbox{};
    std::optional<std::int64_t> expiresAt{};  // the connection token's `exp` (Unix seconds), when it has one
    // The channels the token subscribed a new session to, where each stands; `recovered` when
    // `connect` named a position to recover from.
    struct Subscription {
        std::string channel;
        StreamPosition position;
        std::optional<bool> recovered;
    };
    std::vector<Subscription> subscriptions{};
};
std::string encodeConnected(RequestId id, const ConnectedReply& reply);
// The reply to `refresh`: the connection now ends at `expiresAt` (null: never, the token has no `exp`).
std::string encodeRefreshed(RequestId id, std::optional<std::int64_t> expiresAt);
// `recovered`: present only when the subscribe asked for recovery (`since`).
std::string encodeSubscribed(RequestId id, std::string_view channel, const StreamPosition& position,
                             std::optional<bool> recovered = std::nullopt);
std::string encodeUnsubscribed(RequestId id, std::string_view channel);
// The server ended a subscription: `{"type":"unsubscribed","channel":…,"reason":…,"resubscribe":…}`.
std::string encodeUnsubscribedPush(std::string_view channel, std::string_view reason, bool resubscribe);
// A page of history: `{"id":5,"type":"history","channel":…,"epoch":…,"offset":…,"publications":[…]}`.
std::string encodeHistory(RequestId id, std::string_view channel, const HistoryPage& page);
// The same page for the HTTP API: `{"channel":…,"epoch":…,"offset":…,"publications":[…]}`.
std::string encodeHistoryBody(std::string_view channel, const HistoryPage& page);
// Who is subscribed: `{"id":…,"type":"presence","channel":…,"clients":[…]}` and
// `{"id":…,"type":"presence_stats","channel":…,"clients":N,"users":M}`; without `id` and `type`
// (id nullopt, `withType` false) for the HTTP API.
std::string encodePresence(RequestId id, std::string_view channel, const std::vector<PresenceEntry>& entries,
                           bool withType = true);
std::string encodePresenceStats(RequestId id, std::string_view channel, const PresenceStats& stats,
                                bool withType = true);
// A connection joined or left `channel` (namespaces with `join_leave`):
// `{"type":"join"|"leave","channel":…,"client":…,"user":…,"device":…,"info":{…}}`.
enum class PresenceChange { Join, Leave };
std::string encodePresenceChange(PresenceChange change, std::string_view channel, const PresenceEntry& entry);
// Whether each user has a connection: `{"id":…,"type":"status","users":{"alice":true,…}}`, and
// without `id` and `type` for the HTTP API.
std::string encodeStatus(RequestId id, const std::vector<std::pair<std::string, bool>>& users, bool withType = true);
std::string encodePublished(RequestId id, const Publication& publication);
std::string encodePong(RequestId id);
std::string encodeRel(std::uint64_t did);
// QoS 2 client publish: the server has it (pubrec, with the publication's fields) / forgot it (pubcomp).
std::string encodePubrec(RequestId id, const Publication& publication);
std::string encodePubcomp(RequestId id, std::string_view mid);
std::string encodeError(RequestId id, ErrorCode code, std::string_view message);
std::string encodeDisconnect(const Disconnect& disconnect);

}  // namespace wspush
