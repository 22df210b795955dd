#include "webhooks/webhook_signature.h"

#include <gtest/gtest.h>

namespace wspush {
namespace {

TEST(WebhookSignatureTest, HmacSha256MatchesRfc4231) {
    // RFC 4231, test case 2.
    EXPECT_EQ(hmacSha256Hex("Jefe", "what do ya want for nothing?"),
              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    // Test case 1: a key of twenty 0x0b bytes.
    EXPECT_EQ(hmacSha256Hex(std::string(20, '\x0b'), "Hi There"),
              "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

TEST(WebhookSignatureTest, EmptyKeyAndBodyAreValidInput) {
    // HMAC-SHA256("", ""), as computed by `openssl dgst -sha256 -hmac ""` on empty input.
    EXPECT_EQ(hmacSha256Hex("", ""), "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST(WebhookSignatureTest, TheHeaderIsSha256AndLowercaseHex) {
    EXPECT_EQ(webhookSignature("Jefe", "what do ya want for nothing?"),
              "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    EXPECT_EQ(kWebhookSignatureHeader, "X-Wspush-Signature");
}

TEST(WebhookSignatureTest, VerifyAcceptsOnlyTheExactSignature) {
    std::string body = R"({"time_ms":1,"events":[]})";
    std::string header = webhookSignature("secret", body);
    EXPECT_TRUE(verifyWebhookSignature("secret", body, header));
    EXPECT_FALSE(verifyWebhookSignature("other", body, header));
    EXPECT_FALSE(verifyWebhookSignature("secret", body + " ", header));
    EXPECT_FALSE(verifyWebhookSignature("secret", body, header.substr(0, header.size() - 1)));
    EXPECT_FALSE(verifyWebhookSignature("secret", body, header.substr(7)));  // without "sha256="
    std::string upper = header;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_FALSE(verifyWebhookSignature("secret", body, upper));
}

}  // namespace
}  // namespace wspush
