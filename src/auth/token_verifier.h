// Verifies JSON Web Tokens (RFC 7519): connection tokens at `connect` and `refresh`,
// subscription tokens at `subscribe` (docs/security.md).
//
// Signatures are checked with OpenSSL's EVP primitives: HS256/384/512 against the configured
// shared secrets, RS256/384/512 and ES256/384 against public keys from PEM files or a JWK Set.
// An HS token is never checked against a public key (algorithm confusion), and `alg: none` is
// refused. A verifier is immutable once loaded: every event loop shares one, and a reload
// (SIGHUP) loads a new one and swaps the pointer.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "wspush/config.h"

namespace wspush {

// The claims wspush uses, checked.
struct VerifiedToken {
    std::string subject;                    // `sub`; "" when absent (an anonymous connection)
    std::optional<std::int64_t> expiresAt;  // `exp`, Unix seconds
    std::string info;                       // `info`: a compact JSON object, "" when absent
    std::vector<std::string> channels;      // `channels`: subscriptions made at connect
    std::string channel;                    // `channel`: what a subscription token opens, "" when absent
};

enum class TokenRejection {
    Invalid,      // malformed, bad signature, unknown key, wrong algorithm, audience or issuer: terminal
    Expired,      // past `exp` (+ leeway): a new token will do
    NotYetValid,  // before `nbf` or `iat` (− leeway): a new token (or a later attempt) will do
};

struct TokenError {
    TokenRejection rejection;
    std::string reason;  // short and safe to show the client, e.g. "bad signature", "unknown kid"
};

// The most bytes of a token; longer ones are refused before anything is decoded.
inline constexpr std::size_t kMaxTokenBytes = 8192;

class TokenVerifier {
public:
    // Reads the PEM and JWKS files `config` names and checks every key. Errors name the config
    // path ("client.token.public_keys[1].pem_file") and what is wrong with it.
    static std::variant<std::shared_ptr<const TokenVerifier>, ConfigError> load(const TokenConfig& config);

    // Never throws. `nowUnixSeconds` is injected so tests control time.
    std::variant<VerifiedToken, TokenError> verify(std::string_view token, std::int64_t nowUnixSeconds) const;

    ~TokenVerifier();
    TokenVerifier(const TokenVerifier&) = delete;
    TokenVerifier& operator=(const TokenVerifier&) = delete;

    struct Keys;  // OpenSSL keys by kid and kind (token_verifier.cpp)

private:
    TokenVerifier(TokenConfig rules, std::unique_ptr<Keys> keys);
    TokenConfig rules_;
    std::unique_ptr<Keys> keys_;
};

}  // namespace wspush
