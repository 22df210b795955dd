// The body of the common publish, {"channel":"…","data":…} and nothing else, read without
// building a JSON tree: parsing it into nlohmann's tree and dumping `data` again was an eighth of
// the server's CPU per publish (docs/performance.md).
//
// Only what is certain to come out as nlohmann would make it is taken: strings of printable ASCII
// without escapes, integers of at most 18 digits (not -0), true, false, null, and arrays and
// objects of those, at most 16 levels deep and without a key twice in one object. For anything
// else (other keys, escapes, non-ASCII, fractions, exponents, duplicate keys, malformed JSON) it
// returns nullopt and the caller parses the body as before, so the fast path never answers
// differently, it only answers sooner.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace wspush {

struct SimplePublishBody {
    std::string_view channel;  // into the body
    std::string data;          // compact, as nlohmann's dump() would write it
};

std::optional<SimplePublishBody> readSimplePublishBody(std::string_view body);

}  // namespace wspush
