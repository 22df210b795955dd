// A transparent hash for maps keyed by std::string, so lookups by std::string_view need no copy.
#pragma once

#include <cstddef>
#include <functional>
#include <string_view>

namespace wspush {

struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const noexcept { return std::hash<std::string_view>{}(text); }
};

}  // namespace wspush
