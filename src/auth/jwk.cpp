#include "auth/jwk.h"

#include <openssl/core_names.h>

#include <array>
#include <optional>
#include <string_view>

#include "base/base64url.h"

namespace wspush {
namespace {

using json = nlohmann::json;

struct Curve {
    std::string_view crv;    // as in a JWK
    const char* group;       // as OpenSSL names it
    std::size_t coordinate;  // bytes of x and of y
};

// The curves of RFC 7518 section 6.2.1.1. P-521 can be read, though jwsKeyKindOf refuses it.
constexpr std::array<Curve, 3> kCurves{{
    {"P-256", "prime256v1", 32},
    {"P-384", "secp384r1", 48},
    {"P-521", "secp521r1", 66},
}};

// Reads an optional string member into `out`; false when the member is there but no string.
bool readOptionalString(const json& jwk, const char* name, std::string& out) {
    auto member = jwk.find(name);
    if (member == jwk.end()) return true;
    if (!member->is_string()) return false;
    out = member->get<std::string>();
    return true;
}

// The bytes of a required base64url member, or why there are none.
std::variant<std::string, MalformedJwk> base64UrlMember(const json& jwk, const char* name) {
    auto member = jwk.find(name);
    if (member == jwk.end()) return MalformedJwk{std::string("missing ") + name};
    if (!member->is_string()) return MalformedJwk{std::string(name) + " is not a string"};
    auto bytes = decodeBase64Url(member->get_ref<const std::string&>());
    if (!bytes || bytes->empty()) return MalformedJwk{std::string(name) + " is not base64url"};
    return *std::move(bytes);
}

BignumHandle bignumOf(const std::string& bigEndian) {
    return BignumHandle(BN_bin2bn(reinterpret_cast<const unsigned char*>(bigEndian.data()),
                                  static_cast<int>(bigEndian.size()), nullptr));
}

// `build` may refer to buffers and numbers of the caller's: they must outlive this call.
std::variant<EvpPkeyHandle, MalformedJwk> publicKeyFrom(const char* type, OSSL_PARAM_BLD* build) {
    OpenSslErrorsCleared errorsCleared;
    ParamsHandle params(OSSL_PARAM_BLD_to_param(build));
    EvpPkeyCtxHandle context(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
    EVP_PKEY* key = nullptr;
    if (!params || !context || EVP_PKEY_fromdata_init(context.get()) != 1 ||
        EVP_PKEY_fromdata(context.get(), &key, EVP_PKEY_PUBLIC_KEY, params.get()) != 1)
        return MalformedJwk{std::string("not a valid ") + type + " public key (OpenSSL refuses it)"};
    return EvpPkeyHandle(key);
}

std::variant<EvpPkeyHandle, MalformedJwk> rsaPublicKey(const json& jwk) {
    auto modulus = base64UrlMember(jwk, "n");
    if (auto* malformed = std::get_if<MalformedJwk>(&modulus)) return *malformed;
    auto exponent = base64UrlMember(jwk, "e");
    if (auto* malformed = std::get_if<MalformedJwk>(&exponent)) return *malformed;
    BignumHandle n = bignumOf(std::get<std::string>(modulus));
    BignumHandle e = bignumOf(std::get<std::string>(exponent));
    ParamBuildHandle build(OSSL_PARAM_BLD_new());
    if (!n || !e || !build || OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
        OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1)
        return MalformedJwk{"out of memory"};
    return publicKeyFrom("RSA", build.get());
}

std::variant<EvpPkeyHandle, MalformedJwk> ecPublicKey(const json& jwk) {
    std::string crv;
    if (!readOptionalString(jwk, "crv", crv)) return MalformedJwk{"crv is not a string"};
    if (crv.empty()) return MalformedJwk{"missing crv"};
    const Curve* curve = nullptr;
    for (const Curve& known : kCurves)
        if (known.crv == crv) curve = &known;
    if (curve == nullptr) return MalformedJwk{"unsupported crv \"" + crv + "\""};
    auto x = base64UrlMember(jwk, "x");
    if (auto* malformed = std::get_if<MalformedJwk>(&x)) return *malformed;
    auto y = base64UrlMember(jwk, "y");
    if (auto* malformed = std::get_if<MalformedJwk>(&y)) return *malformed;
    const std::string& xBytes = std::get<std::string>(x);
    const std::string& yBytes = std::get<std::string>(y);
    // RFC 7518 6.2.1.2: each coordinate is padded to the full size of the curve's field.
    if (xBytes.size() != curve->coordinate || yBytes.size() != curve->coordinate)
        return MalformedJwk{"x and y of " + crv + " must be " + std::to_string(curve->coordinate) + " bytes each"};
    // OpenSSL takes the point as one uncompressed octet string (SEC 1 2.3.3).
    std::string point = "\x04" + xBytes + yBytes;
    ParamBuildHandle build(OSSL_PARAM_BLD_new());
    if (!build || OSSL_PARAM_BLD_push_utf8_string(build.get(), OSSL_PKEY_PARAM_GROUP_NAME, curve->group, 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(build.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) != 1)
        return MalformedJwk{"out of memory"};
    return publicKeyFrom("EC", build.get());
}

}  // namespace

std::variant<Jwk, IgnoredJwk, MalformedJwk> readJwk(const json& jwk) {
    if (!jwk.is_object()) return MalformedJwk{"not a JSON object"};
    Jwk read;
    std::string use, kty;
    if (!readOptionalString(jwk, "kid", read.kid)) return MalformedJwk{"kid is not a string"};
    if (!readOptionalString(jwk, "alg", read.alg)) return MalformedJwk{"alg is not a string"};
    if (!readOptionalString(jwk, "use", use)) return MalformedJwk{"use is not a string"};
    if (!readOptionalString(jwk, "kty", kty)) return MalformedJwk{"kty is not a string"};
    if (!use.empty() && use != "sig") return IgnoredJwk{"use \"" + use + "\" is not \"sig\""};
    if (kty.empty()) return MalformedJwk{"missing kty"};
    if (kty != "RSA" && kty != "EC") return IgnoredJwk{"kty \"" + kty + "\" signs no token wspush verifies"};
    auto key = kty == "RSA" ? rsaPublicKey(jwk) : ecPublicKey(jwk);
    if (auto* malformed = std::get_if<MalformedJwk>(&key)) return *malformed;
    read.key = std::move(std::get<EvpPkeyHandle>(key));
    return read;
}

}  // namespace wspush
