// Parsing JSON that comes from outside — HTTP API bodies, client commands, the config file and
// its environment overrides — with a bound on nesting. nlohmann's parser itself does not recurse,
// but dump(), copies and comparisons recurse once per level: the `data` of a 200 KB body made of
// 100,000 nested arrays would exhaust the stack. The parse stops at the first array or object
// nested deeper than kMaxJsonDepth, so no such value is ever built.
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

namespace wspush {

// How deep arrays and objects may nest: `[]` and `{"a":1}` are 1 level, `{"a":[1]}` is 2. Far
// beyond any real message, and shallow enough for every recursive walk of the value.
inline constexpr int kMaxJsonDepth = 64;
// What every refusal for depth says (HTTP API, client commands, config). Keep the number in step.
inline constexpr std::string_view kJsonTooDeep = "arrays and objects nest more than 64 levels deep";

enum class JsonParseError {
    None,
    Malformed,  // not JSON (or trailing characters after it)
    TooDeep,    // nested deeper than kMaxJsonDepth
};

template <class Json>
struct BoundedJson {
    Json value;  // discarded unless error is None
    JsonParseError error = JsonParseError::None;
};

// Parses `text` as one JSON value; never throws. `ignoreComments`: accept `//` and `/* */`
// comments (the config file). Defined for nlohmann::json and nlohmann::ordered_json.
template <class Json>
BoundedJson<Json> parseBoundedJson(std::string_view text, bool ignoreComments = false);

}  // namespace wspush
