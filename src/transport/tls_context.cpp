#include "transport/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <boost/asio/ssl/error.hpp>

namespace wspush {

namespace ssl = boost::asio::ssl;

namespace {

// OpenSSL's reason for the last failure, rather than Asio's generic category message.
std::string describe(const boost::system::error_code& ec) {
    if (ec.category() == boost::asio::error::get_ssl_category()) {
        char text[256];
        ERR_error_string_n(static_cast<unsigned long>(ec.value()), text, sizeof text);
        return text;
    }
    return ec.message();
}

}  // namespace

std::variant<std::shared_ptr<TlsContext>, std::string> loadTlsContext(const TlsConfig& config) {
    auto context = std::make_shared<TlsContext>(TlsContext::tls_server);
    // No SSLv2/3 or compression (CRIME); renegotiation off: a client could make the server pay
    // for handshakes at will on one connection.
    context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                         ssl::context::no_compression | ssl::context::single_dh_use);
    SSL_CTX* native = context->native_handle();
    SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_min_proto_version(native, config.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
    // Forward secrecy and AEAD only for TLS 1.2 (Mozilla's "intermediate"); 1.3's suites all are.
    SSL_CTX_set_cipher_list(native,
                            "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
                            "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305");

    boost::system::error_code ec;
    ERR_clear_error();
    context->use_certificate_chain_file(config.cert, ec);
    if (ec) return "tls.cert " + config.cert + ": " + describe(ec);
    context->use_private_key_file(config.key, TlsContext::pem, ec);
    if (ec && ec.category() == boost::asio::error::get_ssl_category() &&
        ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH)
        return "tls.key " + config.key + " does not match tls.cert";
    if (ec) return "tls.key " + config.key + ": " + describe(ec);
    if (SSL_CTX_check_private_key(native) != 1) return "tls.key " + config.key + " does not match tls.cert";
    return context;
}

}  // namespace wspush
