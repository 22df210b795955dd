// Writes fuzz_token's keys (tests/fuzz/keys/: public halves as PEM files and a JWK Set) and its
// seed tokens (tests/fuzz/corpus/fuzz_token/), signed with fresh private halves that are then
// thrown away. Run it again only to change the keys: every seed is remade with them.
//   make_token_seeds <tests/fuzz directory>
#include <cstdio>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "support/jwt_signer.h"

namespace {

using nlohmann::json;
using wspush::testing::signJws;
using wspush::testing::signJwt;
using wspush::testing::TestKey;

void write(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
    if (!out) std::fprintf(stderr, "cannot write %s\n", path.c_str());
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: make_token_seeds <tests/fuzz directory>\n");
        return 2;
    }
    const std::string dir = argv[1];
    // As fuzz_token.cpp configures them.
    TestKey hmac = TestKey::hmac("fuzz-hmac-secret-0123456789abcdef0123");
    TestKey hmacWithKid = TestKey::hmac("another-hmac-secret-0123456789abcdef");
    TestKey rsa = TestKey::rsa();
    TestKey p256 = TestKey::ec("P-256");
    TestKey jwksRsa = TestKey::rsa();
    TestKey jwksP384 = TestKey::ec("P-384");
    write(dir + "/keys/rsa.pem", rsa.publicPem());
    write(dir + "/keys/p256.pem", p256.publicPem());
    write(dir + "/keys/jwks.json", json{{"keys", {jwksRsa.jwk("jwks-rsa"), jwksP384.jwk("jwks-p384")}}}.dump(2) + "\n");

    // fuzz_token checks at 1700000000; these expire an hour later.
    json claims = {{"sub", "alice"}, {"exp", 1700003600}, {"aud", "wspush"}};
    json rich = {{"sub", "bob"},
                 {"exp", 1700003600},
                 {"nbf", 1699999000},
                 {"iat", 1699999000},
                 {"aud", json::array({"other", "wspush"})},
                 {"info", {{"name", "Bob"}}},
                 {"channels", {"news", "chat:1"}},
                 {"channel", "chat:1"}};
    const std::string corpus = dir + "/corpus/fuzz_token/";
    write(corpus + "hs256", signJwt("HS256", claims, hmac));
    write(corpus + "hs384-rich", signJwt("HS384", rich, hmac));
    write(corpus + "hs512-kid", signJwt("HS512", claims, hmacWithKid, "hs-kid"));
    write(corpus + "rs256-pem", signJwt("RS256", claims, rsa, "rsa-pem"));
    write(corpus + "rs512-jwks", signJwt("RS512", rich, jwksRsa, "jwks-rsa"));
    write(corpus + "es256-pem", signJwt("ES256", claims, p256, "p256-pem"));
    write(corpus + "es384-jwks", signJwt("ES384", rich, jwksP384, "jwks-p384"));
    write(corpus + "expired", signJwt("HS256", json{{"sub", "alice"}, {"exp", 1600000000}, {"aud", "wspush"}}, hmac));
    write(corpus + "alg-none", signJwt("none", claims, hmac));
    write(corpus + "header-not-json", signJws("HS256", "{", claims.dump(), hmac));
    write(corpus + "jwk-rsa", jwksRsa.jwk("k").dump());
    write(corpus + "jwk-ec", jwksP384.jwk("k").dump());
    return 0;
}
