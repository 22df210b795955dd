// A hash for unordered containers keyed by std::string that can be looked up with a
// std::string_view or a string literal without building a std::string first.
#pragma once

#include <cstddef>
#include <functional>
#include <string_view>

namespace wspush {

// Use with std::equal_to<>: std::unordered_map<std::string, T, StringHash, std::equal_to<>>.
struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const noexcept { return std::hash<std::string_view>{}(text); }
};

}  // namespace wspush
