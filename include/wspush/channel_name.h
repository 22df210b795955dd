// Channel naming rules (docs/protocol.md, "Channels").
#pragma once

#include <cstddef>
#include <string_view>

namespace wspush {

inline constexpr std::size_t kMaxChannelNameLength = 255;

// 1..255 bytes of A-Z a-z 0-9 and _ - . : @ / = + ! #
bool isValidChannelName(std::string_view name);

// A namespace name is a channel name without ':'.
bool isValidNamespaceName(std::string_view name);

// The part before the first ':' ("chat" for "chat:room1"), or "" for the default namespace.
std::string_view channelNamespace(std::string_view channel);

}  // namespace wspush
