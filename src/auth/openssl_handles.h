// OpenSSL objects owned by std::unique_ptr, each freed by its own *_free function, so no error
// path can leak one; and OpenSSL's error queue emptied when a block is done with OpenSSL.
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/params.h>
#include <openssl/x509.h>

#include <memory>

namespace wspush {

template <auto Free>
struct OpenSslFree {
    template <class T>
    void operator()(T* object) const noexcept {
        Free(object);
    }
};

using EvpPkeyHandle = std::unique_ptr<EVP_PKEY, OpenSslFree<EVP_PKEY_free>>;
using EvpPkeyCtxHandle = std::unique_ptr<EVP_PKEY_CTX, OpenSslFree<EVP_PKEY_CTX_free>>;
using EvpMdCtxHandle = std::unique_ptr<EVP_MD_CTX, OpenSslFree<EVP_MD_CTX_free>>;
using BioHandle = std::unique_ptr<BIO, OpenSslFree<BIO_free_all>>;
using BignumHandle = std::unique_ptr<BIGNUM, OpenSslFree<BN_free>>;
using EcdsaSigHandle = std::unique_ptr<ECDSA_SIG, OpenSslFree<ECDSA_SIG_free>>;
using X509Handle = std::unique_ptr<X509, OpenSslFree<X509_free>>;
using ParamBuildHandle = std::unique_ptr<OSSL_PARAM_BLD, OpenSslFree<OSSL_PARAM_BLD_free>>;
using ParamsHandle = std::unique_ptr<OSSL_PARAM, OpenSslFree<OSSL_PARAM_free>>;

// A failed OpenSSL call leaves errors in a per-thread queue. The event loop threads that verify
// tokens also run TLS, and SSL_get_error() reads that queue: an error left behind by a refused
// token would be taken for a failure of some later TLS read. Declared first in a block, it
// empties the queue when the block ends, however it ends.
struct OpenSslErrorsCleared {
    OpenSslErrorsCleared() = default;
    ~OpenSslErrorsCleared() { ERR_clear_error(); }
    OpenSslErrorsCleared(const OpenSslErrorsCleared&) = delete;
    OpenSslErrorsCleared& operator=(const OpenSslErrorsCleared&) = delete;
};

}  // namespace wspush
