// X-Wspush-Signature: "sha256=" and the lowercase hex HMAC-SHA256 of the request body, keyed
// with the endpoint's secret. Receivers recompute it over the raw body and compare in constant time.
#pragma once

#include <string>
#include <string_view>

namespace wspush {

inline constexpr std::string_view kWebhookSignatureHeader = "X-Wspush-Signature";

// 64 lowercase hex digits.
std::string hmacSha256Hex(std::string_view key, std::string_view data);

// The header's value for `body`: "sha256=<hex>".
std::string webhookSignature(std::string_view secret, std::string_view body);

// True when `header` is the signature of `body` under `secret`; the comparison takes as long
// whatever prefix matches. For tests and receivers written in C++.
bool verifyWebhookSignature(std::string_view secret, std::string_view body, std::string_view header);

}  // namespace wspush
