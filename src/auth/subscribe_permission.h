// Who may subscribe to a channel: the namespace's `subscribe` option (docs/security.md,
// "Channel permissions"). Pure: the caller has verified any subscription token already.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "auth/token_verifier.h"
#include "wspush/config.h"

namespace wspush {

// Why a connection of `user` ("" for an anonymous one) may not subscribe to `channel` under
// `permission`, or nullopt when it may. `token`: the subscription token the subscribe carried,
// verified, or nullptr when it carried none.
std::optional<std::string> subscribeRefusal(SubscribePermission permission, std::string_view channel,
                                            std::string_view user, const VerifiedToken* token);

// The users a user_limited channel is open to: "dialog:alice,bob" → alice, bob. True when `user`
// is one of them.
bool channelListsUser(std::string_view channel, std::string_view user);

}  // namespace wspush
