// The JWS algorithms wspush verifies (RFC 7518 section 3), the one kind of key each may be
// checked with, and the check of one signature with OpenSSL's EVP primitives.
#pragma once

#include <openssl/evp.h>

#include <string>
#include <string_view>
#include <variant>

namespace wspush {

// A key fits exactly one kind, and an algorithm takes exactly one: an HS token is never checked
// against a public key used as an HMAC secret, nor an ES256 one against a P-384 key.
enum class JwsKeyKind { HmacSecret, Rsa, EcP256, EcP384 };

struct JwsAlgorithm {
    std::string_view name;  // as in a JWS header's `alg`, e.g. "RS256"
    JwsKeyKind keyKind;
    const EVP_MD* (*digest)();
};

// HS256 HS384 HS512 RS256 RS384 RS512 ES256 ES384; nullptr for any other name, "none" included.
const JwsAlgorithm* findJwsAlgorithm(std::string_view name);

// The kind of a public key read from a PEM file or a JWK, or why it cannot verify tokens: not
// RSA or EC, an RSA modulus under 2048 bits, a curve other than P-256 and P-384, a point off
// its curve.
std::variant<JwsKeyKind, std::string> jwsKeyKindOf(EVP_PKEY* key);

// True when `signature` (the decoded third part of a token) is the MAC or signature of
// `signingInput` (the token's first two parts with the '.' between them). `algorithm` must take
// the kind of key given. Thread-safe: every call makes its own OpenSSL contexts.
bool hmacSignatureMatches(const JwsAlgorithm& algorithm, std::string_view secret, std::string_view signingInput,
                          std::string_view signature);
bool publicKeySignatureMatches(const JwsAlgorithm& algorithm, EVP_PKEY* key, std::string_view signingInput,
                               std::string_view signature);

}  // namespace wspush
