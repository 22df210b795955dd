#include "wspush/channel_name.h"

#include <array>

namespace wspush {
namespace {

constexpr std::array<bool, 256> makeAllowed() {
    std::array<bool, 256> allowed{};
    for (char c = 'a'; c <= 'z'; ++c) allowed[static_cast<unsigned char>(c)] = true;
    for (char c = 'A'; c <= 'Z'; ++c) allowed[static_cast<unsigned char>(c)] = true;
    for (char c = '0'; c <= '9'; ++c) allowed[static_cast<unsigned char>(c)] = true;
    for (char c : std::string_view("_-.:@/=+!#,")) allowed[static_cast<unsigned char>(c)] = true;
    return allowed;
}
constexpr std::array<bool, 256> kAllowed = makeAllowed();

}  // namespace

bool isValidChannelName(std::string_view name) {
    if (name.empty() || name.size() > kMaxChannelNameLength) return false;
    if (name.front() == ':') return false;  // an empty namespace is no namespace: ambiguous
    for (char c : name)
        if (!kAllowed[static_cast<unsigned char>(c)]) return false;
    return true;
}

bool isValidNamespaceName(std::string_view name) {
    return isValidChannelName(name) && name.find(':') == std::string_view::npos;
}

std::string personalChannel(std::string_view user) {
    constexpr std::string_view kPrefix = "$user:";
    // No ',' in user ids: it separates the users a user_limited channel lists.
    if (user.size() > kMaxChannelNameLength - 15 || !isValidChannelName(user) ||
        user.find(',') != std::string_view::npos)
        return {};
    return std::string(kPrefix) + std::string(user);
}

std::string_view channelNamespace(std::string_view channel) {
    auto colon = channel.find(':');
    return colon == std::string_view::npos ? std::string_view{} : channel.substr(0, colon);
}

}  // namespace wspush
