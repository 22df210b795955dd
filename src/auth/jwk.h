// One key of a JWK Set (RFC 7517) as an OpenSSL public key: RSA keys from `n` and `e`, EC keys
// from `crv`, `x` and `y` (RFC 7518 section 6).
#pragma once

#include <string>
#include <variant>

#include <nlohmann/json.hpp>

#include "auth/openssl_handles.h"

namespace wspush {

struct Jwk {
    std::string kid;  // "" when the key has none
    std::string alg;  // the one algorithm the key is for; "" when it names none
    EvpPkeyHandle key;
};

// A key wspush has no use for, and may skip: one for encryption (`use` other than "sig"), or of
// a type that signs no token wspush verifies (`kty` other than "RSA" and "EC", "oct" included:
// shared secrets are configured as hmac_secrets, never published in a key set).
struct IgnoredJwk {
    std::string why;
};

// A key that claims to be a signing key wspush could use but is not well formed: a member
// missing or of the wrong type, bad base64url, coordinates of the wrong length.
struct MalformedJwk {
    std::string why;
};

// Only the public members are read: `d` and the other private members, if any, are ignored.
// `key_ops` is ignored too (`use` says enough). Strength and curve are not judged here
// (jwsKeyKindOf does that for PEM and JWK keys alike).
std::variant<Jwk, IgnoredJwk, MalformedJwk> readJwk(const nlohmann::json& jwk);

}  // namespace wspush
