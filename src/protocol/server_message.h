// Server → client messages of protocol v1 (docs/protocol.md), encoded as compact JSON without
// a trailing newline.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "wspush/codes.h"
#include "wspush/publication.h"

namespace wspush {

using RequestId = std::optional<std::uint64_t>;

// The delivery frame: built once per publication and shared by every recipient.
std::string encodeMessage(const Publication& publication);

struct ConnectedReply {
    std::string client;
    std::string user;
    double pingInterval = 0;
    double pongTimeout = 0;
    std::string node;
    std::string version;
};
std::string encodeConnected(RequestId id, const ConnectedReply& reply);
std::string encodeSubscribed(RequestId id, std::string_view channel, const StreamPosition& position);
std::string encodeUnsubscribed(RequestId id, std::string_view channel);
std::string encodePublished(RequestId id, const Publication& publication);
std::string encodePong(RequestId id);
std::string encodeError(RequestId id, ErrorCode code, std::string_view message);
std::string encodeDisconnect(const Disconnect& disconnect);

}  // namespace wspush
