// Which browsers' pages may open WebSocket connections (websocket.allowed_origins,
// docs/security.md "Limits"): a page's `Origin` is matched against the configured origins, exact
// or with a leading wildcard label. Without a list every origin may; a request without `Origin`
// is not a browser's and may always (a browser cannot leave it out, a non-browser can write any).
// Pure: no socket, no config beyond the list.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "wspush/config.h"

namespace wspush {

class OriginPolicy {
public:
    // `allowed`: websocket.allowed_origins, validated by parseConfig (an entry that does not
    // parse matches nothing).
    explicit OriginPolicy(const std::vector<std::string>& allowed);

    // `origin`: the request's Origin header, nullopt when it has none.
    bool allows(std::optional<std::string_view> origin) const;

private:
    static bool matches(const Origin& pattern, const Origin& origin);

    bool everyOrigin_;
    std::vector<Origin> patterns_;
};

}  // namespace wspush
