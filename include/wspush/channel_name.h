// Channel naming rules (docs/protocol.md, "Channels").
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace wspush {

inline constexpr std::size_t kMaxChannelNameLength = 255;

// 1..255 bytes of A-Z a-z 0-9 and _ - . : @ / = + ! # , (',' lists the users of a user_limited
// channel: "dialog:alice,bob")
bool isValidChannelName(std::string_view name);

// A namespace name is a channel name without ':'.
bool isValidNamespaceName(std::string_view name);

// The part before the first ':' ("chat" for "chat:room1"), or "" for the default namespace.
std::string_view channelNamespace(std::string_view channel);

// The channel every connection of `user` is subscribed to, for POST /api/send: "$user:<user>".
// '$' is not allowed in channel names, so no client can subscribe to or publish into it.
// Empty when `user` cannot name one (empty, longer than 240 bytes, or other characters).
std::string personalChannel(std::string_view user);
inline constexpr std::string_view kPersonalChannelPrefix = "$user:";

// The presence channel of every connection that has a user, whatever it subscribes to: the users
// online (its presence's distinct users). Nothing is published to it.
inline constexpr std::string_view kOnlineChannel = "$online";

}  // namespace wspush
