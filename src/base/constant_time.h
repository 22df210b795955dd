// Comparing secrets (API keys, resume tokens) without leaking them through timing.
#pragma once

#include <cstddef>
#include <string_view>

namespace wspush {

// True when `a` and `b` are equal. Takes as long for a mismatch in the first byte as in the
// last, so response times do not tell how long a matching prefix was. The length is not secret.
inline bool constantTimeEquals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    unsigned char diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
    return diff == 0;
}

}  // namespace wspush
