#include "transport/origin_policy.h"

#include <algorithm>

namespace wspush {

OriginPolicy::OriginPolicy(const std::vector<std::string>& allowed) : everyOrigin_(allowed.empty()) {
    for (const std::string& text : allowed)
        if (auto pattern = parseOrigin(text, OriginSyntax::Pattern)) patterns_.push_back(std::move(*pattern));
}

bool OriginPolicy::allows(std::optional<std::string_view> header) const {
    if (everyOrigin_ || !header) return true;
    // "null" (a sandboxed frame, a file:// page) and anything malformed parse as nothing, and match nothing.
    auto origin = parseOrigin(*header);
    if (!origin) return false;
    return std::any_of(patterns_.begin(), patterns_.end(),
                       [&](const Origin& pattern) { return matches(pattern, *origin); });
}

bool OriginPolicy::matches(const Origin& pattern, const Origin& origin) {
    if (pattern.scheme != origin.scheme || pattern.port != origin.port) return false;
    if (!pattern.anySubdomain) return origin.host == pattern.host;
    // At least one label, then a dot, then the domain: "a.example.com" and "a.b.example.com", but
    // neither "example.com" itself, nor "evilexample.com", nor "example.com.evil.com".
    const std::string& host = origin.host;
    const std::string& domain = pattern.host;
    return host.size() > domain.size() + 1 && host.ends_with(domain) && host[host.size() - domain.size() - 1] == '.';
}

}  // namespace wspush
