#include "base/bounded_json.h"

namespace wspush {
namespace {

// Thrown by the parser callback to stop the parse: nlohmann's callbacks can only discard a value
// and let the parse go on, so an exception, caught below, is the one way to stop at once.
struct NestedTooDeep {};

}  // namespace

template <class Json>
BoundedJson<Json> parseBoundedJson(std::string_view text, bool ignoreComments) {
    // `depth` counts the arrays and objects around the one starting, so the outermost has depth 0.
    typename Json::parser_callback_t limitDepth = [](int depth, typename Json::parse_event_t event, Json&) {
        bool starts = event == Json::parse_event_t::array_start || event == Json::parse_event_t::object_start;
        if (starts && depth >= kMaxJsonDepth) throw NestedTooDeep{};
        return true;
    };
    BoundedJson<Json> parsed;
    try {
        // What was built before the throw is at most kMaxJsonDepth deep, and is destroyed here.
        parsed.value = Json::parse(text, limitDepth, /*allow_exceptions=*/false, ignoreComments);
    } catch (const NestedTooDeep&) {
        parsed.value = Json(Json::value_t::discarded);
        parsed.error = JsonParseError::TooDeep;
        return parsed;
    }
    if (parsed.value.is_discarded()) parsed.error = JsonParseError::Malformed;
    return parsed;
}

template BoundedJson<nlohmann::json> parseBoundedJson(std::string_view, bool);
template BoundedJson<nlohmann::ordered_json> parseBoundedJson(std::string_view, bool);

}  // namespace wspush
