#include "auth/subscribe_permission.h"

namespace wspush {

bool channelListsUser(std::string_view channel, std::string_view user) {
    if (user.empty()) return false;
    auto colon = channel.find(':');
    if (colon == std::string_view::npos) return false;  // the default namespace names no users
    std::string_view users = channel.substr(colon + 1);
    while (!users.empty()) {
        auto comma = users.find(',');
        if (users.substr(0, comma) == user) return true;
        if (comma == std::string_view::npos) break;
        users.remove_prefix(comma + 1);
    }
    return false;
}

std::optional<std::string> subscribeRefusal(SubscribePermission permission, std::string_view channel,
                                            std::string_view user, const VerifiedToken* token) {
    switch (permission) {
        case SubscribePermission::Public: return std::nullopt;
        case SubscribePermission::Authenticated:
            if (user.empty()) return "this channel is for connections with a user";
            return std::nullopt;
        case SubscribePermission::UserLimited:
            if (!channelListsUser(channel, user)) return "this channel is not open to this user";
            return std::nullopt;
        case SubscribePermission::Token:
            if (token == nullptr) return "this channel needs a subscription token";
            // Both bind the token to one use: a token leaked from one user's page opens nothing
            // for another user, nor another channel.
            if (token->channel != channel) return "the subscription token is for another channel";
            if (token->subject != user) return "the subscription token is for another user";
            return std::nullopt;
    }
    return "unknown permission";
}

}  // namespace wspush
