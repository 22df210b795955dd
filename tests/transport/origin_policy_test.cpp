#include "transport/origin_policy.h"

#include <gtest/gtest.h>

namespace wspush {
namespace {

TEST(OriginPolicy, WithoutAListEveryOriginMay) {
    OriginPolicy policy({});
    EXPECT_TRUE(policy.allows("https://anything.example"));
    EXPECT_TRUE(policy.allows("null"));
    EXPECT_TRUE(policy.allows(std::nullopt));
}

TEST(OriginPolicy, ARequestWithoutOriginIsNotABrowserAndMay) {
    OriginPolicy policy({"https://app.example.com"});
    EXPECT_TRUE(policy.allows(std::nullopt));
}

TEST(OriginPolicy, ExactOriginsMatchSchemeHostAndPort) {
    OriginPolicy policy({"https://app.example.com", "http://localhost:3000"});
    EXPECT_TRUE(policy.allows("https://app.example.com"));
    EXPECT_TRUE(policy.allows("http://localhost:3000"));
    EXPECT_FALSE(policy.allows("http://app.example.com"));        // another scheme
    EXPECT_FALSE(policy.allows("https://app.example.com:8443"));  // another port
    EXPECT_FALSE(policy.allows("http://localhost:3001"));
    EXPECT_FALSE(policy.allows("http://localhost"));
    EXPECT_FALSE(policy.allows("https://a.app.example.com"));  // not a wildcard
    EXPECT_FALSE(policy.allows("https://example.com"));
}

TEST(OriginPolicy, DefaultPortsAreImplied) {
    OriginPolicy policy({"https://app.example.com", "http://plain.example.com:80"});
    EXPECT_TRUE(policy.allows("https://app.example.com:443"));
    EXPECT_TRUE(policy.allows("http://plain.example.com"));
    EXPECT_FALSE(policy.allows("https://plain.example.com"));
}

TEST(OriginPolicy, SchemeAndHostCompareCaseInsensitively) {
    OriginPolicy policy({"HTTPS://App.Example.COM"});
    EXPECT_TRUE(policy.allows("https://app.example.com"));
    EXPECT_TRUE(policy.allows("Https://APP.example.com"));
}

TEST(OriginPolicy, AWildcardLabelMatchesEveryDepthBelowTheDomain) {
    OriginPolicy policy({"https://*.example.com"});
    EXPECT_TRUE(policy.allows("https://a.example.com"));
    EXPECT_TRUE(policy.allows("https://a.b.example.com"));
    EXPECT_TRUE(policy.allows("https://A.EXAMPLE.com:443"));
    EXPECT_FALSE(policy.allows("https://example.com"));  // the domain itself: list it too if wanted
    EXPECT_FALSE(policy.allows("https://evilexample.com"));
    EXPECT_FALSE(policy.allows("https://example.com.evil.com"));
    EXPECT_FALSE(policy.allows("https://a.example.com.evil.com"));
    EXPECT_FALSE(policy.allows("https://.example.com"));
    EXPECT_FALSE(policy.allows("http://a.example.com"));
    EXPECT_FALSE(policy.allows("https://a.example.com:8443"));
}

TEST(OriginPolicy, AWildcardWithAPortMatchesThatPortOnly) {
    OriginPolicy policy({"http://*.dev.example.com:8080"});
    EXPECT_TRUE(policy.allows("http://x.dev.example.com:8080"));
    EXPECT_FALSE(policy.allows("http://x.dev.example.com"));
}

TEST(OriginPolicy, MalformedAndOpaqueOriginsMatchNothing) {
    OriginPolicy policy({"https://app.example.com"});
    EXPECT_FALSE(policy.allows("null"));
    EXPECT_FALSE(policy.allows(""));
    EXPECT_FALSE(policy.allows("app.example.com"));
    EXPECT_FALSE(policy.allows("https://app.example.com/"));
    EXPECT_FALSE(policy.allows("https://app.example.com/path"));
    EXPECT_FALSE(policy.allows("https://user@app.example.com"));
    EXPECT_FALSE(policy.allows("https://app.example.com:"));
    EXPECT_FALSE(policy.allows("https://app.example.com:99999"));
    EXPECT_FALSE(policy.allows("https://*.example.com"));  // a wildcard in a header is no origin
    EXPECT_FALSE(policy.allows("https://app.example.com\r\nX: y"));
}

TEST(OriginPolicy, IPv6AndIPv4Hosts) {
    OriginPolicy policy({"http://[::1]:8080", "http://127.0.0.1:8080"});
    EXPECT_TRUE(policy.allows("http://[::1]:8080"));
    EXPECT_FALSE(policy.allows("http://[0:0:0:0:0:0:0:1]:8080"));  // compared as written, not as numbers
    EXPECT_TRUE(policy.allows("http://127.0.0.1:8080"));
    EXPECT_FALSE(policy.allows("http://127.0.0.2:8080"));
}

TEST(OriginPattern, TheConfigGrammar) {
    EXPECT_TRUE(parseOrigin("https://*.example.com", OriginSyntax::Pattern));
    EXPECT_FALSE(parseOrigin("https://*.com", OriginSyntax::Pattern));  // a whole top-level domain
    EXPECT_FALSE(parseOrigin("https://a.*.example.com", OriginSyntax::Pattern));
    EXPECT_FALSE(parseOrigin("https://*example.com", OriginSyntax::Pattern));
    EXPECT_FALSE(parseOrigin("*.example.com", OriginSyntax::Pattern));
    EXPECT_FALSE(parseOrigin("https://example.com/", OriginSyntax::Pattern));
    auto origin = parseOrigin("WSS://Push.Example.com");
    ASSERT_TRUE(origin);
    EXPECT_EQ(origin->scheme, "wss");
    EXPECT_EQ(origin->host, "push.example.com");
    EXPECT_EQ(origin->port, 443);
    EXPECT_FALSE(origin->anySubdomain);
    auto custom = parseOrigin("app://local");
    ASSERT_TRUE(custom);
    EXPECT_EQ(custom->port, 0);  // no default port to imply
}

}  // namespace
}  // namespace wspush
