// Base64url without padding (RFC 4648 section 5), the encoding of every part of a JSON Web
// Token (RFC 7515 section 2).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace wspush {

// The unpadded base64url text of `bytes`.
std::string encodeBase64Url(std::string_view bytes);

// The bytes `text` encodes, or nullopt unless it is exactly what encodeBase64Url would have made
// of them: only [A-Za-z0-9_-], no '=' padding, no whitespace, no length of 4n + 1, and no bits set
// past the last byte. Strict because a token's signature must have one encoding only: a
// lenient decoder lets anyone make new, different-looking tokens out of a valid one.
std::optional<std::string> decodeBase64Url(std::string_view text);

}  // namespace wspush
