// What a token must be to be accepted, and why.
//
// Form. Three base64url parts separated by '.', at most kMaxTokenBytes in all (the length is
// checked before anything is decoded, so a huge token costs nothing). The decoder is strict, so
// a valid token has no second spelling that would slip past a cache or a log search. Anything
// else is "malformed token": a JWE (five parts), an unsigned two-part token, padding, JSON that
// is not an object or nests deeper than kMaxJsonDepth.
//
// Header. `alg` must be one of HS256 HS384 HS512 RS256 RS384 RS512 ES256 ES384: "none" and
// everything else is "unsupported algorithm", so nobody gets in with an unsigned token. `crit`
// names extensions the token's issuer says must be understood; we understand none, so a token
// with it is refused. `kid` picks the key. `typ` and every other member are ignored; above all,
// keys a token carries itself (`jwk`, `jku`, `x5c`, `x5u`) are never used: a token cannot
// choose what it is checked against.
//
// Keys. The algorithm decides the kind of key: HS* only the hmac_secrets, RS* only RSA keys
// (2048 bits or more), ES256 only P-256 keys and ES384 only P-384 keys. That is what defeats
// algorithm confusion, where a token signed with HS256 and a published public key as the secret
// would pass if the public key were ever used as an HMAC secret. With a `kid`, only keys of
// that kid are tried ("unknown kid" when there are none of the right kind); without one, only
// keys configured without a kid ("missing kid" when there are none). Several keys may share a
// kid, so a key can be rotated by adding the new one before the old one goes, and each of them
// is tried. A JWK that names an `alg` is used for that algorithm only.
//
// Signature, then claims. The signature is checked before the payload is even parsed: nothing
// an attacker writes in the claims is looked at until the token is known to come from the key's
// owner. A mismatch is "bad signature".
//
// Claims. A JSON object. `exp`, `nbf` and `iat` are NumericDates (integer or fractional
// seconds); any other type is refused rather than ignored, since an ignored `exp` would make a
// token valid forever. Refusals that a new token would not cure (wrong audience or issuer,
// malformed claims) are reported before the ones it would (expired, not valid yet), so that a
// client is not sent to fetch a new token that would be refused just the same:
// - `exp` missing while require_exp: "token without exp".
// - `aud` (a string or an array of strings) must name the configured audience, when one is;
//   otherwise it is ignored. `iss` must equal the configured issuer, when one is.
// - `sub` a string, `channel` a string, `channels` at most 128 strings of 1 to 255 bytes,
//   `info` an object of at most 1024 bytes when written compact. Unknown claims are ignored.
// - now > exp + leeway: Expired. now < nbf − leeway, or iat > now + leeway: NotYetValid. The
//   leeway absorbs clock skew between the token's issuer and this node; at exactly
//   exp + leeway a token is still valid.
//
// verify() is const, never throws and may run on every event loop thread at once: keys are
// immutable after load(), and each check makes its own OpenSSL contexts.
#include "auth/token_verifier.h"

#include <openssl/pem.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "auth/jwk.h"
#include "auth/jws.h"
#include "auth/openssl_handles.h"
#include "base/base64url.h"
#include "base/bounded_json.h"

namespace wspush {

struct TokenVerifier::Keys {
    struct HmacSecret {
        std::string kid;
        std::string secret;
    };
    struct PublicKey {
        std::string kid;
        JwsKeyKind kind;
        const JwsAlgorithm* onlyFor;  // a JWK's `alg`; nullptr: every algorithm of its kind
        EvpPkeyHandle key;
    };
    std::vector<HmacSecret> hmacSecrets;
    std::vector<PublicKey> publicKeys;
};

namespace {

using json = nlohmann::json;

constexpr std::string_view kMalformed = "malformed token";
constexpr std::size_t kMaxInfoBytes = 1024;
constexpr std::size_t kMaxChannels = 128;
constexpr std::size_t kMaxChannelBytes = 255;

TokenError invalid(std::string_view reason) {
    return {TokenRejection::Invalid, std::string(reason)};
}

struct FileClose {
    void operator()(std::FILE* file) const noexcept { std::fclose(file); }
};

// The whole file into `text`; an error naming the file otherwise.
std::optional<ConfigError> readFile(const std::string& file, const std::string& configPath, std::string& text) {
    std::unique_ptr<std::FILE, FileClose> stream(std::fopen(file.c_str(), "rb"));
    if (!stream) return ConfigError{configPath, "cannot read " + file + ": " + std::strerror(errno)};
    text.clear();
    char buffer[4096];
    std::size_t got = 0;
    while ((got = std::fread(buffer, 1, sizeof buffer, stream.get())) > 0) text.append(buffer, got);
    if (std::ferror(stream.get())) return ConfigError{configPath, "cannot read " + file + ": " + std::strerror(errno)};
    return std::nullopt;
}

// The first PEM public key in `pem`, or else the key of its first certificate: a rotated
// certificate can be dropped in as it is, without extracting its key first.
EvpPkeyHandle publicKeyFromPem(const std::string& pem) {
    OpenSslErrorsCleared errorsCleared;
    auto bioOf = [&pem] { return BioHandle(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))); };
    BioHandle publicKeyBio = bioOf();
    if (!publicKeyBio) return nullptr;
    if (EvpPkeyHandle key{PEM_read_bio_PUBKEY(publicKeyBio.get(), nullptr, nullptr, nullptr)}) return key;
    BioHandle certificateBio = bioOf();
    if (!certificateBio) return nullptr;
    X509Handle certificate(PEM_read_bio_X509(certificateBio.get(), nullptr, nullptr, nullptr));
    if (!certificate) return nullptr;
    return EvpPkeyHandle(X509_get_pubkey(certificate.get()));
}

std::optional<ConfigError> loadPemKeys(const std::vector<TokenPublicKey>& configured, TokenVerifier::Keys& keys) {
    for (std::size_t i = 0; i < configured.size(); ++i) {
        const TokenPublicKey& entry = configured[i];
        std::string path = "client.token.public_keys[" + std::to_string(i) + "].pem_file";
        std::string pem;
        if (auto error = readFile(entry.pem_file, path, pem)) return error;
        EvpPkeyHandle key = publicKeyFromPem(pem);
        if (!key) return ConfigError{path, entry.pem_file + " holds no PEM public key (\"PUBLIC KEY\") or certificate"};
        auto kind = jwsKeyKindOf(key.get());
        if (auto* why = std::get_if<std::string>(&kind)) return ConfigError{path, entry.pem_file + ": " + *why};
        keys.publicKeys.push_back({entry.kid, std::get<JwsKeyKind>(kind), nullptr, std::move(key)});
    }
    return std::nullopt;
}

std::optional<ConfigError> loadJwks(const std::string& file, TokenVerifier::Keys& keys) {
    const std::string path = "client.token.jwks_file";
    std::string text;
    if (auto error = readFile(file, path, text)) return error;
    BoundedJson<json> parsed = parseBoundedJson<json>(text);
    if (parsed.error == JsonParseError::TooDeep) return ConfigError{path, file + ": " + std::string(kJsonTooDeep)};
    if (parsed.error != JsonParseError::None) return ConfigError{path, file + " is not JSON"};
    auto keyArray = parsed.value.is_object() ? parsed.value.find("keys") : parsed.value.end();
    if (keyArray == parsed.value.end() || !keyArray->is_array())
        return ConfigError{path, file + " is not a JWK Set: expected {\"keys\":[...]}"};
    for (std::size_t i = 0; i < keyArray->size(); ++i) {
        const json& entry = (*keyArray)[i];
        std::string which = "key " + std::to_string(i);
        if (entry.is_object() && entry.contains("kid") && entry["kid"].is_string())
            which += " (kid \"" + entry["kid"].get<std::string>() + "\")";
        auto read = readJwk(entry);
        if (auto* malformed = std::get_if<MalformedJwk>(&read))
            return ConfigError{path, file + ": " + which + ": " + malformed->why};
        if (auto* ignored = std::get_if<IgnoredJwk>(&read)) {
            spdlog::info("{}: {} ignored: {}", file, which, ignored->why);
            continue;
        }
        Jwk& jwk = std::get<Jwk>(read);
        const JwsAlgorithm* onlyFor = nullptr;
        if (!jwk.alg.empty()) {
            onlyFor = findJwsAlgorithm(jwk.alg);
            // Key sets published by identity providers hold keys for algorithms wspush does not
            // verify (PS256, ES512, RSA-OAEP); those keys are of no use here, not wrong.
            if (onlyFor == nullptr) {
                spdlog::info("{}: {} ignored: alg \"{}\" is not verified by wspush", file, which, jwk.alg);
                continue;
            }
        }
        auto kind = jwsKeyKindOf(jwk.key.get());
        if (auto* why = std::get_if<std::string>(&kind)) return ConfigError{path, file + ": " + which + ": " + *why};
        if (onlyFor != nullptr && onlyFor->keyKind != std::get<JwsKeyKind>(kind))
            return ConfigError{path, file + ": " + which + ": alg \"" + jwk.alg +
                                         "\" does not fit the key (RS* takes RSA, ES256 P-256, ES384 P-384)"};
        keys.publicKeys.push_back({jwk.kid, std::get<JwsKeyKind>(kind), onlyFor, std::move(jwk.key)});
    }
    return std::nullopt;
}

// Tries every key the token may be checked with; nullopt when one of them signed it.
std::optional<TokenError> checkSignature(const TokenVerifier::Keys& keys, const JwsAlgorithm& algorithm,
                                         const std::optional<std::string>& kid, std::string_view signingInput,
                                         std::string_view signature) {
    std::string_view wanted = kid ? std::string_view(*kid) : std::string_view();
    bool anyKey = false;
    if (algorithm.keyKind == JwsKeyKind::HmacSecret) {
        for (const auto& secret : keys.hmacSecrets) {
            if (secret.kid != wanted) continue;
            anyKey = true;
            if (hmacSignatureMatches(algorithm, secret.secret, signingInput, signature)) return std::nullopt;
        }
    } else {
        for (const auto& key : keys.publicKeys) {
            if (key.kind != algorithm.keyKind || key.kid != wanted) continue;
            if (key.onlyFor != nullptr && key.onlyFor != &algorithm) continue;
            anyKey = true;
            if (publicKeySignatureMatches(algorithm, key.key.get(), signingInput, signature)) return std::nullopt;
        }
    }
    if (!anyKey) return invalid(kid ? "unknown kid" : "missing kid");
    return invalid("bad signature");
}

// A NumericDate as whole Unix seconds, rounded down and clamped to what fits.
std::int64_t wholeSecondsOf(const json& date) {
    constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
    if (date.is_number_unsigned())
        return static_cast<std::int64_t>(std::min<std::uint64_t>(date.get<std::uint64_t>(), kMax));
    if (date.is_number_integer()) return date.get<std::int64_t>();
    constexpr double kTwoToThe63 = 9223372036854775808.0;
    double floored = std::floor(date.get<double>());
    if (floored >= kTwoToThe63) return kMax;
    if (floored < -kTwoToThe63) return std::numeric_limits<std::int64_t>::min();
    return static_cast<std::int64_t>(floored);
}

bool namesAudience(const json& claims, const std::string& audience) {
    auto aud = claims.find("aud");
    if (aud == claims.end()) return false;
    if (aud->is_string()) return aud->get_ref<const std::string&>() == audience;
    if (!aud->is_array()) return false;
    bool named = false;
    for (const json& each : *aud) {
        if (!each.is_string()) return false;
        named = named || each.get_ref<const std::string&>() == audience;
    }
    return named;
}

std::variant<VerifiedToken, TokenError> checkClaims(const TokenConfig& rules, const json& claims,
                                                    std::int64_t nowUnixSeconds) {
    std::optional<double> dates[3];
    constexpr const char* kDateNames[3] = {"exp", "nbf", "iat"};
    for (int i = 0; i < 3; ++i) {
        auto date = claims.find(kDateNames[i]);
        if (date == claims.end()) continue;
        if (!date->is_number()) return invalid(std::string("malformed ") + kDateNames[i]);
        dates[i] = date->get<double>();
    }
    const auto& [exp, nbf, iat] = dates;
    if (!exp && rules.require_exp) return invalid("token without exp");
    if (!rules.audience.empty() && !namesAudience(claims, rules.audience)) return invalid("wrong audience");
    if (!rules.issuer.empty()) {
        auto iss = claims.find("iss");
        if (iss == claims.end() || !iss->is_string() || iss->get_ref<const std::string&>() != rules.issuer)
            return invalid("wrong issuer");
    }

    VerifiedToken verified;
    if (auto sub = claims.find("sub"); sub != claims.end()) {
        if (!sub->is_string()) return invalid("malformed sub");
        verified.subject = sub->get<std::string>();
    }
    if (auto info = claims.find("info"); info != claims.end()) {
        if (!info->is_object()) return invalid("malformed info");
        // The parser let only valid UTF-8 in, so nothing is replaced; `replace` just rules out a throw.
        verified.info = info->dump(-1, ' ', false, json::error_handler_t::replace);
        if (verified.info.size() > kMaxInfoBytes) return invalid("info too large");
    }
    if (auto channels = claims.find("channels"); channels != claims.end()) {
        if (!channels->is_array() || channels->size() > kMaxChannels) return invalid("malformed channels");
        for (const json& channel : *channels) {
            if (!channel.is_string()) return invalid("malformed channels");
            const auto& name = channel.get_ref<const std::string&>();
            if (name.empty() || name.size() > kMaxChannelBytes) return invalid("malformed channels");
            verified.channels.push_back(name);
        }
    }
    if (auto channel = claims.find("channel"); channel != claims.end()) {
        if (!channel->is_string()) return invalid("malformed channel");
        verified.channel = channel->get<std::string>();
    }

    double now = static_cast<double>(nowUnixSeconds);
    double leeway = rules.leeway.count();
    if (exp && now > *exp + leeway) return TokenError{TokenRejection::Expired, "token expired"};
    if (nbf && now < *nbf - leeway) return TokenError{TokenRejection::NotYetValid, "token not valid yet"};
    if (iat && *iat > now + leeway) return TokenError{TokenRejection::NotYetValid, "token issued in the future"};
    if (exp) verified.expiresAt = wholeSecondsOf(*claims.find("exp"));
    return verified;
}

std::variant<VerifiedToken, TokenError> checkToken(const TokenConfig& rules, const TokenVerifier::Keys& keys,
                                                   std::string_view token, std::int64_t nowUnixSeconds) {
    if (token.size() > kMaxTokenBytes) return invalid(kMalformed);
    std::size_t firstDot = token.find('.');
    std::size_t secondDot = firstDot == token.npos ? token.npos : token.find('.', firstDot + 1);
    if (secondDot == token.npos || token.find('.', secondDot + 1) != token.npos) return invalid(kMalformed);
    auto header = decodeBase64Url(token.substr(0, firstDot));
    auto payload = decodeBase64Url(token.substr(firstDot + 1, secondDot - firstDot - 1));
    auto signature = decodeBase64Url(token.substr(secondDot + 1));
    if (!header || !payload || !signature) return invalid(kMalformed);

    BoundedJson<json> headerJson = parseBoundedJson<json>(*header);
    if (headerJson.error != JsonParseError::None || !headerJson.value.is_object()) return invalid(kMalformed);
    auto alg = headerJson.value.find("alg");
    if (alg == headerJson.value.end() || !alg->is_string()) return invalid(kMalformed);
    const JwsAlgorithm* algorithm = findJwsAlgorithm(alg->get_ref<const std::string&>());
    if (algorithm == nullptr) return invalid("unsupported algorithm");
    if (headerJson.value.contains("crit")) return invalid("unsupported crit");
    std::optional<std::string> kid;
    if (auto member = headerJson.value.find("kid"); member != headerJson.value.end()) {
        if (!member->is_string()) return invalid(kMalformed);
        kid = member->get<std::string>();
    }

    if (auto refused = checkSignature(keys, *algorithm, kid, token.substr(0, secondDot), *signature)) return *refused;

    BoundedJson<json> claims = parseBoundedJson<json>(*payload);
    if (claims.error != JsonParseError::None || !claims.value.is_object()) return invalid(kMalformed);
    return checkClaims(rules, claims.value, nowUnixSeconds);
}

}  // namespace

std::variant<std::shared_ptr<const TokenVerifier>, ConfigError> TokenVerifier::load(const TokenConfig& config) {
    auto keys = std::make_unique<Keys>();
    for (const TokenHmacSecret& secret : config.hmac_secrets) keys->hmacSecrets.push_back({secret.kid, secret.secret});
    if (auto error = loadPemKeys(config.public_keys, *keys)) return *error;
    if (!config.jwks_file.empty())
        if (auto error = loadJwks(config.jwks_file, *keys)) return *error;
    // The constructor is private (a verifier exists only loaded), so make_shared cannot call it.
    return std::shared_ptr<const TokenVerifier>(new TokenVerifier(config, std::move(keys)));
}

std::variant<VerifiedToken, TokenError> TokenVerifier::verify(std::string_view token,
                                                              std::int64_t nowUnixSeconds) const {
    try {
        return checkToken(rules_, *keys_, token, nowUnixSeconds);
    } catch (const std::exception&) {
        // Only allocation can throw here; the caller is promised an answer, and a refusal is safe.
        return invalid("token not verified");
    }
}

TokenVerifier::TokenVerifier(TokenConfig rules, std::unique_ptr<Keys> keys)
    : rules_(std::move(rules)), keys_(std::move(keys)) {}

TokenVerifier::~TokenVerifier() = default;

}  // namespace wspush
