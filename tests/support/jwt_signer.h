// Real JSON Web Tokens for tests: keys made with OpenSSL, tokens signed with them, and the
// public halves as the daemon's configuration takes them (PEM files, a JWK Set).
//
// The signer does what it is told, so tests can craft the tokens an attacker would: the
// header's `alg` only picks the hash (…256, …384, …512), and the key signs whatever it is —
// an ES256 header over a P-384 signature, an RS256 header over an HMAC. "none" gives an empty
// signature.
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

namespace wspush::testing {

// A signing key: an HMAC secret, an RSA key pair or an EC key pair. Copies share the key.
class TestKey {
public:
    static TestKey hmac(std::string secret);
    // A fresh key pair: a 2048-bit RSA key takes tens of milliseconds (seconds under sanitizers);
    // make one per test suite.
    static TestKey rsa(int bits = 2048);
    static TestKey ec(std::string curve);  // "P-256", "P-384" or "P-521" (which wspush refuses)

    // The public key as PEM "PUBLIC KEY" (SubjectPublicKeyInfo). Throws for an HMAC secret.
    std::string publicPem() const;
    // A self-signed X.509 certificate of the public key, PEM "CERTIFICATE", valid for a day
    // either side of now. Throws for an HMAC secret.
    std::string certificatePem() const;
    // The public JWK: {"kty":"RSA","n","e"} or {"kty":"EC","crv","x","y"}, with `kid` unless it
    // is empty. For an HMAC secret {"kty":"oct","k"}: a secret, never to publish, but a key set
    // must be seen to ignore it.
    nlohmann::json jwk(std::string kid) const;

    bool isHmac() const { return pkey_ == nullptr; }
    const std::string& secret() const { return secret_; }
    EVP_PKEY* pkey() const { return pkey_.get(); }

private:
    std::string secret_;
    std::shared_ptr<EVP_PKEY> pkey_;
};

// base64url(header) "." base64url(claims) "." base64url(signature), both JSON objects written
// compact, signed as described above. Throws std::invalid_argument for an `alg` whose hash
// it cannot tell.
std::string signJwt(const nlohmann::json& header, const nlohmann::json& claims, const TestKey& key);
// The same with the header {"alg": alg, "typ": "JWT"} and `kid` when it is not empty.
std::string signJwt(std::string_view alg, const nlohmann::json& claims, const TestKey& key, std::string kid = "");
// A string converts to a JSON header as readily as to a string_view: these make signJwt("HS256", …)
// and signJwt(someString, …) name the algorithm rather than be ambiguous.
inline std::string signJwt(const char* alg, const nlohmann::json& claims, const TestKey& key, std::string kid = "") {
    return signJwt(std::string_view(alg), claims, key, std::move(kid));
}
inline std::string signJwt(const std::string& alg, const nlohmann::json& claims, const TestKey& key,
                           std::string kid = "") {
    return signJwt(std::string_view(alg), claims, key, std::move(kid));
}
// Signs `header` and `payload` exactly as given, JSON or not; `alg` picks the hash as above.
std::string signJws(std::string_view alg, std::string_view header, std::string_view payload, const TestKey& key);

}  // namespace wspush::testing
