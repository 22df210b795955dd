#include "auth/token_verifier.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "auth/openssl_handles.h"
#include "base/base64url.h"
#include "support/jwt_signer.h"

namespace wspush {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing::signJws;
using testing::signJwt;
using testing::TestKey;

constexpr std::int64_t kNow = 1'700'000'000;
const std::string kSecret = "the first shared secret, 32+ bytes";
const std::string kOtherSecret = "the second shared secret, 32+ bytes";

// Key pairs are made once for the whole binary: a 2048-bit RSA key takes a while, longer still
// under the sanitizers.
struct KeyPairs {
    TestKey rsa = TestKey::rsa();
    TestKey p256 = TestKey::ec("P-256");
    TestKey p384 = TestKey::ec("P-384");
};
const KeyPairs& keyPairs() {
    static const KeyPairs pairs;
    return pairs;
}

// {"sub":"alice","exp":now + 60} with `extra` merged in (a null member removes a claim).
json claims(const json& extra = json::object()) {
    json claims = {{"sub", "alice"}, {"exp", kNow + 60}};
    claims.merge_patch(extra);
    return claims;
}

TokenConfig withHmacSecrets(std::vector<TokenHmacSecret> secrets) {
    TokenConfig config;
    config.hmac_secrets = std::move(secrets);
    return config;
}

TokenConfig withPublicKeys(std::vector<TokenPublicKey> keys) {
    TokenConfig config;
    config.public_keys = std::move(keys);
    return config;
}

TokenConfig withKeys(std::vector<TokenHmacSecret> secrets, std::vector<TokenPublicKey> keys) {
    TokenConfig config;
    config.hmac_secrets = std::move(secrets);
    config.public_keys = std::move(keys);
    return config;
}

TokenConfig withJwksFile(std::string file) {
    TokenConfig config;
    config.jwks_file = std::move(file);
    return config;
}

// "valid", or the rejection and its reason: one EXPECT_EQ then shows what happened.
std::string outcome(const std::variant<VerifiedToken, TokenError>& result) {
    if (std::holds_alternative<VerifiedToken>(result)) return "valid";
    const TokenError& error = std::get<TokenError>(result);
    switch (error.rejection) {
        case TokenRejection::Invalid: return "invalid: " + error.reason;
        case TokenRejection::Expired: return "expired: " + error.reason;
        case TokenRejection::NotYetValid: return "not yet valid: " + error.reason;
    }
    return "unknown rejection: " + error.reason;
}

VerifiedToken verifiedOf(const std::variant<VerifiedToken, TokenError>& result) {
    if (const auto* verified = std::get_if<VerifiedToken>(&result)) return *verified;
    ADD_FAILURE() << outcome(result);
    return {};
}

std::vector<std::string> partsOf(const std::string& token) {
    std::vector<std::string> parts(1);
    for (char c : token) {
        if (c == '.') {
            parts.emplace_back();
        } else {
            parts.back() += c;
        }
    }
    return parts;
}

std::string joined(const std::vector<std::string>& parts) {
    std::string token = parts.at(0);
    for (std::size_t i = 1; i < parts.size(); ++i) token += "." + parts[i];
    return token;
}

// `token` with part `index` decoded, changed by `change` and encoded again.
template <class Change>
std::string withPartChanged(const std::string& token, std::size_t index, Change change) {
    std::vector<std::string> parts = partsOf(token);
    std::string bytes = decodeBase64Url(parts.at(index)).value();
    change(bytes);
    parts[index] = encodeBase64Url(bytes);
    return joined(parts);
}

class TokenVerifierTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string pattern = (fs::temp_directory_path() / "wspush-token-XXXXXX").string();
        ASSERT_NE(::mkdtemp(pattern.data()), nullptr) << std::strerror(errno);
        dir_ = pattern;
    }
    void TearDown() override { fs::remove_all(dir_); }

    // Writes `content` to a new file in the test's folder; its path.
    std::string writeFile(const std::string& content) {
        std::string path = (dir_ / ("file-" + std::to_string(++files_))).string();
        std::ofstream(path, std::ios::binary) << content;
        return path;
    }
    TokenPublicKey pemKey(const std::string& kid, const TestKey& key) { return {kid, writeFile(key.publicPem())}; }
    std::string jwksFile(const std::vector<json>& keys) { return writeFile(json{{"keys", keys}}.dump()); }

    static std::shared_ptr<const TokenVerifier> load(const TokenConfig& config) {
        auto loaded = TokenVerifier::load(config);
        if (const auto* error = std::get_if<ConfigError>(&loaded)) {
            ADD_FAILURE() << error->describe();
            return nullptr;
        }
        return std::get<std::shared_ptr<const TokenVerifier>>(loaded);
    }
    static ConfigError loadError(const TokenConfig& config) {
        auto loaded = TokenVerifier::load(config);
        if (const auto* error = std::get_if<ConfigError>(&loaded)) return *error;
        ADD_FAILURE() << "loaded";
        return {};
    }
    static std::shared_ptr<const TokenVerifier> verifierWithSecrets(std::vector<TokenHmacSecret> secrets) {
        return load(withHmacSecrets(std::move(secrets)));
    }

    // A verifier with the key pairs as PEM files under kids "rsa", "p256" and "p384".
    std::shared_ptr<const TokenVerifier> verifierWithPemKeys() {
        const KeyPairs& pairs = keyPairs();
        return load(withPublicKeys({pemKey("rsa", pairs.rsa), pemKey("p256", pairs.p256), pemKey("p384", pairs.p384)}));
    }

    fs::path dir_;
    int files_ = 0;
};

// --- Every algorithm, with the keys it takes ---

TEST_F(TokenVerifierTest, AnHs256TokenSignedWithTheSecretIsValid) {
    auto verifier = verifierWithSecrets({{"", kSecret}});
    ASSERT_TRUE(verifier);
    VerifiedToken token = verifiedOf(verifier->verify(signJwt("HS256", claims(), TestKey::hmac(kSecret)), kNow));
    EXPECT_EQ(token.subject, "alice");
    EXPECT_EQ(token.expiresAt, kNow + 60);
    EXPECT_EQ(token.info, "");
    EXPECT_TRUE(token.channels.empty());
    EXPECT_EQ(token.channel, "");
}

TEST_F(TokenVerifierTest, AnHs384TokenSignedWithTheSecretIsValid) {
    auto verifier = verifierWithSecrets({{"", kSecret}});
    ASSERT_TRUE(verifier);
    EXPECT_EQ(outcome(verifier->verify(signJwt("HS384", claims(), TestKey::hmac(kSecret)), kNow)), "valid");
}

TEST_F(TokenVerifierTest, AnHs512TokenSignedWithTheSecretIsValid) {
    auto verifier = verifierWithSecrets({{"", kSecret}});
    ASSERT_TRUE(verifier);
    EXPECT_EQ(outcome(verifier->verify(signJwt("HS512", claims(), TestKey::hmac(kSecret)), kNow)), "valid");
}

TEST_F(TokenVerifierTest, AnRs256TokenSignedWithTheRsaKeyIsValid) {
    auto verifier = verifierWithPemKeys();
    ASSERT_TRUE(verifier);
    VerifiedToken token = verifiedOf(verifier->verify(signJwt("RS256", claims(), keyPairs().rsa, "rsa"), kNow));
    EXPECT_EQ(token.subject, "alice");
}

TEST_F(TokenVerifierTest, AnRs384TokenSignedWithTheRsaKeyIsValid) {
    auto verifier = verifierWithPemKeys();
    ASSERT_TRUE(verifier);
    EXPECT_EQ(outcome(verifier->verify(signJwt("RS384", claims(), keyPairs().rsa, "rsa"), kNow)), "valid");
}

TEST_F(TokenVerifierTest, AnRs512TokenSignedWithTheRsaKeyIsValid) {
    auto verifier = verifierWithPemKeys();
    ASSERT_TRUE(verifier);
    EXPECT_EQ(outcome(verifier->verify(signJwt("RS512", claims(), keyPairs().rsa, "rsa"), kNow)), "valid");
}

TEST_F(TokenVerifierTest, AnEs256TokenSignedWithTheP256KeyIsValid) {
    auto verifier = verifierWithPemKeys();
    ASSERT_TRUE(verifier);
    std::string token = signJwt("ES256", claims(), keyPairs().p256, "p256");
    EXPECT_EQ(decodeBase64Url(partsOf(token)[2])->size(), 64u);  // r || s, not DER
    EXPECT_EQ(outcome(verifier->verify(token, kNow)), "valid");
}

TEST_F(TokenVerifierTest, AnEs384TokenSignedWithTheP384KeyIsValid) {
    auto verifier = verifierWithPemKeys();
    ASSERT_TRUE(verifier);
    std::string token = signJwt("ES384", claims(), keyPairs().p384, "p384");
    EXPECT_EQ(decodeBase64Url(partsOf(token)[2])->size(), 96u);
    EXPECT_EQ(outcome(verifier->verify(token, kNow)), "valid");
}

// --- Choosing keys by kid ---

TEST_F(TokenVerifierTest, ATokenIsCheckedOnlyWithTheKeysOfItsKid) {
    auto verifier = verifierWithSecrets({{"one", kSecret}, {"two", kOtherSecret}});
    ASSERT_TRUE(verifier);
    EXPECT_EQ(outcome(verifier->verify(signJwt("HS256", claims(), TestKey::hmac(kSecret), "one"), kNow)), "valid");
    EXPECT_EQ(outcome(verifier->verify(signJwt("HS256", claims(), TestKey::hmac(kSecret), "two"), kNow)),
              "invalid: bad signature");
}

TEST_F(TokenVerifierTest, AfterRotationTokensOfTheOldKidStayValid) {
    auto verifier = verifierWithSecrets({{"2024", kSecret}, {"2025", kOtherSecret}});
    ASSERT_TRUE(verifier);
    EXPECT_EQ(outcome(verifier->verify(signJwt("HS256", claims(), TestKey::hmac(kSecret), "2024"), kNow)), "valid");
    EXPECT_EQ(outcome(verifier->verify(signJwt("HS256", claims(), TestKey::hmac(kOtherSecret), "2025"), kNow)),
              "valid");
}

TEST_F(TokenVerifierTest, EveryKeySharingAKidIsTried) {
    auto verifier = verifierWithSecrets({{"main", kSecret}, {"main", kOtherSecret}});
    ASSERT_TRUE(verifier);
    EXPECT_EQ(outcome(verifier->verify(signJwt("HS256", claims(), TestKey::hmac(kSecret), "main"), kNow)), "valid");
    EXPECT_EQ(outcome(verifier->verify(signJwt("HS256", claims(), TestKey::hmac(kOtherSecret), "main"), kNow)),
              "valid");
    std::string stranger = "a third secret nobody configured!!";
    EXPECT_EQ(outcome(verifier->verify(signJwt("HS256", claims(), TestKey::hmac(stranger), "main"), kNow)),
              "invalid: bad signature");
}

TEST_F(TokenVerifierTest, AnUnknownKidIsRefused) {
    auto verifier = verifierWithSecrets({{"2024", kSecret}, {"", kSecret}});
    ASSERT_TRUE(verifier);
    EXPECT_EQ(outcome(verifier->verify(signJwt("HS256", claims(), TestKey::hmac(kSecret), "2023"), kNow)),
              "invalid: unknown kid");
}

TEST_F(TokenVerifierTest, ATokenWithoutKidIsCheckedOnlyWithKeysConfiguredWithoutKid) {
    auto verifier = verifierWithSecrets({{"", kSecret}, {"named", kOtherSecret}});
    ASSERT_TRUE(verifier);
    EXPECT_EQ(outcome(verifier->verify(signJwt("HS256", claims(), TestKey::hmac(kSecret)), kNow)), "valid");
    EXPECT_EQ(outcome(verifier->verify(signJwt("HS256", claims(), TestKey::hmac(kOtherSecret)), kNow)),
              "invalid: bad signature");

    auto onlyNamed = verifierWithSecrets({{"named", kOtherSecret}});
    ASSERT_TRUE(onlyNamed);
    EXPECT_EQ(outcome(onlyNamed->verify(signJwt("HS256", claims(), TestKey::hmac(kOtherSecret)), kNow)),
              "invalid: missing kid");
}

TEST_F(TokenVerifierTest, ATokenWithAKidIsNotCheckedWithKeysConfiguredWithoutKid) {
    auto verifier = verifierWithSecrets({{"", kSecret}});
    ASSERT_TRUE(verifier);
    EXPECT_EQ(outcome(verifier->verify(signJwt("HS256", claims(), TestKey::hmac(kSecret), "any"), kNow)),
              "invalid: unknown kid");
}

// --- Signatures ---

TEST_F(TokenVerifierTest, OneFlippedByteInTheSignatureIsABadSignature) {
    auto verifier = load(withKeys({{"hs", kSecret}}, {pemKey("rsa", keyPairs().rsa), pemKey("p256", keyPairs().p256)}));
    ASSERT_TRUE(verifier);
    auto flipFirstByte = [](std::string& bytes) { bytes[0] = static_cast<char>(bytes[0] ^ 0x01); };
    auto flipLastByte = [](std::string& bytes) { bytes.back() = static_cast<char>(bytes.back() ^ 0x80); };
    for (const std::string& token :
         {signJwt("HS256", claims(), TestKey::hmac(kSecret), "hs"), signJwt("RS256", claims(), keyPairs().rsa, "rsa"),
          signJwt("ES256", claims(), keyPairs().p256, "p256")}) {
        ASSERT_EQ(outcome(verifier->verify(token, kNow)), "valid");
        EXPECT_EQ(outcome(verifier->verify(withPartChanged(token, 2, flipFirstByte), kNow)), "invalid: bad signature")
            << token;
        EXPECT_EQ(outcome(verifier->verify(withPartChanged(token, 2, flipLastByte), kNow)), "invalid: bad signature")
            << token;
    }
}

TEST_F(TokenVerifierTest, OneChangedByteInThePayloadIsABadSignature) {
    auto verifier = load(withKeys({{"hs", kSecret}}, {pemKey("rsa", keyPairs().rsa), pemKey("p256", keyPairs().p256)}));
    ASSERT_TRUE(verifier);
    auto renameAlice = [](std::string& payload) { payload.replace(payload.find("alice"), 5, "alicf"); };
    for (const std::string& token :
         {signJwt("HS256", claims(), TestKey::hmac(kSecret), "hs"), signJwt("RS256", claims(), keyPairs().rsa, "rsa"),
          signJwt("ES256", claims(), keyPairs().p256, "p256")}) {
        EXPECT_EQ(outcome(verifier->verify(withPartChanged(token, 1, renameAlice), kNow)), "invalid: bad signature")
            << token;
    }
}

TEST_F(TokenVerifierTest, AnEcdsaSignatureOfTheWrongLengthIsABadSignature) {
    auto verifier = verifierWithPemKeys();
    ASSERT_TRUE(verifier);
    std::string token = signJwt("ES256", claims(), keyPairs().p256, "p256");
    EXPECT_EQ(outcome(verifier->verify(withPartChanged(token, 2, [](std::string& s) { s.pop_back(); }), kNow)),
              "invalid: bad signature");
    EXPECT_EQ(outcome(verifier->verify(withPartChanged(token, 2, [](std::string& s) { s += '\0'; }), kNow)),
              "invalid: bad signature");
    EXPECT_EQ(outcome(verifier->verify(withPartChanged(token, 2, [](std::string& s) { s.assign(64, '\0'); }), kNow)),
              "invalid: bad signature");
}

// --- Algorithms ---

TEST_F(TokenVerifierTest, AlgNoneWithAnEmptySignatureIsRefused) {
    auto verifier = verifierWithSecrets({{"", kSecret}});
    ASSERT_TRUE(verifier);
    std::string token = signJwt(json{{"alg", "none"}, {"typ", "JWT"}}, claims(), TestKey::hmac(kSecret));
    ASSERT_EQ(token.back(), '.');
    EXPECT_EQ(outcome(verifier->verify(token, kNow)), "invalid: unsupported algorithm");
}

TEST_F(TokenVerifierTest, AlgNoneWithASignatureIsRefused) {
    auto verifier = verifierWithSecrets({{"", kSecret}});
    ASSERT_TRUE(verifier);
    // A valid HS256 token whose header is swapped for one saying "none".
    std::string token = signJwt("HS256", claims(), TestKey::hmac(kSecret));
    std::vector<std::string> parts = partsOf(token);
    for (const char* none : {"none", "None", "NONE"}) {
        parts[0] = encodeBase64Url(json{{"alg", none}}.dump());
        EXPECT_EQ(outcome(verifier->verify(joined(parts), kNow)), "invalid: unsupported algorithm") << none;
    }
}

TEST_F(TokenVerifierTest, AlgorithmsOutsideTheListAreRefused) {
    auto verifier = load(withKeys({{"", kSecret}}, {pemKey("", keyPairs().rsa)}));
    ASSERT_TRUE(verifier);
    // Each header signed with the HMAC secret, as an HS256 token would be.
    for (const char* alg : {"PS256", "ES512", "EdDSA", "HS1", "hs256", "RS256 ", ""}) {
        std::string token = signJws("HS256", json{{"alg", alg}}.dump(), claims().dump(), TestKey::hmac(kSecret));
        EXPECT_EQ(outcome(verifier->verify(token, kNow)), "invalid: unsupported algorithm") << alg;
    }
}

TEST_F(TokenVerifierTest, AHeaderWithCritIsRefused) {
    auto verifier = verifierWithSecrets({{"", kSecret}});
    ASSERT_TRUE(verifier);
    json header = {{"alg", "HS256"}, {"crit", json::array({"exp"})}};
    EXPECT_EQ(outcome(verifier->verify(signJwt(header, claims(), TestKey::hmac(kSecret)), kNow)),
              "invalid: unsupported crit");
}

TEST_F(TokenVerifierTest, AnHs256TokenKeyedWithThePublicKeyPemIsRefused) {
    // Algorithm confusion: an HS256 token whose HMAC key is the published RSA public key. A
    // verifier that let a public key serve as an HMAC secret would accept it.
    const TestKey& rsa = keyPairs().rsa;
    auto verifier = load(withKeys({{"hs", kSecret}}, {pemKey("k1", rsa), pemKey("", rsa)}));
    ASSERT_TRUE(verifier);
    TestKey publicKeyAsSecret = TestKey::hmac(rsa.publicPem());
    EXPECT_EQ(outcome(verifier->verify(signJwt("HS256", claims(), publicKeyAsSecret, "k1"), kNow)),
              "invalid: unknown kid");
    EXPECT_EQ(outcome(verifier->verify(signJwt("HS256", claims(), publicKeyAsSecret), kNow)), "invalid: missing kid");
    // The same key as a JWK: never an HMAC secret either.
    auto fromJwks = load(withJwksFile(jwksFile({rsa.jwk("k1")})));
    ASSERT_TRUE(fromJwks);
    EXPECT_EQ(outcome(fromJwks->verify(signJwt("HS256", claims(), TestKey::hmac(rsa.jwk("k1").dump()), "k1"), kNow)),
              "invalid: unknown kid");
}

TEST_F(TokenVerifierTest, AnEs256TokenIsNotCheckedWithAP384Key) {
    auto verifier = load(withPublicKeys({pemKey("ec", keyPairs().p384)}));
    ASSERT_TRUE(verifier);
    // Signed with the P-384 key itself (a 96-byte signature under an ES256 header), and with a P-256 key.
    EXPECT_EQ(outcome(verifier->verify(signJwt("ES256", claims(), keyPairs().p384, "ec"), kNow)),
              "invalid: unknown kid");
    EXPECT_EQ(outcome(verifier->verify(signJwt("ES256", claims(), keyPairs().p256, "ec"), kNow)),
              "invalid: unknown kid");
    EXPECT_EQ(outcome(verifier->verify(signJwt("ES384", claims(), keyPairs().p384, "ec"), kNow)), "valid");
}

TEST_F(TokenVerifierTest, AnEs384TokenIsNotCheckedWithAP256Key) {
    auto verifier = load(withPublicKeys({pemKey("ec", keyPairs().p256)}));
    ASSERT_TRUE(verifier);
    EXPECT_EQ(outcome(verifier->verify(signJwt("ES384", claims(), keyPairs().p256, "ec"), kNow)),
              "invalid: unknown kid");
}

TEST_F(TokenVerifierTest, AnRsaTokenIsNotCheckedWithAnEcKeyNorTheOtherWayRound) {
    auto verifier = load(withPublicKeys({pemKey("rsa", keyPairs().rsa), pemKey("ec", keyPairs().p256)}));
    ASSERT_TRUE(verifier);
    EXPECT_EQ(outcome(verifier->verify(signJwt("RS256", claims(), keyPairs().p256, "ec"), kNow)),
              "invalid: unknown kid");
    EXPECT_EQ(outcome(verifier->verify(signJwt("ES256", claims(), keyPairs().rsa, "rsa"), kNow)),
              "invalid: unknown kid");
}

// --- Malformed tokens ---

class TokenVerifierMalformedTest : public TokenVerifierTest {
protected:
    void SetUp() override {
        TokenVerifierTest::SetUp();
        verifier_ = verifierWithSecrets({{"", kSecret}});
        ASSERT_TRUE(verifier_);
        valid_ = signJwt("HS256", claims(), TestKey::hmac(kSecret));
        ASSERT_EQ(outcome(verifier_->verify(valid_, kNow)), "valid");
    }
    std::string outcomeOf(const std::string& token) const { return outcome(verifier_->verify(token, kNow)); }

    std::shared_ptr<const TokenVerifier> verifier_;
    std::string valid_;
};

TEST_F(TokenVerifierMalformedTest, TwoPartsAreMalformed) {
    std::vector<std::string> parts = partsOf(valid_);
    EXPECT_EQ(outcomeOf(parts[0] + "." + parts[1]), "invalid: malformed token");
    EXPECT_EQ(outcomeOf(parts[0]), "invalid: malformed token");
    EXPECT_EQ(outcomeOf(""), "invalid: malformed token");
}

TEST_F(TokenVerifierMalformedTest, FourPartsAreMalformed) {
    EXPECT_EQ(outcomeOf(valid_ + "."), "invalid: malformed token");
    EXPECT_EQ(outcomeOf(valid_ + ".AAAA"), "invalid: malformed token");
    EXPECT_EQ(outcomeOf("...."), "invalid: malformed token");
}

TEST_F(TokenVerifierMalformedTest, CharactersOutsideBase64UrlAreMalformed) {
    std::vector<std::string> parts = partsOf(valid_);
    for (std::size_t part = 0; part < 3; ++part) {
        for (const char* bad : {"+", "/", " ", "*"}) {
            std::vector<std::string> changed = parts;
            changed[part].insert(4, bad);
            EXPECT_EQ(outcomeOf(joined(changed)), "invalid: malformed token") << part << " " << bad;
        }
    }
}

TEST_F(TokenVerifierMalformedTest, PaddingIsMalformed) {
    // A 32-byte HMAC is 43 characters of base64url; padded base64 would add one '='.
    std::vector<std::string> parts = partsOf(valid_);
    ASSERT_EQ(parts[2].size(), 43u);
    parts[2] += "=";
    EXPECT_EQ(outcomeOf(joined(parts)), "invalid: malformed token");
}

TEST_F(TokenVerifierMalformedTest, AHeaderThatIsNotJsonIsMalformed) {
    EXPECT_EQ(outcomeOf(signJws("HS256", "{\"alg\":\"HS256\"", claims().dump(), TestKey::hmac(kSecret))),
              "invalid: malformed token");
    EXPECT_EQ(outcomeOf(signJws("HS256", "HS256", claims().dump(), TestKey::hmac(kSecret))),
              "invalid: malformed token");
}

TEST_F(TokenVerifierMalformedTest, APayloadThatIsNotJsonIsMalformed) {
    std::string header = json{{"alg", "HS256"}}.dump();
    EXPECT_EQ(outcomeOf(signJws("HS256", header, "sub=alice", TestKey::hmac(kSecret))), "invalid: malformed token");
    EXPECT_EQ(outcomeOf(signJws("HS256", header, "", TestKey::hmac(kSecret))), "invalid: malformed token");
}

TEST_F(TokenVerifierMalformedTest, AHeaderOrPayloadThatIsNotAnObjectIsMalformed) {
    const TestKey secret = TestKey::hmac(kSecret);
    EXPECT_EQ(outcomeOf(signJws("HS256", R"(["HS256"])", claims().dump(), secret)), "invalid: malformed token");
    EXPECT_EQ(outcomeOf(signJws("HS256", R"("HS256")", claims().dump(), secret)), "invalid: malformed token");
    std::string header = json{{"alg", "HS256"}}.dump();
    EXPECT_EQ(outcomeOf(signJws("HS256", header, "[]", secret)), "invalid: malformed token");
    EXPECT_EQ(outcomeOf(signJws("HS256", header, "42", secret)), "invalid: malformed token");
}

TEST_F(TokenVerifierMalformedTest, AHeaderWithoutAStringAlgOrKidIsMalformed) {
    const TestKey secret = TestKey::hmac(kSecret);
    EXPECT_EQ(outcomeOf(signJws("HS256", R"({"typ":"JWT"})", claims().dump(), secret)), "invalid: malformed token");
    EXPECT_EQ(outcomeOf(signJws("HS256", R"({"alg":256})", claims().dump(), secret)), "invalid: malformed token");
    EXPECT_EQ(outcomeOf(signJws("HS256", R"({"alg":"HS256","kid":7})", claims().dump(), secret)),
              "invalid: malformed token");
}

TEST_F(TokenVerifierMalformedTest, ClaimsNestedTooDeepAreMalformed) {
    std::string deep = std::string(100, '[') + std::string(100, ']');
    std::string payload = R"({"sub":"alice","exp":)" + std::to_string(kNow + 60) + R"(,"x":)" + deep + "}";
    EXPECT_EQ(outcomeOf(signJws("HS256", R"({"alg":"HS256"})", payload, TestKey::hmac(kSecret))),
              "invalid: malformed token");
}

TEST_F(TokenVerifierMalformedTest, ATokenLongerThanTheLimitIsMalformedEvenWhenSigned) {
    std::string big = signJwt("HS256", claims({{"pad", std::string(kMaxTokenBytes, 'x')}}), TestKey::hmac(kSecret));
    ASSERT_GT(big.size(), kMaxTokenBytes);
    EXPECT_EQ(outcomeOf(big), "invalid: malformed token");
    std::string large =
        signJwt("HS256", claims({{"pad", std::string(kMaxTokenBytes / 2, 'x')}}), TestKey::hmac(kSecret));
    EXPECT_EQ(outcomeOf(large), "valid");
    EXPECT_EQ(outcomeOf(std::string(10 * kMaxTokenBytes, 'A')), "invalid: malformed token");
}

// --- Time ---

class TokenVerifierTimeTest : public TokenVerifierTest {
protected:
    // Leeway: 5 s (the default).
    std::string outcomeAt(std::int64_t now, const json& extra) const {
        auto verifier = verifierWithSecrets({{"", kSecret}});
        if (!verifier) return "not loaded";
        return outcome(verifier->verify(signJwt("HS256", claims(extra), TestKey::hmac(kSecret)), now));
    }
};

TEST_F(TokenVerifierTimeTest, ATokenIsValidUntilExpPlusTheLeewayAndExpiredASecondLater) {
    EXPECT_EQ(outcomeAt(kNow, {{"exp", kNow}}), "valid");
    EXPECT_EQ(outcomeAt(kNow + 5, {{"exp", kNow}}), "valid");
    EXPECT_EQ(outcomeAt(kNow + 6, {{"exp", kNow}}), "expired: token expired");
}

TEST_F(TokenVerifierTimeTest, ATokenIsValidFromNbfMinusTheLeeway) {
    EXPECT_EQ(outcomeAt(kNow - 5, {{"nbf", kNow}}), "valid");
    EXPECT_EQ(outcomeAt(kNow - 6, {{"nbf", kNow}}), "not yet valid: token not valid yet");
}

TEST_F(TokenVerifierTimeTest, ATokenIssuedFurtherInTheFutureThanTheLeewayIsNotValidYet) {
    EXPECT_EQ(outcomeAt(kNow, {{"iat", kNow + 5}}), "valid");
    EXPECT_EQ(outcomeAt(kNow, {{"iat", kNow + 6}}), "not yet valid: token issued in the future");
    EXPECT_EQ(outcomeAt(kNow, {{"iat", kNow - 3600}}), "valid");
}

TEST_F(TokenVerifierTimeTest, FractionalDatesAreNumericDatesToo) {
    EXPECT_EQ(outcomeAt(kNow + 5, {{"exp", kNow + 0.5}}), "valid");
    EXPECT_EQ(outcomeAt(kNow + 6, {{"exp", kNow + 0.5}}), "expired: token expired");
    EXPECT_EQ(outcomeAt(kNow, {{"nbf", kNow + 5.5}}), "not yet valid: token not valid yet");

    auto verifier = verifierWithSecrets({{"", kSecret}});
    ASSERT_TRUE(verifier);
    VerifiedToken token =
        verifiedOf(verifier->verify(signJwt("HS256", claims({{"exp", kNow + 60.9}}), TestKey::hmac(kSecret)), kNow));
    EXPECT_EQ(token.expiresAt, kNow + 60);  // whole seconds, rounded down
}

TEST_F(TokenVerifierTimeTest, DatesThatAreNotNumbersAreInvalid) {
    EXPECT_EQ(outcomeAt(kNow, {{"exp", std::to_string(kNow + 60)}}), "invalid: malformed exp");
    EXPECT_EQ(outcomeAt(kNow, {{"nbf", true}}), "invalid: malformed nbf");
    EXPECT_EQ(outcomeAt(kNow, {{"iat", json::array({kNow})}}), "invalid: malformed iat");
}

TEST_F(TokenVerifierTimeTest, ATokenWithoutExpIsInvalidWhileExpIsRequired) {
    EXPECT_EQ(outcomeAt(kNow, {{"exp", nullptr}}), "invalid: token without exp");
}

TEST_F(TokenVerifierTimeTest, ATokenWithoutExpIsValidWhenExpIsNotRequired) {
    TokenConfig config = withHmacSecrets({{"", kSecret}});
    config.require_exp = false;
    auto verifier = load(config);
    ASSERT_TRUE(verifier);
    VerifiedToken token =
        verifiedOf(verifier->verify(signJwt("HS256", claims({{"exp", nullptr}}), TestKey::hmac(kSecret)), kNow));
    EXPECT_EQ(token.expiresAt, std::nullopt);
    // An exp that is there still counts.
    EXPECT_EQ(outcome(verifier->verify(signJwt("HS256", claims({{"exp", kNow - 60}}), TestKey::hmac(kSecret)), kNow)),
              "expired: token expired");
}

TEST_F(TokenVerifierTimeTest, TheLeewayIsTheConfiguredOne) {
    TokenConfig config = withHmacSecrets({{"", kSecret}});
    config.leeway = Seconds(0);
    auto verifier = load(config);
    ASSERT_TRUE(verifier);
    std::string token = signJwt("HS256", claims({{"exp", kNow}}), TestKey::hmac(kSecret));
    EXPECT_EQ(outcome(verifier->verify(token, kNow)), "valid");
    EXPECT_EQ(outcome(verifier->verify(token, kNow + 1)), "expired: token expired");
}

TEST_F(TokenVerifierTimeTest, AFarFutureExpIsClampedNotOverflowed) {
    auto verifier = verifierWithSecrets({{"", kSecret}});
    ASSERT_TRUE(verifier);
    for (const json& exp : {json(1e300), json(std::numeric_limits<std::uint64_t>::max())}) {
        VerifiedToken token =
            verifiedOf(verifier->verify(signJwt("HS256", claims({{"exp", exp}}), TestKey::hmac(kSecret)), kNow));
        EXPECT_EQ(token.expiresAt, std::numeric_limits<std::int64_t>::max()) << exp;
    }
}

TEST_F(TokenVerifierTimeTest, RefusalsANewTokenWouldNotCureComeBeforeExpiry) {
    TokenConfig config = withHmacSecrets({{"", kSecret}});
    config.audience = "wspush";
    auto verifier = load(config);
    ASSERT_TRUE(verifier);
    json expiredElsewhere = claims({{"exp", kNow - 3600}, {"aud", "another service"}});
    EXPECT_EQ(outcome(verifier->verify(signJwt("HS256", expiredElsewhere, TestKey::hmac(kSecret)), kNow)),
              "invalid: wrong audience");
}

// --- Audience and issuer ---

class TokenVerifierClaimsTest : public TokenVerifierTest {
protected:
    std::string outcomeOf(const json& extra, const TokenConfig& rules) const {
        TokenConfig config = rules;
        config.hmac_secrets = {{"", kSecret}};
        auto verifier = load(config);
        if (!verifier) return "not loaded";
        return outcome(verifier->verify(signJwt("HS256", claims(extra), TestKey::hmac(kSecret)), kNow));
    }
    std::string outcomeOf(const json& extra) const { return outcomeOf(extra, TokenConfig{}); }
    VerifiedToken verifiedWith(const json& extra) const {
        auto verifier = verifierWithSecrets({{"", kSecret}});
        if (!verifier) return {};
        return verifiedOf(verifier->verify(signJwt("HS256", claims(extra), TestKey::hmac(kSecret)), kNow));
    }
};

TEST_F(TokenVerifierClaimsTest, TheAudienceMayBeAStringOrAnArrayNamingIt) {
    TokenConfig rules;
    rules.audience = "wspush";
    EXPECT_EQ(outcomeOf({{"aud", "wspush"}}, rules), "valid");
    EXPECT_EQ(outcomeOf({{"aud", json::array({"billing", "wspush"})}}, rules), "valid");
}

TEST_F(TokenVerifierClaimsTest, AWrongOrMissingAudienceIsRefused) {
    TokenConfig rules;
    rules.audience = "wspush";
    EXPECT_EQ(outcomeOf({{"aud", "billing"}}, rules), "invalid: wrong audience");
    EXPECT_EQ(outcomeOf({{"aud", json::array({"billing", "mail"})}}, rules), "invalid: wrong audience");
    EXPECT_EQ(outcomeOf({{"aud", json::array()}}, rules), "invalid: wrong audience");
    EXPECT_EQ(outcomeOf({{"aud", json::array({"wspush", 7})}}, rules), "invalid: wrong audience");
    EXPECT_EQ(outcomeOf({{"aud", "WSPUSH"}}, rules), "invalid: wrong audience");
    EXPECT_EQ(outcomeOf(json::object(), rules), "invalid: wrong audience");
}

TEST_F(TokenVerifierClaimsTest, AudIsIgnoredWhenNoAudienceIsConfigured) {
    EXPECT_EQ(outcomeOf({{"aud", "billing"}}), "valid");
    EXPECT_EQ(outcomeOf({{"aud", 42}}), "valid");
}

TEST_F(TokenVerifierClaimsTest, TheIssuerMustBeTheConfiguredOne) {
    TokenConfig rules;
    rules.issuer = "https://auth.example.com/";
    EXPECT_EQ(outcomeOf({{"iss", "https://auth.example.com/"}}, rules), "valid");
    EXPECT_EQ(outcomeOf({{"iss", "https://auth.example.com"}}, rules), "invalid: wrong issuer");
    EXPECT_EQ(outcomeOf({{"iss", json::array({"https://auth.example.com/"})}}, rules), "invalid: wrong issuer");
    EXPECT_EQ(outcomeOf(json::object(), rules), "invalid: wrong issuer");
    EXPECT_EQ(outcomeOf({{"iss", "anyone"}}), "valid");
}

// --- sub, info, channels ---

TEST_F(TokenVerifierClaimsTest, ASubThatIsNotAStringIsInvalid) {
    EXPECT_EQ(outcomeOf({{"sub", 42}}), "invalid: malformed sub");
    EXPECT_EQ(outcomeOf({{"sub", json::object()}}), "invalid: malformed sub");
    EXPECT_EQ(verifiedWith({{"sub", nullptr}}).subject, "");  // absent: an anonymous connection
}

TEST_F(TokenVerifierClaimsTest, InfoComesBackAsCompactJson) {
    VerifiedToken token =
        verifiedWith({{"info", {{"name", "Alice"}, {"tags", json::array({1, 2})}, {"admin", false}}}});
    EXPECT_EQ(token.info, R"({"admin":false,"name":"Alice","tags":[1,2]})");
    EXPECT_EQ(verifiedWith({{"info", json::object()}}).info, "{}");
    EXPECT_EQ(verifiedWith({{"info", {{"name", "Zoë"}}}}).info, "{\"name\":\"Zoë\"}");
}

TEST_F(TokenVerifierClaimsTest, InfoThatIsNotAnObjectIsInvalid) {
    EXPECT_EQ(outcomeOf({{"info", "Alice"}}), "invalid: malformed info");
    EXPECT_EQ(outcomeOf({{"info", json::array({1, 2})}}), "invalid: malformed info");
    EXPECT_EQ(outcomeOf({{"info", 1}}), "invalid: malformed info");
}

TEST_F(TokenVerifierClaimsTest, InfoOfMoreThan1024CompactBytesIsInvalid) {
    // {"a":"…"} is 8 bytes around the string.
    EXPECT_EQ(verifiedWith({{"info", {{"a", std::string(1016, 'x')}}}}).info.size(), 1024u);
    EXPECT_EQ(outcomeOf({{"info", {{"a", std::string(1017, 'x')}}}}), "invalid: info too large");
}

TEST_F(TokenVerifierClaimsTest, ChannelsAndChannelComeBack) {
    VerifiedToken token = verifiedWith({{"channels", json::array({"news", "chat:42"})}, {"channel", "private:7"}});
    EXPECT_EQ(token.channels, (std::vector<std::string>{"news", "chat:42"}));
    EXPECT_EQ(token.channel, "private:7");
    std::vector<std::string> most;
    for (int i = 0; i < 128; ++i) most.push_back(std::to_string(i));
    EXPECT_EQ(verifiedWith({{"channels", most}}).channels, most);
    EXPECT_EQ(verifiedWith({{"channels", json::array({std::string(255, 'c')})}}).channels.at(0).size(), 255u);
}

TEST_F(TokenVerifierClaimsTest, MalformedChannelsAreInvalid) {
    EXPECT_EQ(outcomeOf({{"channels", "news"}}), "invalid: malformed channels");
    EXPECT_EQ(outcomeOf({{"channels", json::array({"news", 1})}}), "invalid: malformed channels");
    EXPECT_EQ(outcomeOf({{"channels", json::array({""})}}), "invalid: malformed channels");
    EXPECT_EQ(outcomeOf({{"channels", json::array({std::string(256, 'c')})}}), "invalid: malformed channels");
    EXPECT_EQ(outcomeOf({{"channels", std::vector<std::string>(129, "news")}}), "invalid: malformed channels");
    EXPECT_EQ(outcomeOf({{"channel", 7}}), "invalid: malformed channel");
}

TEST_F(TokenVerifierClaimsTest, UnknownClaimsAreIgnored) {
    EXPECT_EQ(outcomeOf({{"role", "admin"}, {"jti", 7}, {"scope", {{"a", 1}}}}), "valid");
}

// --- JWK Sets ---

TEST_F(TokenVerifierTest, AJwkSetWithRsaAndEcKeysVerifiesTheirTokens) {
    const KeyPairs& pairs = keyPairs();
    auto verifier = load(withJwksFile(
        jwksFile({pairs.rsa.jwk("rsa"), pairs.p256.jwk("p256"), pairs.p384.jwk("p384"), pairs.p256.jwk("")})));
    ASSERT_TRUE(verifier);
    EXPECT_EQ(outcome(verifier->verify(signJwt("RS256", claims(), pairs.rsa, "rsa"), kNow)), "valid");
    EXPECT_EQ(outcome(verifier->verify(signJwt("RS512", claims(), pairs.rsa, "rsa"), kNow)), "valid");
    EXPECT_EQ(outcome(verifier->verify(signJwt("ES256", claims(), pairs.p256, "p256"), kNow)), "valid");
    EXPECT_EQ(outcome(verifier->verify(signJwt("ES384", claims(), pairs.p384, "p384"), kNow)), "valid");
    // The key without a kid serves tokens without one.
    EXPECT_EQ(outcome(verifier->verify(signJwt("ES256", claims(), pairs.p256), kNow)), "valid");
    EXPECT_EQ(outcome(verifier->verify(signJwt("ES256", claims(), pairs.p256, "p384"), kNow)), "invalid: unknown kid");
}

TEST_F(TokenVerifierTest, AJwkNamingAnAlgIsUsedForThatAlgOnly) {
    json key = keyPairs().rsa.jwk("rsa");
    key["alg"] = "RS256";
    auto verifier = load(withJwksFile(jwksFile({key})));
    ASSERT_TRUE(verifier);
    EXPECT_EQ(outcome(verifier->verify(signJwt("RS256", claims(), keyPairs().rsa, "rsa"), kNow)), "valid");
    EXPECT_EQ(outcome(verifier->verify(signJwt("RS384", claims(), keyPairs().rsa, "rsa"), kNow)),
              "invalid: unknown kid");
}

TEST_F(TokenVerifierTest, AJwkForEncryptionIsIgnored) {
    json encryption = keyPairs().rsa.jwk("rsa");
    encryption["use"] = "enc";
    json signing = keyPairs().p256.jwk("p256");
    signing["use"] = "sig";
    auto verifier = load(withJwksFile(jwksFile({encryption, signing})));
    ASSERT_TRUE(verifier);
    EXPECT_EQ(outcome(verifier->verify(signJwt("RS256", claims(), keyPairs().rsa, "rsa"), kNow)),
              "invalid: unknown kid");
    EXPECT_EQ(outcome(verifier->verify(signJwt("ES256", claims(), keyPairs().p256, "p256"), kNow)), "valid");
}

TEST_F(TokenVerifierTest, JwksKeysOfOtherTypesOrAlgorithmsAreIgnored) {
    json octet = TestKey::hmac(kSecret).jwk("oct");
    json okp = {{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", encodeBase64Url(std::string(32, '\x01'))}, {"kid", "okp"}};
    json pss = keyPairs().rsa.jwk("pss");
    pss["alg"] = "PS256";
    auto verifier = load(withJwksFile(jwksFile({octet, okp, pss})));
    ASSERT_TRUE(verifier);
    // A shared secret in a key set is never an HMAC key.
    EXPECT_EQ(outcome(verifier->verify(signJwt("HS256", claims(), TestKey::hmac(kSecret), "oct"), kNow)),
              "invalid: unknown kid");
    EXPECT_EQ(outcome(verifier->verify(signJwt("RS256", claims(), keyPairs().rsa, "pss"), kNow)),
              "invalid: unknown kid");
}

// --- load() ---

TEST_F(TokenVerifierTest, AMissingPemFileIsAConfigErrorAtItsPath) {
    std::string missing = (dir_ / "missing.pem").string();
    ConfigError error = loadError(withPublicKeys({pemKey("a", keyPairs().rsa), {"b", missing}}));
    EXPECT_EQ(error.path, "client.token.public_keys[1].pem_file");
    EXPECT_NE(error.message.find("cannot read " + missing), std::string::npos) << error.message;
}

TEST_F(TokenVerifierTest, APemFileWithoutAPublicKeyIsAConfigError) {
    std::string garbage = writeFile("-----BEGIN PUBLIC KEY-----\nnot base64 at all\n-----END PUBLIC KEY-----\n");
    ConfigError error = loadError(withPublicKeys({{"", garbage}}));
    EXPECT_EQ(error.path, "client.token.public_keys[0].pem_file");
    EXPECT_NE(error.message.find(garbage), std::string::npos) << error.message;
    EXPECT_NE(error.message.find("no PEM public key"), std::string::npos) << error.message;
    EXPECT_EQ(loadError(withPublicKeys({{"", writeFile("")}})).path, "client.token.public_keys[0].pem_file");
}

TEST_F(TokenVerifierTest, APrivateKeyPemIsNotTakenForAPublicKey) {
    BioHandle bio(BIO_new(BIO_s_mem()));
    ASSERT_EQ(PEM_write_bio_PrivateKey(bio.get(), keyPairs().p256.pkey(), nullptr, nullptr, 0, nullptr, nullptr), 1);
    char* data = nullptr;
    long length = BIO_get_mem_data(bio.get(), &data);
    std::string pem(data, static_cast<std::size_t>(length));
    ConfigError error = loadError(withPublicKeys({{"", writeFile(pem)}}));
    EXPECT_EQ(error.path, "client.token.public_keys[0].pem_file");
    EXPECT_NE(error.message.find("no PEM public key"), std::string::npos) << error.message;
}

TEST_F(TokenVerifierTest, AnRsaKeyOf1024BitsIsAConfigError) {
    ConfigError error = loadError(withPublicKeys({pemKey("", TestKey::rsa(1024))}));
    EXPECT_EQ(error.path, "client.token.public_keys[0].pem_file");
    EXPECT_NE(error.message.find("1024 bits"), std::string::npos) << error.message;
}

TEST_F(TokenVerifierTest, AnEcKeyOnAnotherCurveIsAConfigError) {
    TestKey p521 = TestKey::ec("P-521");
    ConfigError error = loadError(withPublicKeys({pemKey("", p521)}));
    EXPECT_EQ(error.path, "client.token.public_keys[0].pem_file");
    EXPECT_NE(error.message.find("unsupported EC curve"), std::string::npos) << error.message;
    error = loadError(withJwksFile(jwksFile({p521.jwk("big")})));
    EXPECT_EQ(error.path, "client.token.jwks_file");
    EXPECT_NE(error.message.find("unsupported EC curve"), std::string::npos) << error.message;
}

TEST_F(TokenVerifierTest, AJwksFileThatIsNotJsonIsAConfigError) {
    std::string file = writeFile("{\"keys\": [");
    ConfigError error = loadError(withJwksFile(file));
    EXPECT_EQ(error.path, "client.token.jwks_file");
    EXPECT_EQ(error.message, file + " is not JSON");
    EXPECT_EQ(loadError(withJwksFile(writeFile("[]"))).path, "client.token.jwks_file");
    EXPECT_EQ(loadError(withJwksFile(writeFile(R"({"keys":{}})"))).path, "client.token.jwks_file");
    std::string missing = (dir_ / "missing.json").string();
    EXPECT_EQ(loadError(withJwksFile(missing)).message.find("cannot read " + missing), 0u);
}

TEST_F(TokenVerifierTest, AJwksRsaKeyWithoutNIsAConfigErrorNamingTheKey) {
    json withoutN = keyPairs().rsa.jwk("second");
    withoutN.erase("n");
    std::string file = jwksFile({keyPairs().p256.jwk("first"), withoutN});
    ConfigError error = loadError(withJwksFile(file));
    EXPECT_EQ(error.path, "client.token.jwks_file");
    EXPECT_EQ(error.message, file + ": key 1 (kid \"second\"): missing n");
}

TEST_F(TokenVerifierTest, MalformedJwksKeysAreConfigErrors) {
    auto messageFor = [&](const json& key) { return loadError(withJwksFile(jwksFile({key}))).message; };
    json p256 = keyPairs().p256.jwk("ec");
    json shortX = p256;
    shortX["x"] = encodeBase64Url(std::string(31, '\x01'));
    EXPECT_NE(messageFor(shortX).find("must be 32 bytes"), std::string::npos);
    json offCurve = p256;
    std::string y = decodeBase64Url(p256["y"].get<std::string>()).value();
    y.back() = static_cast<char>(y.back() ^ 0x01);
    offCurve["y"] = encodeBase64Url(y);
    EXPECT_NE(messageFor(offCurve).find("key 0 (kid \"ec\")"), std::string::npos);
    json padded = p256;
    padded["x"] = padded["x"].get<std::string>() + "=";
    EXPECT_NE(messageFor(padded).find("x is not base64url"), std::string::npos);
    json wrongAlg = p256;
    wrongAlg["alg"] = "RS256";
    EXPECT_NE(messageFor(wrongAlg).find("does not fit"), std::string::npos);
    EXPECT_NE(messageFor(json{{"n", "AQAB"}}).find("missing kty"), std::string::npos);
    EXPECT_NE(messageFor(json{{"kty", "EC"}, {"crv", "P-192"}}).find("unsupported crv"), std::string::npos);
    EXPECT_NE(messageFor(json{{"kty", "RSA"}, {"kid", 7}}).find("kid is not a string"), std::string::npos);
    EXPECT_NE(messageFor(json("RSA")).find("not a JSON object"), std::string::npos);
}

TEST_F(TokenVerifierTest, AnX509CertificatePemIsAcceptedForItsPublicKey) {
    const KeyPairs& pairs = keyPairs();
    auto verifier = load(withPublicKeys(
        {{"rsa", writeFile(pairs.rsa.certificatePem())}, {"ec", writeFile(pairs.p384.certificatePem())}}));
    ASSERT_TRUE(verifier);
    EXPECT_EQ(outcome(verifier->verify(signJwt("RS256", claims(), pairs.rsa, "rsa"), kNow)), "valid");
    EXPECT_EQ(outcome(verifier->verify(signJwt("ES384", claims(), pairs.p384, "ec"), kNow)), "valid");
}

// --- Use from the event loops ---

TEST_F(TokenVerifierTest, OneVerifierServesSeveralThreadsAtOnce) {
    auto verifier = load(withKeys({{"hs", kSecret}}, {pemKey("rsa", keyPairs().rsa), pemKey("p256", keyPairs().p256)}));
    ASSERT_TRUE(verifier);
    const std::vector<std::string> valid = {signJwt("HS256", claims(), TestKey::hmac(kSecret), "hs"),
                                            signJwt("RS256", claims(), keyPairs().rsa, "rsa"),
                                            signJwt("ES256", claims(), keyPairs().p256, "p256")};
    std::vector<std::string> forged;
    for (const std::string& token : valid)
        forged.push_back(withPartChanged(token, 2, [](std::string& s) { s[1] = static_cast<char>(s[1] ^ 0x04); }));
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 50; ++i) {
                for (std::size_t k = 0; k < valid.size(); ++k) {
                    if (outcome(verifier->verify(valid[k], kNow)) != "valid") ++wrong;
                    if (outcome(verifier->verify(forged[k], kNow)) != "invalid: bad signature") ++wrong;
                }
            }
        });
    }
    for (std::thread& thread : threads) thread.join();
    EXPECT_EQ(wrong.load(), 0);
}

TEST_F(TokenVerifierTest, ARefusedTokenLeavesNoOpenSslErrorBehind) {
    // The event loop threads run TLS too, and SSL_get_error() reads the same per-thread queue.
    auto verifier = verifierWithPemKeys();
    ASSERT_TRUE(verifier);
    ERR_clear_error();
    std::string token = signJwt("ES256", claims(), keyPairs().p256, "p256");
    verifier->verify(withPartChanged(token, 2, [](std::string& s) { s.assign(64, '\xff'); }), kNow);
    verifier->verify(
        withPartChanged(signJwt("RS256", claims(), keyPairs().rsa, "rsa"), 2, [](std::string& s) { s.resize(10); }),
        kNow);
    EXPECT_EQ(ERR_peek_error(), 0u);
    loadError(withPublicKeys({{"", writeFile("garbage")}}));
    EXPECT_EQ(ERR_peek_error(), 0u);
}

}  // namespace
}  // namespace wspush
