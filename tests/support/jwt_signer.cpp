#include "support/jwt_signer.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <stdexcept>
#include <vector>

#include "auth/openssl_handles.h"
#include "base/base64url.h"

namespace wspush::testing {
namespace {

void check(bool ok, const char* what) {
    if (!ok) throw std::runtime_error(std::string("OpenSSL: ") + what + " failed");
}

// What `write` writes into a memory BIO.
template <class Write>
std::string pemOf(Write write) {
    BioHandle bio(BIO_new(BIO_s_mem()));
    check(bio != nullptr && write(bio.get()) == 1, "writing PEM");
    char* data = nullptr;
    long length = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(length));
}

std::string bytesOf(const BIGNUM* number, int width = 0) {
    std::string bytes(static_cast<std::size_t>(width > 0 ? width : BN_num_bytes(number)), '\0');
    auto* out = reinterpret_cast<unsigned char*>(bytes.data());
    check((width > 0 ? BN_bn2binpad(number, out, width) : BN_bn2bin(number, out)) >= 0, "BN_bn2bin");
    return bytes;
}

BignumHandle bignumParameter(EVP_PKEY* key, const char* name) {
    BIGNUM* number = nullptr;
    check(EVP_PKEY_get_bn_param(key, name, &number) == 1, name);
    return BignumHandle(number);
}

void requireNotHmac(const TestKey& key, std::string_view what) {
    if (key.isHmac()) throw std::logic_error(std::string(what) + " of an HMAC secret");
}

const EVP_MD* digestOf(std::string_view alg) {
    if (alg.size() > 3) {
        std::string_view bits = alg.substr(alg.size() - 3);
        if (bits == "256") return EVP_sha256();
        if (bits == "384") return EVP_sha384();
        if (bits == "512") return EVP_sha512();
    }
    throw std::invalid_argument("cannot tell the hash of alg \"" + std::string(alg) + "\"");
}

// JWS ECDSA signatures are r and s padded to the curve's size, not OpenSSL's DER (RFC 7518 3.4).
std::string jwsFromDerEcdsa(const std::vector<unsigned char>& der, EVP_PKEY* key) {
    const unsigned char* in = der.data();
    EcdsaSigHandle ecdsa(d2i_ECDSA_SIG(nullptr, &in, static_cast<long>(der.size())));
    check(ecdsa != nullptr, "d2i_ECDSA_SIG");
    int coordinate = (EVP_PKEY_get_bits(key) + 7) / 8;
    return bytesOf(ECDSA_SIG_get0_r(ecdsa.get()), coordinate) + bytesOf(ECDSA_SIG_get0_s(ecdsa.get()), coordinate);
}

std::string signatureOf(std::string_view alg, std::string_view input, const TestKey& key) {
    if (alg == "none") return "";
    const EVP_MD* digest = digestOf(alg);
    const auto* data = reinterpret_cast<const unsigned char*>(input.data());
    if (key.isHmac()) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int length = 0;
        check(HMAC(digest, key.secret().data(), static_cast<int>(key.secret().size()), data, input.size(), mac,
                   &length) != nullptr,
              "HMAC");
        return std::string(reinterpret_cast<char*>(mac), length);
    }
    EvpMdCtxHandle context(EVP_MD_CTX_new());
    check(context && EVP_DigestSignInit(context.get(), nullptr, digest, nullptr, key.pkey()) == 1,
          "EVP_DigestSignInit");
    std::size_t length = 0;
    check(EVP_DigestSign(context.get(), nullptr, &length, data, input.size()) == 1, "EVP_DigestSign");
    std::vector<unsigned char> signature(length);
    check(EVP_DigestSign(context.get(), signature.data(), &length, data, input.size()) == 1, "EVP_DigestSign");
    signature.resize(length);
    if (EVP_PKEY_is_a(key.pkey(), "EC")) return jwsFromDerEcdsa(signature, key.pkey());
    return std::string(signature.begin(), signature.end());
}

}  // namespace

TestKey TestKey::hmac(std::string secret) {
    TestKey key;
    key.secret_ = std::move(secret);
    return key;
}

TestKey TestKey::rsa(int bits) {
    TestKey key;
    key.pkey_.reset(EVP_RSA_gen(static_cast<unsigned int>(bits)), EVP_PKEY_free);
    check(key.pkey_ != nullptr, "EVP_RSA_gen");
    return key;
}

TestKey TestKey::ec(std::string curve) {
    if (curve != "P-256" && curve != "P-384" && curve != "P-521")
        throw std::invalid_argument("curve " + curve + ": P-256, P-384 or P-521");
    TestKey key;
    key.pkey_.reset(EVP_EC_gen(curve.c_str()), EVP_PKEY_free);
    check(key.pkey_ != nullptr, "EVP_EC_gen");
    return key;
}

std::string TestKey::publicPem() const {
    requireNotHmac(*this, "a public key");
    return pemOf([&](BIO* bio) { return PEM_write_bio_PUBKEY(bio, pkey_.get()); });
}

std::string TestKey::certificatePem() const {
    requireNotHmac(*this, "a certificate");
    X509Handle certificate(X509_new());
    X509* cert = certificate.get();
    check(cert != nullptr && X509_set_version(cert, 2) == 1, "X509_set_version");
    check(ASN1_INTEGER_set(X509_get_serialNumber(cert), 1) == 1, "serial");
    check(X509_gmtime_adj(X509_getm_notBefore(cert), -86400) != nullptr, "notBefore");
    check(X509_gmtime_adj(X509_getm_notAfter(cert), 86400) != nullptr, "notAfter");
    check(X509_set_pubkey(cert, pkey_.get()) == 1, "X509_set_pubkey");
    X509_NAME* name = X509_get_subject_name(cert);
    check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                     reinterpret_cast<const unsigned char*>("wspush token signer"), -1, -1, 0) == 1,
          "subject");
    check(X509_set_issuer_name(cert, name) == 1, "issuer");
    check(X509_sign(cert, pkey_.get(), EVP_sha256()) > 0, "X509_sign");
    return pemOf([&](BIO* bio) { return PEM_write_bio_X509(bio, cert); });
}

nlohmann::json TestKey::jwk(std::string kid) const {
    nlohmann::json key;
    if (isHmac()) {
        key = {{"kty", "oct"}, {"k", encodeBase64Url(secret_)}};
    } else if (EVP_PKEY_is_a(pkey_.get(), "RSA")) {
        key = {{"kty", "RSA"},
               {"n", encodeBase64Url(bytesOf(bignumParameter(pkey_.get(), OSSL_PKEY_PARAM_RSA_N).get()))},
               {"e", encodeBase64Url(bytesOf(bignumParameter(pkey_.get(), OSSL_PKEY_PARAM_RSA_E).get()))}};
    } else {
        int bits = EVP_PKEY_get_bits(pkey_.get());
        int coordinate = (bits + 7) / 8;
        key = {
            {"kty", "EC"},
            {"crv", "P-" + std::to_string(bits)},
            {"x", encodeBase64Url(bytesOf(bignumParameter(pkey_.get(), OSSL_PKEY_PARAM_EC_PUB_X).get(), coordinate))},
            {"y", encodeBase64Url(bytesOf(bignumParameter(pkey_.get(), OSSL_PKEY_PARAM_EC_PUB_Y).get(), coordinate))}};
    }
    if (!kid.empty()) key["kid"] = std::move(kid);
    return key;
}

std::string signJws(std::string_view alg, std::string_view header, std::string_view payload, const TestKey& key) {
    std::string input = encodeBase64Url(header) + "." + encodeBase64Url(payload);
    return input + "." + encodeBase64Url(signatureOf(alg, input, key));
}

std::string signJwt(const nlohmann::json& header, const nlohmann::json& claims, const TestKey& key) {
    if (!header.contains("alg") || !header["alg"].is_string())
        throw std::invalid_argument("the header names no alg: " + header.dump());
    return signJws(header["alg"].get<std::string>(), header.dump(), claims.dump(), key);
}

std::string signJwt(std::string_view alg, const nlohmann::json& claims, const TestKey& key, std::string kid) {
    nlohmann::json header = {{"alg", alg}, {"typ", "JWT"}};
    if (!kid.empty()) header["kid"] = std::move(kid);
    return signJwt(header, claims, key);
}

}  // namespace wspush::testing
