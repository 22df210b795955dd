#include "webhooks/webhook_signature.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdlib>

#include <spdlog/spdlog.h>

#include "base/constant_time.h"

namespace wspush {

std::string hmacSha256Hex(std::string_view key, std::string_view data) {
    // An empty key or message is valid HMAC input; a string_view of one may hold a null pointer.
    static const unsigned char kEmpty = 0;
    auto bytes = [](std::string_view s) {
        return s.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(s.data());
    };
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (HMAC(EVP_sha256(), bytes(key), static_cast<int>(key.size()), bytes(data), data.size(), digest, &length) ==
        nullptr) {
        // Only a broken OpenSSL fails here; an unsigned webhook would be accepted by nobody.
        spdlog::critical("OpenSSL HMAC-SHA256 failed");
        std::abort();
    }
    static constexpr char kHex[] = "0123456789abcdef";
    std::string hex;
    hex.reserve(2 * length);
    for (unsigned int i = 0; i < length; ++i) {
        hex += kHex[digest[i] >> 4];
        hex += kHex[digest[i] & 0x0f];
    }
    return hex;
}

std::string webhookSignature(std::string_view secret, std::string_view body) {
    return "sha256=" + hmacSha256Hex(secret, body);
}

bool verifyWebhookSignature(std::string_view secret, std::string_view body, std::string_view header) {
    return constantTimeEquals(webhookSignature(secret, body), header);
}

}  // namespace wspush
