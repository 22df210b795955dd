#include "auth/jws.h"

#include <openssl/crypto.h>
#include <openssl/hmac.h>

#include <array>
#include <cstddef>
#include <vector>

#include "auth/openssl_handles.h"

namespace wspush {
namespace {

constexpr std::array<JwsAlgorithm, 8> kAlgorithms{{
    {"HS256", JwsKeyKind::HmacSecret, EVP_sha256},
    {"HS384", JwsKeyKind::HmacSecret, EVP_sha384},
    {"HS512", JwsKeyKind::HmacSecret, EVP_sha512},
    {"RS256", JwsKeyKind::Rsa, EVP_sha256},
    {"RS384", JwsKeyKind::Rsa, EVP_sha384},
    {"RS512", JwsKeyKind::Rsa, EVP_sha512},
    {"ES256", JwsKeyKind::EcP256, EVP_sha256},
    {"ES384", JwsKeyKind::EcP384, EVP_sha384},
}};

constexpr int kMinRsaBits = 2048;

// An empty string_view may hold a null pointer, which OpenSSL's one-shot calls do not all accept.
const unsigned char* bytesOf(std::string_view text) {
    static const unsigned char kEmpty = 0;
    return text.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(text.data());
}

// JWS carries an ECDSA signature as r and s, each a big-endian number padded to the curve's
// size (RFC 7518 section 3.4); OpenSSL verifies the DER SEQUENCE of two INTEGERs. Empty when
// `signature` is not exactly two coordinates long.
std::vector<unsigned char> derFromJwsEcdsa(std::string_view signature, std::size_t coordinateBytes) {
    if (signature.size() != 2 * coordinateBytes) return {};
    const unsigned char* bytes = bytesOf(signature);
    BignumHandle r(BN_bin2bn(bytes, static_cast<int>(coordinateBytes), nullptr));
    BignumHandle s(BN_bin2bn(bytes + coordinateBytes, static_cast<int>(coordinateBytes), nullptr));
    EcdsaSigHandle ecdsa(ECDSA_SIG_new());
    if (!r || !s || !ecdsa || ECDSA_SIG_set0(ecdsa.get(), r.get(), s.get()) != 1) return {};
    // ECDSA_SIG owns them now.
    r.release();
    s.release();
    int length = i2d_ECDSA_SIG(ecdsa.get(), nullptr);
    if (length <= 0) return {};
    std::vector<unsigned char> der(static_cast<std::size_t>(length));
    unsigned char* out = der.data();
    if (i2d_ECDSA_SIG(ecdsa.get(), &out) != length) return {};
    return der;
}

std::size_t ecCoordinateBytes(JwsKeyKind kind) {
    return kind == JwsKeyKind::EcP384 ? 48 : 32;
}

}  // namespace

const JwsAlgorithm* findJwsAlgorithm(std::string_view name) {
    for (const JwsAlgorithm& algorithm : kAlgorithms)
        if (algorithm.name == name) return &algorithm;
    return nullptr;
}

std::variant<JwsKeyKind, std::string> jwsKeyKindOf(EVP_PKEY* key) {
    OpenSslErrorsCleared errorsCleared;
    if (EVP_PKEY_is_a(key, "RSA")) {
        int bits = EVP_PKEY_get_bits(key);
        if (bits < kMinRsaBits)
            return "RSA key of " + std::to_string(bits) + " bits; at least " + std::to_string(kMinRsaBits) +
                   " are needed";
        return JwsKeyKind::Rsa;
    }
    if (!EVP_PKEY_is_a(key, "EC")) return std::string("not an RSA or EC key");
    std::array<char, 80> group{};
    if (EVP_PKEY_get_group_name(key, group.data(), group.size(), nullptr) != 1)
        return std::string("EC key without a named curve");
    std::string_view curve = group.data();
    JwsKeyKind kind;
    if (curve == "prime256v1") {
        kind = JwsKeyKind::EcP256;
    } else if (curve == "secp384r1") {
        kind = JwsKeyKind::EcP384;
    } else {
        return "unsupported EC curve " + std::string(curve) + " (P-256 and P-384 are supported)";
    }
    // A point off the curve lets a forged signature leak the verifier's arithmetic (invalid
    // curve attacks); JWK coordinates in particular are just two numbers anyone can write.
    EvpPkeyCtxHandle context(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
    if (!context || EVP_PKEY_public_check(context.get()) != 1) return std::string("EC point not on its curve");
    return kind;
}

bool hmacSignatureMatches(const JwsAlgorithm& algorithm, std::string_view secret, std::string_view signingInput,
                          std::string_view signature) {
    OpenSslErrorsCleared errorsCleared;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (HMAC(algorithm.digest(), bytesOf(secret), static_cast<int>(secret.size()), bytesOf(signingInput),
             signingInput.size(), mac, &length) == nullptr)
        return false;
    // The length of a MAC is no secret; its bytes are, until they match.
    return signature.size() == length && CRYPTO_memcmp(mac, bytesOf(signature), length) == 0;
}

bool publicKeySignatureMatches(const JwsAlgorithm& algorithm, EVP_PKEY* key, std::string_view signingInput,
                               std::string_view signature) {
    OpenSslErrorsCleared errorsCleared;
    std::vector<unsigned char> der;
    const unsigned char* signatureBytes = bytesOf(signature);
    std::size_t signatureLength = signature.size();
    if (algorithm.keyKind == JwsKeyKind::EcP256 || algorithm.keyKind == JwsKeyKind::EcP384) {
        der = derFromJwsEcdsa(signature, ecCoordinateBytes(algorithm.keyKind));
        if (der.empty()) return false;
        signatureBytes = der.data();
        signatureLength = der.size();
    }
    EvpMdCtxHandle context(EVP_MD_CTX_new());
    // RSA keys default to PKCS #1 v1.5 padding, which RS256/384/512 are.
    if (!context || EVP_DigestVerifyInit(context.get(), nullptr, algorithm.digest(), nullptr, key) != 1) return false;
    return EVP_DigestVerify(context.get(), signatureBytes, signatureLength, bytesOf(signingInput),
                            signingInput.size()) == 1;
}

}  // namespace wspush
