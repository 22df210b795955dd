// Drives token verification (TokenVerifier::verify, src/auth/token_verifier.cpp, with jws.cpp and
// base64url.cpp under it) with HMAC, RSA and EC keys configured, from PEM files and a JWK Set
// (tests/fuzz/keys/), on arbitrary token strings; and the JWK reader (readJwk, jwk.cpp) on the
// same bytes read as JSON.
//
// Asserts, beyond "no crash, no leak, no UB":
// - a verified token is not expired (require_exp is on: it has an `exp`, not before now − leeway),
//   and a token over kMaxTokenBytes is never verified;
// - verifying is deterministic: the same token gives the same answer twice;
// - base64url is strict both ways: decoding then encoding gives back the text, and encoding
//   then decoding gives back the bytes.
//
// The keys are public halves only; tests/fuzz/make_token_seeds.cpp made them, and the seed
// tokens, with private halves it did not keep.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

#include "auth/jwk.h"
#include "auth/token_verifier.h"
#include "base/base64url.h"

namespace wspush {
namespace {

// The time every token is checked at: the seed tokens expire an hour after it.
constexpr std::int64_t kNow = 1700000000;

void check(bool condition, const char* what) {
    if (!condition) {
        std::fprintf(stderr, "fuzz_token: invariant broken: %s\n", what);
        std::abort();
    }
}

std::shared_ptr<const TokenVerifier> loadVerifier() {
    const std::string keys = WSPUSH_FUZZ_KEYS_DIR;
    TokenConfig config;
    config.hmac_secrets = {{"", "fuzz-hmac-secret-0123456789abcdef0123"},
                           {"hs-kid", "another-hmac-secret-0123456789abcdef"}};
    config.public_keys = {{"rsa-pem", keys + "/rsa.pem"}, {"p256-pem", keys + "/p256.pem"}};
    config.jwks_file = keys + "/jwks.json";
    config.audience = "wspush";
    auto loaded = TokenVerifier::load(config);
    if (auto* error = std::get_if<ConfigError>(&loaded)) {
        std::fprintf(stderr, "fuzz_token: cannot load the keys: %s\n", error->describe().c_str());
        std::abort();
    }
    return std::get<std::shared_ptr<const TokenVerifier>>(loaded);
}

bool sameAnswer(const std::variant<VerifiedToken, TokenError>& a, const std::variant<VerifiedToken, TokenError>& b) {
    if (a.index() != b.index()) return false;
    if (const auto* error = std::get_if<TokenError>(&a))
        return error->rejection == std::get<TokenError>(b).rejection && error->reason == std::get<TokenError>(b).reason;
    const auto& left = std::get<VerifiedToken>(a);
    const auto& right = std::get<VerifiedToken>(b);
    return left.subject == right.subject && left.expiresAt == right.expiresAt && left.info == right.info &&
           left.channels == right.channels && left.channel == right.channel;
}

void fuzzBase64Url(std::string_view text) {
    if (auto bytes = decodeBase64Url(text)) check(encodeBase64Url(*bytes) == text, "decode then encode");
    check(decodeBase64Url(encodeBase64Url(text)) == std::string(text), "encode then decode");
}

void fuzzJwk(std::string_view text) {
    auto document = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (document.is_discarded()) return;
    if (document.is_object() && document.contains("keys") && document["keys"].is_array()) {
        for (const auto& key : document["keys"]) (void)readJwk(key);
    } else {
        (void)readJwk(document);
    }
}

}  // namespace
}  // namespace wspush

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace wspush;
    static const std::shared_ptr<const TokenVerifier> verifier = loadVerifier();
    std::string_view token(reinterpret_cast<const char*>(data), size);

    auto answer = verifier->verify(token, kNow);
    if (const auto* verified = std::get_if<VerifiedToken>(&answer)) {
        check(token.size() <= kMaxTokenBytes, "a token over the limit is never verified");
        check(verified->expiresAt.has_value(), "require_exp: a verified token has an exp");
        check(*verified->expiresAt + 5 >= kNow, "a verified token is not expired");
    } else {
        check(!std::get<TokenError>(answer).reason.empty(), "a refusal says why");
    }
    check(sameAnswer(answer, verifier->verify(token, kNow)), "deterministic");

    if (size <= 4096) fuzzBase64Url(token);
    fuzzJwk(token);
    return 0;
}
