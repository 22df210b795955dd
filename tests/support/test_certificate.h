// Self-signed certificates for tests of TLS servers and clients (webhooks over https, the
// daemon's own TLS listener).
#pragma once

#include <string>

namespace wspush::testing {

// A self-signed certificate made with OpenSSL's API, valid for an hour either side of now.
struct TestCertificate {
    std::string certificatePem;
    std::string privateKeyPem;
};
// `subjectAltNames` in OpenSSL's syntax, e.g. "DNS:localhost" or "DNS:localhost,IP:127.0.0.1".
TestCertificate makeSelfSignedCertificate(const std::string& subjectAltNames);

}  // namespace wspush::testing
