#include "support/test_certificate.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <functional>
#include <memory>
#include <random>
#include <stdexcept>

namespace wspush::testing {

namespace {

void check(bool ok, const char* what) {
    if (!ok) throw std::runtime_error(std::string("test certificate: ") + what);
}

std::string pemOf(const std::function<int(BIO*)>& write) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    check(bio && write(bio.get()) == 1, "PEM_write");
    char* data = nullptr;
    long size = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(size));
}

}  // namespace

TestCertificate makeSelfSignedCertificate(const std::string& subjectAltNames) {
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
    check(key != nullptr, "EVP_EC_gen");
    std::unique_ptr<X509, decltype(&X509_free)> certificate(X509_new(), X509_free);
    X509* cert = certificate.get();
    check(X509_set_version(cert, 2) == 1, "X509_set_version");
    // Distinct serials: a client that trusts one of two certificates of the same name must not
    // take the other for it.
    check(ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert), std::random_device{}()) == 1, "serial");
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    check(X509_set_pubkey(cert, key.get()) == 1, "X509_set_pubkey");
    X509_NAME* name = X509_get_subject_name(cert);
    check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("wspush test"),
                                     -1, -1, 0) == 1,
          "subject");
    check(X509_set_issuer_name(cert, name) == 1, "issuer");
    X509V3_CTX context;
    X509V3_set_ctx_nodb(&context);
    X509V3_set_ctx(&context, cert, cert, nullptr, nullptr, 0);
    X509_EXTENSION* altNames = X509V3_EXT_conf_nid(nullptr, &context, NID_subject_alt_name, subjectAltNames.c_str());
    check(altNames != nullptr, "subjectAltName");
    X509_add_ext(cert, altNames, -1);
    X509_EXTENSION_free(altNames);
    check(X509_sign(cert, key.get(), EVP_sha256()) > 0, "X509_sign");
    return {pemOf([&](BIO* bio) { return PEM_write_bio_X509(bio, cert); }), pemOf([&](BIO* bio) {
                return PEM_write_bio_PrivateKey(bio, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
            })};
}

}  // namespace wspush::testing
