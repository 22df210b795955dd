// Connection and subscription tokens through the real daemon: every refusal a client can meet at
// `connect` (bad signature, `alg: none`, algorithm confusion, expiry, not yet valid, wrong audience,
// a missing `exp`), the expiry of a connection and its refresh keeping the session and its QoS
// deliveries, channel permissions, and keys rotated by SIGHUP. The verifier's own cases:
// tests/auth/token_verifier_test.cpp.
#include <csignal>
#include <ctime>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "support/jwt_signer.h"
#include "support/test_helpers.h"

namespace wspush::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

const std::string kSecret = "integration-hmac-secret-0123456789abcdef";
const std::string kAudience = "wspush-tests";

std::int64_t now() {
    return static_cast<std::int64_t>(std::time(nullptr));
}

json claims(const std::string& user, std::int64_t lifetime = 60) {
    return json{{"sub", user}, {"exp", now() + lifetime}, {"aud", kAudience}};
}

// RSA keys are slow to make: one for the whole file.
const TestKey& rsaKey() {
    static const TestKey key = TestKey::rsa(2048);
    return key;
}

const TestKey& ecKey() {
    static const TestKey key = TestKey::ec("P-256");
    return key;
}

class Tokens : public ::testing::Test {
protected:
    Tokens()
        : pem(rsaKey().publicPem(), "rsa1.pem"),
          jwks(json{{"keys", json::array({ecKey().jwk("ec1")})}}.dump(), "jwks.json"),
          daemon(config()),
          api(daemon.apiPort()) {}

    json config() const {
        return json{{"client",
                     {{"allow_anonymous", false},
                      {"trust_client_user", false},
                      {"token",
                       {{"hmac_secrets", json::array({json{{"kid", ""}, {"secret", kSecret}}})},
                        {"public_keys", json::array({json{{"kid", "rsa1"}, {"pem_file", pem.path()}}})},
                        {"jwks_file", jwks.path()},
                        {"audience", kAudience},
                        {"leeway", 0}}}}},
                    {"namespaces",
                     {{"feed", {{"default_qos", 1}}},
                      {"team", {{"subscribe", "authenticated"}}},
                      {"dialog", {{"subscribe", "user_limited"}}},
                      {"vault", {{"subscribe", "token"}}},
                      {"news", {{"history_size", 100}, {"history_ttl", 300}}},
                      {"room", {{"presence", true}, {"client_presence", true}}}}}};
    }

    std::string hs256(const json& body) const { return signJwt("HS256", body, TestKey::hmac(kSecret)); }

    // The reply to a connect with `token`.
    std::optional<json> connectWith(WsTestClient& client, const std::string& token, json extra = json::object()) {
        extra["token"] = token;
        return client.connectWith(daemon.port(), std::move(extra));
    }

    // A connect that must be refused with `code` and then closed with `close`.
    void expectRefused(const std::string& token, int code, int close) {
        WsTestClient client;
        auto reply = connectWith(client, token);
        ASSERT_TRUE(reply) << client.lastError();
        EXPECT_EQ(reply->value("type", ""), "error") << reply->dump();
        EXPECT_EQ(reply->value("code", 0), code) << reply->dump();
        auto ending = client.waitClose();
        ASSERT_TRUE(ending);
        EXPECT_EQ(ending->closeCode, close);
    }

    TemporaryFile pem;
    TemporaryFile jwks;
    DaemonProcess daemon;
    HttpTestClient api;
};

TEST_F(Tokens, AValidHs256TokenConnectsAsItsSubjectAndTellsWhenItExpires) {
    WsTestClient client;
    std::int64_t exp = now() + 60;
    auto reply = connectWith(client, hs256(json{{"sub", "alice"}, {"exp", exp}, {"aud", kAudience}}));
    ASSERT_TRUE(reply && reply->value("type", "") == "connected") << (reply ? reply->dump() : client.lastError());
    EXPECT_EQ(reply->value("user", ""), "alice");
    EXPECT_EQ(reply->value("expires_at", std::int64_t{0}), exp);
}

TEST_F(Tokens, Rs256FromAPemFileAndEs256FromAJwksFileConnect) {
    WsTestClient rsa, ec;
    auto viaPem = connectWith(rsa, signJwt("RS256", claims("bob"), rsaKey(), "rsa1"));
    ASSERT_TRUE(viaPem && viaPem->value("type", "") == "connected") << (viaPem ? viaPem->dump() : rsa.lastError());
    EXPECT_EQ(viaPem->value("user", ""), "bob");
    auto viaJwks = connectWith(ec, signJwt("ES256", claims("carol"), ecKey(), "ec1"));
    ASSERT_TRUE(viaJwks && viaJwks->value("type", "") == "connected") << (viaJwks ? viaJwks->dump() : ec.lastError());
    EXPECT_EQ(viaJwks->value("user", ""), "carol");
}

TEST_F(Tokens, InvalidTokensAreRefusedWith101AndClose4501) {
    std::string good = hs256(claims("alice"));
    std::string flipped = good;
    flipped[flipped.size() - 3] = flipped[flipped.size() - 3] == 'A' ? 'B' : 'A';
    expectRefused(flipped, 101, 4501);  // bad signature
    expectRefused(signJwt("HS256", claims("alice"), TestKey::hmac("another-secret-0123456789abcdef-xyz")), 101, 4501);
    // alg none, with and without a signature part.
    std::string unsigned_ = signJwt(json{{"alg", "none"}}, claims("alice"), TestKey::hmac(kSecret));
    expectRefused(unsigned_.substr(0, unsigned_.rfind('.') + 1), 101, 4501);
    // Algorithm confusion: an HS256 token "signed" with the RSA public key as its secret.
    expectRefused(signJwt("HS256", claims("mallory"), TestKey::hmac(rsaKey().publicPem()), "rsa1"), 101, 4501);
    expectRefused(hs256(json{{"sub", "alice"}, {"exp", now() + 60}, {"aud", "someone-else"}}), 101, 4501);
    expectRefused(hs256(json{{"sub", "alice"}, {"aud", kAudience}}), 101, 4501);  // no exp
    expectRefused("not.a.token", 101, 4501);
}

TEST_F(Tokens, ExpiredOrNotYetValidTokensGet114AndTheReconnectableClose4006) {
    expectRefused(hs256(claims("alice", -5)), 114, 4006);
    expectRefused(hs256(json{{"sub", "alice"}, {"exp", now() + 120}, {"nbf", now() + 60}, {"aud", kAudience}}), 114,
                  4006);
}

TEST_F(Tokens, ATokenIsRequiredWhenAnonymousClientsAreNot) {
    WsTestClient client;
    auto reply = client.connectWith(daemon.port(), json::object());
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->value("code", 0), 101);
    auto ending = client.waitClose();
    ASSERT_TRUE(ending);
    EXPECT_EQ(ending->closeCode, 4501);
}

TEST_F(Tokens, TheTokensInfoIsTheConnectionsPresenceInfo) {
    WsTestClient client;
    json body = claims("alice");
    body["info"] = {{"name", "Alice"}};
    auto reply = connectWith(client, hs256(body), json{{"info", {{"name", "Mallory"}}}});
    ASSERT_TRUE(reply && reply->value("type", "") == "connected") << (reply ? reply->dump() : "");
    ASSERT_TRUE(client.subscribe("room:1"));
    auto presence = api.get("/api/presence?channel=room:1").json();
    ASSERT_EQ(presence["clients"].size(), 1u) << presence.dump();
    EXPECT_EQ(presence["clients"][0]["info"], (json{{"name", "Alice"}}));
}

TEST_F(Tokens, AnExpiredConnectionClosesWith4006AndResumesWithANewTokenLosingNothing) {
    WsTestClient client;
    auto reply = connectWith(client, hs256(claims("alice", 2)));
    ASSERT_TRUE(reply && reply->value("type", "") == "connected") << (reply ? reply->dump() : "");
    ASSERT_TRUE(client.subscribe("feed:alice"));
    auto ending = client.waitClose(4000ms);
    ASSERT_TRUE(ending);
    EXPECT_EQ(ending->closeCode, 4006);
    ASSERT_FALSE(ending->messages.empty());
    EXPECT_EQ(ending->messages.back(),
              (json{{"type", "disconnect"}, {"code", 4006}, {"reason", "token expired"}, {"reconnect", true}}));

    // Published while the client fetches a new token: QoS 1, kept by the session.
    ASSERT_EQ(api.postJson("/api/publish", {{"channel", "feed:alice"}, {"data", "while away"}}).status, 200u);
    WsTestClient again;
    auto resumed = connectWith(again, hs256(claims("alice")),
                               json{{"session", reply->value("session", "")}, {"resume", reply->value("resume", "")}});
    ASSERT_TRUE(resumed && resumed->value("type", "") == "connected") << (resumed ? resumed->dump() : "");
    EXPECT_TRUE(resumed->value("resumed", false));
    auto message = again.waitFor([](const json& m) { return m.value("type", "") == "message"; });
    ASSERT_TRUE(message);
    EXPECT_EQ((*message)["data"], "while away");
}

TEST_F(Tokens, ARefreshKeepsTheConnectionPastTheFirstExpiry) {
    WsTestClient client;
    auto reply = connectWith(client, hs256(claims("alice", 2)));
    ASSERT_TRUE(reply && reply->value("type", "") == "connected") << (reply ? reply->dump() : "");
    ASSERT_TRUE(client.subscribe("feed:alice"));
    std::int64_t exp = now() + 60;
    auto refreshed = client.request(
        json{{"type", "refresh"}, {"token", hs256(json{{"sub", "alice"}, {"exp", exp}, {"aud", kAudience}})}});
    ASSERT_TRUE(refreshed);
    EXPECT_EQ(refreshed->value("type", ""), "refreshed") << refreshed->dump();
    EXPECT_EQ(refreshed->value("expires_at", std::int64_t{0}), exp);
    EXPECT_TRUE(client.pumpFor(3s)) << "the connection outlived the first token";
    ASSERT_EQ(api.postJson("/api/publish", {{"channel", "feed:alice"}, {"data", "after"}}).status, 200u);
    auto message = client.waitFor([](const json& m) { return m.value("type", "") == "message"; });
    ASSERT_TRUE(message);
    EXPECT_EQ((*message)["data"], "after");
}

TEST_F(Tokens, ARefreshForAnotherUserIsTerminalAndAnExpiredOneIsRefusedWith114) {
    WsTestClient client;
    ASSERT_TRUE(connectWith(client, hs256(claims("alice"))));
    auto stale = client.request(json{{"type", "refresh"}, {"token", hs256(claims("alice", -10))}});
    ASSERT_TRUE(stale);
    EXPECT_EQ(stale->value("code", 0), 114) << stale->dump();
    client.request(json{{"type", "refresh"}, {"token", hs256(claims("bob"))}});
    auto ending = client.waitClose();
    ASSERT_TRUE(ending);
    EXPECT_EQ(ending->closeCode, 4501);
}

TEST_F(Tokens, TheTokensChannelsAreSubscribedAtConnectWhateverTheNamespacesPermission) {
    WsTestClient client;
    auto reply = connectWith(client, hs256(json{{"sub", "alice"},
                                                {"exp", now() + 60},
                                                {"aud", kAudience},
                                                {"channels", {"vault:alice-orders", "news:1", "news:1"}}}));
    ASSERT_TRUE(reply && reply->value("type", "") == "connected") << (reply ? reply->dump() : client.lastError());
    const json& subscriptions = (*reply)["subscriptions"];
    ASSERT_EQ(subscriptions.size(), 2u) << reply->dump();
    EXPECT_EQ(subscriptions[0]["channel"], "news:1");
    EXPECT_EQ(subscriptions[1]["channel"], "vault:alice-orders");
    EXPECT_TRUE(subscriptions[1]["epoch"].is_string());
    EXPECT_FALSE(subscriptions[1].contains("recovered"));

    ASSERT_EQ(api.postJson("/api/publish", {{"channel", "vault:alice-orders"}, {"data", "order 7 shipped"}}).status,
              200u);
    auto message = client.waitFor([](const json& m) { return m.value("type", "") == "message"; });
    ASSERT_TRUE(message);
    EXPECT_EQ((*message)["channel"], "vault:alice-orders");
    EXPECT_EQ((*message)["data"], "order 7 shipped");
    // The token opened that channel only: the namespace still wants a subscription token.
    auto other = client.subscribe("vault:bob-orders");
    ASSERT_TRUE(other);
    EXPECT_EQ(other->value("code", 0), 103) << other->dump();
    // Already subscribed by the token.
    auto again = client.subscribe("news:1");
    ASSERT_TRUE(again);
    EXPECT_EQ(again->value("code", 0), 105) << again->dump();
}

TEST_F(Tokens, ANewSessionRecoversTheTokensChannelsFromWhereConnectSaysTheClientGotTo) {
    json token = json{{"sub", "alice"}, {"exp", now() + 60}, {"aud", kAudience}, {"channels", {"news:2"}}};
    WsTestClient first;
    ASSERT_TRUE(connectWith(first, hs256(token)));
    ASSERT_EQ(api.postJson("/api/publish", {{"channel", "news:2"}, {"data", "seen"}}).status, 200u);
    auto seen = first.waitFor([](const json& m) { return m.value("type", "") == "message"; });
    ASSERT_TRUE(seen);
    first.close();
    for (const char* data : {"missed 1", "missed 2"})
        ASSERT_EQ(api.postJson("/api/publish", {{"channel", "news:2"}, {"data", data}}).status, 200u);

    // No resume: a new session, which starts past what the client already has.
    WsTestClient second;
    json since{{"news:2", {{"offset", (*seen)["offset"]}, {"epoch", (*seen)["epoch"]}}}};
    auto reply = connectWith(second, hs256(token), json{{"since", since}});
    ASSERT_TRUE(reply && reply->value("type", "") == "connected") << (reply ? reply->dump() : second.lastError());
    ASSERT_EQ((*reply)["subscriptions"].size(), 1u) << reply->dump();
    EXPECT_EQ((*reply)["subscriptions"][0]["recovered"], true) << reply->dump();
    std::vector<std::string> got;
    for (int i = 0; i < 2; ++i) {
        auto message = second.waitFor([](const json& m) { return m.value("type", "") == "message"; });
        ASSERT_TRUE(message);
        got.push_back((*message)["data"].get<std::string>());
    }
    EXPECT_EQ(got, (std::vector<std::string>{"missed 1", "missed 2"}));
}

TEST_F(Tokens, ATokenNamingAChannelTheServerCannotServeIsRefusedWith101) {
    auto withChannels = [&](json channels) {
        return hs256(json{{"sub", "alice"}, {"exp", now() + 60}, {"aud", kAudience}, {"channels", channels}});
    };
    expectRefused(withChannels({"nowhere:1"}), 101, 4501);  // no such namespace
    expectRefused(withChannels({"$user:bob"}), 101, 4501);  // someone's personal channel
    WsTestClient client;
    auto bad = connectWith(client, withChannels({"news:3"}), json{{"since", {{"news:3", {{"offset", -1}}}}}});
    ASSERT_TRUE(bad);
    EXPECT_EQ(bad->value("code", 0), 107) << bad->dump();
}

TEST_F(Tokens, ChannelPermissionsRefuseWith103) {
    WsTestClient alice, carol;
    ASSERT_TRUE(connectWith(alice, hs256(claims("alice"))));
    ASSERT_TRUE(connectWith(carol, hs256(claims("carol"))));
    auto codeOf = [](WsTestClient& client, json command) {
        auto reply = client.request(std::move(command));
        return reply ? reply->value("code", reply->value("type", "") == "subscribed" ? 0 : -1) : -2;
    };
    auto subscribe = [](const std::string& channel) { return json{{"type", "subscribe"}, {"channel", channel}}; };
    EXPECT_EQ(codeOf(alice, subscribe("team:core")), 0);
    EXPECT_EQ(codeOf(alice, subscribe("dialog:alice,bob")), 0);
    EXPECT_EQ(codeOf(carol, subscribe("dialog:alice,bob")), 103);
    EXPECT_EQ(codeOf(carol, subscribe("dialog:alice,carolyn")), 103);

    EXPECT_EQ(codeOf(alice, subscribe("vault:1")), 103);  // no subscription token
    json right = {{"sub", "alice"}, {"channel", "vault:1"}, {"exp", now() + 60}, {"aud", kAudience}};
    json command = subscribe("vault:1");
    command["token"] = hs256(right);
    EXPECT_EQ(codeOf(carol, command), 103);  // alice's token, carol's connection
    EXPECT_EQ(codeOf(alice, command), 0);
    json other = subscribe("vault:2");
    other["token"] = hs256(right);
    EXPECT_EQ(codeOf(alice, other), 103);  // a token for another channel
    json stale = right;
    stale["channel"] = "vault:3";
    stale["exp"] = now() - 10;
    json expired = subscribe("vault:3");
    expired["token"] = hs256(stale);
    EXPECT_EQ(codeOf(alice, expired), 114);
    // Refusals do not end the connection.
    EXPECT_TRUE(alice.isOpen());
    auto metrics = api.get("/metrics").body;
    EXPECT_NE(metrics.find("wspush_subscribes_refused_total 6"), std::string::npos) << metrics;
}

TEST(TokenRotation, SighupReloadsTokenKeysAndApiKeys) {
    auto configWith = [](const std::string& kid, const std::string& secret, const std::string& apiKey) {
        return json{{"client",
                     {{"allow_anonymous", false}, {"token", {{"hmac_secrets", {{{"kid", kid}, {"secret", secret}}}}}}}},
                    {"api", {{"keys", {{{"name", "backend"}, {"key", apiKey}, {"scopes", {"publish", "read"}}}}}}}};
    };
    const std::string oldSecret = "old-secret-0123456789abcdef0123456789";
    const std::string newSecret = "new-secret-0123456789abcdef0123456789";
    DaemonProcess daemon(configWith("k1", oldSecret, "old-api-key-0123456789"));
    HttpTestClient api(daemon.apiPort());
    auto connects = [&](const std::string& kid, const std::string& secret) {
        WsTestClient client;
        auto reply = client.connectWith(
            daemon.port(),
            json{{"token", signJwt("HS256", {{"sub", "alice"}, {"exp", now() + 60}}, TestKey::hmac(secret), kid)}});
        return reply && reply->value("type", "") == "connected";
    };
    auto infoWith = [&](const std::string& key) {
        return api.get("/api/info", {{"Authorization", "Bearer " + key}}).status;
    };
    EXPECT_TRUE(connects("k1", oldSecret));
    EXPECT_EQ(infoWith("old-api-key-0123456789"), 200u);

    // The operator rotates: a new config file, then SIGHUP.
    json rotated = daemon.config();
    rotated.merge_patch(configWith("k2", newSecret, "new-api-key-0123456789"));
    std::ofstream(daemon.configPath()) << rotated.dump();
    ASSERT_TRUE(daemon.terminate(SIGHUP));
    ASSERT_TRUE(eventually([&] { return infoWith("new-api-key-0123456789") == 200u; }, 5s)) << daemon.logText();
    EXPECT_EQ(infoWith("old-api-key-0123456789"), 401u);
    EXPECT_FALSE(connects("k1", oldSecret));
    EXPECT_TRUE(connects("k2", newSecret));

    // A broken file is refused and the keys in use stay.
    std::ofstream(daemon.configPath()) << "{ not json";
    ASSERT_TRUE(daemon.terminate(SIGHUP));
    ASSERT_TRUE(eventually([&] { return daemon.logText().find("reload refused") != std::string::npos; }, 5s));
    EXPECT_TRUE(connects("k2", newSecret));
}

TEST(ApiKeyScopes, AReadKeyCannotPublishThroughTheRealDaemon) {
    DaemonProcess daemon(json{{"api",
                               {{"keys",
                                 {{{"name", "dashboard"}, {"key", "dashboard-key-0123456"}, {"scopes", {"read"}}},
                                  {{"name", "orders"}, {"key", "orders-key-0123456789"}, {"scopes", {"publish"}}}}}}}});
    HttpTestClient api(daemon.apiPort());
    json publish = {{"channel", "news"}, {"data", 1}};
    auto refused = api.postJson("/api/publish", publish, {{"Authorization", "Bearer dashboard-key-0123456"}});
    EXPECT_EQ(refused.status, 403u);
    EXPECT_EQ(refused.json()["error"]["code"], 40302) << refused.body;
    EXPECT_EQ(api.postJson("/api/publish", publish, {{"Authorization", "Bearer orders-key-0123456789"}}).status, 200u);
    EXPECT_EQ(api.get("/api/users/alice/inbox", {{"Authorization", "Bearer dashboard-key-0123456"}}).status, 200u);
    EXPECT_EQ(api.get("/metrics", {{"Authorization", "Bearer orders-key-0123456789"}}).status, 403u);
}

}  // namespace
}  // namespace wspush::testing
