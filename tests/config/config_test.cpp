#include "wspush/config.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "base/bounded_json.h"

namespace wspush {
namespace {

// parseConfig takes a plain function pointer, so the fake environment lives in statics.
std::map<std::string, std::string>& fakeEnvironment() {
    static std::map<std::string, std::string> environment;
    return environment;
}

std::set<std::string>& queriedVariables() {
    static std::set<std::string> queried;
    return queried;
}

const char* fakeGetenv(const char* name) {
    queriedVariables().insert(name);
    auto it = fakeEnvironment().find(name);
    return it == fakeEnvironment().end() ? nullptr : it->second.c_str();
}

std::vector<std::string> keysOf(const Config& c) {
    std::vector<std::string> keys;
    for (const auto& key : c.api.keys) keys.push_back(key.key);
    return keys;
}

class ConfigTest : public ::testing::Test {
protected:
    void SetUp() override {
        fakeEnvironment().clear();
        queriedVariables().clear();
    }
    void TearDown() override { fakeEnvironment().clear(); }

    static void setEnv(const std::string& name, const std::string& value) { fakeEnvironment()[name] = value; }

    static Config parseOk(const std::string& text) {
        ConfigResult result = parseConfig(text, fakeGetenv);
        EXPECT_FALSE(result.error.has_value()) << (result.error ? result.error->describe() : "");
        EXPECT_TRUE(result.config.has_value());
        return result.config.value_or(Config{});
    }

    static ConfigError parseError(const std::string& text) {
        ConfigResult result = parseConfig(text, fakeGetenv);
        EXPECT_FALSE(result.config.has_value());
        EXPECT_TRUE(result.error.has_value());
        return result.error.value_or(ConfigError{"<no error>", "<no error>"});
    }

    static std::string errorPath(const std::string& text) { return parseError(text).path; }
};

// --- defaults and parsing -------------------------------------------------------------------

TEST_F(ConfigTest, EmptyTextGivesAllDefaults) {
    Config c = parseOk("");
    EXPECT_EQ(c.node_name, "");
    EXPECT_EQ(c.threads, 0u);
    EXPECT_EQ(c.listen.host, "0.0.0.0");
    EXPECT_EQ(c.listen.port, 8080);
    EXPECT_FALSE(c.api.listen.has_value());
    EXPECT_TRUE(c.api.keys.empty());
    EXPECT_EQ(c.api.max_body_size, 1024u * 1024u);
    EXPECT_DOUBLE_EQ(c.api.idempotency_window.count(), 600);
    EXPECT_EQ(c.api.idempotency_max_entries, 100000u);
    EXPECT_EQ(c.websocket.path, "/ws");
    EXPECT_EQ(c.websocket.max_message_size, 64u * 1024u);
    EXPECT_DOUBLE_EQ(c.websocket.ping_interval.count(), 25);
    EXPECT_DOUBLE_EQ(c.websocket.pong_timeout.count(), 10);
    EXPECT_DOUBLE_EQ(c.websocket.connect_timeout.count(), 10);
    EXPECT_DOUBLE_EQ(c.websocket.handshake_timeout.count(), 10);
    EXPECT_EQ(c.websocket.write_queue_max_bytes, 1024u * 1024u);
    EXPECT_EQ(c.websocket.write_queue_max_frames, 4096u);
    EXPECT_EQ(c.websocket.max_subscriptions, 128u);
    EXPECT_DOUBLE_EQ(c.websocket.write_delay.count(), 0.001);
    EXPECT_FALSE(c.websocket.compression.enabled);
    EXPECT_EQ(c.websocket.compression.level, 1);
    EXPECT_EQ(c.websocket.compression.window_bits, 10);
    EXPECT_EQ(c.websocket.compression.mem_level, 4);
    EXPECT_EQ(c.websocket.compression.threshold, 256u);
    EXPECT_FALSE(c.websocket.compression.context_takeover) << "shared compression by default";
    EXPECT_FALSE(c.client.allow_anonymous);
    EXPECT_FALSE(c.client.trust_client_user);
    EXPECT_FALSE(c.channel_defaults.client_publish);
    EXPECT_EQ(c.channel_defaults.history_size, 0u);
    EXPECT_DOUBLE_EQ(c.channel_defaults.history_ttl.count(), 0);
    EXPECT_FALSE(c.channel_defaults.presence);
    EXPECT_EQ(c.channel_defaults.default_qos, 0);
    EXPECT_TRUE(c.namespaces.empty());
    EXPECT_DOUBLE_EQ(c.shutdown.timeout.count(), 10);
    EXPECT_DOUBLE_EQ(c.shutdown.drain_rate, 1000);
    EXPECT_EQ(c.log.level, "info");
    EXPECT_EQ(c.log.format, "text");
}

TEST_F(ConfigTest, EmptyObjectAndNullValuesKeepDefaults) {
    Config c = parseOk(R"({"threads": null, "websocket": {"ping_interval": null}})");
    EXPECT_EQ(c.threads, 0u);
    EXPECT_DOUBLE_EQ(c.websocket.ping_interval.count(), 25);
    EXPECT_EQ(parseOk("{}").listen.port, 8080);
}

TEST_F(ConfigTest, EverySectionIsParsed) {
    Config c = parseOk(R"({
        "node_name": "node-7",
        "threads": 3,
        "listen": "127.0.0.1:9001",
        "api": {"listen": "10.0.0.1:9100", "keys": ["0123456789abcdef", "fedcba9876543210-x"], "max_body_size": 2048},
        "websocket": {
            "path": "/push",
            "max_message_size": 4096,
            "ping_interval": 1.5,
            "pong_timeout": 2,
            "connect_timeout": 3,
            "handshake_timeout": 4,
            "write_queue_max_bytes": 5000,
            "write_queue_max_frames": 6,
            "max_subscriptions": 7,
            "write_delay": 0,
            "compression": {"enabled": true, "level": 9, "window_bits": 15, "mem_level": 9, "threshold": 0,
                            "context_takeover": true}
        },
        "client": {"allow_anonymous": true, "trust_client_user": true},
        "channel_defaults": {"client_publish": true, "history_size": 10, "history_ttl": 60, "presence": true, "default_qos": 1},
        "namespaces": {
            "chat": {"client_publish": true},
            "feed": {"history_size": 100, "history_ttl": 0.5, "presence": true, "default_qos": 2}
        },
        "shutdown": {"timeout": 2.5, "drain_rate": 2000},
        "log": {"level": "debug", "format": "json"}
    })");
    EXPECT_EQ(c.node_name, "node-7");
    EXPECT_EQ(c.threads, 3u);
    EXPECT_EQ(c.listen.host, "127.0.0.1");
    EXPECT_EQ(c.listen.port, 9001);
    ASSERT_TRUE(c.api.listen.has_value());
    EXPECT_EQ(c.api.listen->host, "10.0.0.1");
    EXPECT_EQ(c.api.listen->port, 9100);
    EXPECT_EQ(keysOf(c), (std::vector<std::string>{"0123456789abcdef", "fedcba9876543210-x"}));
    EXPECT_EQ(c.api.max_body_size, 2048u);
    EXPECT_EQ(c.websocket.path, "/push");
    EXPECT_EQ(c.websocket.max_message_size, 4096u);
    EXPECT_DOUBLE_EQ(c.websocket.ping_interval.count(), 1.5);
    EXPECT_DOUBLE_EQ(c.websocket.pong_timeout.count(), 2);
    EXPECT_DOUBLE_EQ(c.websocket.connect_timeout.count(), 3);
    EXPECT_DOUBLE_EQ(c.websocket.handshake_timeout.count(), 4);
    EXPECT_EQ(c.websocket.write_queue_max_bytes, 5000u);
    EXPECT_EQ(c.websocket.write_queue_max_frames, 6u);
    EXPECT_EQ(c.websocket.max_subscriptions, 7u);
    EXPECT_DOUBLE_EQ(c.websocket.write_delay.count(), 0);
    EXPECT_TRUE(c.websocket.compression.enabled);
    EXPECT_EQ(c.websocket.compression.level, 9);
    EXPECT_EQ(c.websocket.compression.window_bits, 15);
    EXPECT_EQ(c.websocket.compression.mem_level, 9);
    EXPECT_TRUE(c.websocket.compression.context_takeover);
    EXPECT_EQ(c.websocket.compression.threshold, 0u);
    EXPECT_TRUE(c.client.allow_anonymous);
    EXPECT_TRUE(c.client.trust_client_user);
    EXPECT_TRUE(c.channel_defaults.client_publish);
    EXPECT_EQ(c.channel_defaults.history_size, 10u);
    EXPECT_DOUBLE_EQ(c.channel_defaults.history_ttl.count(), 60);
    EXPECT_TRUE(c.channel_defaults.presence);
    EXPECT_EQ(c.channel_defaults.default_qos, 1);
    ASSERT_EQ(c.namespaces.size(), 2u);
    EXPECT_TRUE(c.namespaces.at("chat").client_publish);
    EXPECT_EQ(c.namespaces.at("chat").history_size, 0u);
    const NamespaceConfig& feed = c.namespaces.at("feed");
    EXPECT_FALSE(feed.client_publish);
    EXPECT_EQ(feed.history_size, 100u);
    EXPECT_DOUBLE_EQ(feed.history_ttl.count(), 0.5);
    EXPECT_TRUE(feed.presence);
    EXPECT_EQ(feed.default_qos, 2);
    EXPECT_DOUBLE_EQ(c.shutdown.timeout.count(), 2.5);
    EXPECT_DOUBLE_EQ(c.shutdown.drain_rate, 2000);
    EXPECT_EQ(c.log.level, "debug");
    EXPECT_EQ(c.log.format, "json");
}

TEST_F(ConfigTest, PresenceOptionsAreReadAndChecked) {
    Config defaults = parseOk("{}");
    EXPECT_EQ(defaults.presence_ttl.count(), 60);
    EXPECT_FALSE(defaults.channel_defaults.client_presence);
    EXPECT_EQ(defaults.channel_defaults.presence_max_members, 1000u);
    Config c = parseOk(R"({"presence_ttl": 3.5, "namespaces": {"room": {"presence": true, "client_presence": true,
                           "presence_max_members": 50}}})");
    EXPECT_DOUBLE_EQ(c.presence_ttl.count(), 3.5);
    EXPECT_TRUE(c.namespaces.at("room").client_presence);
    EXPECT_EQ(c.namespaces.at("room").presence_max_members, 50u);
    EXPECT_EQ(errorPath(R"({"presence_ttl": 2})"), "presence_ttl");
    EXPECT_EQ(errorPath(R"({"channel_defaults": {"presence_max_members": 0}})"),
              "channel_defaults.presence_max_members");
    EXPECT_EQ(errorPath(R"({"namespaces": {"room": {"presence_max_members": 100001}}})"),
              "namespaces.room.presence_max_members");
    setEnv("WSPUSH_PRESENCE_TTL", "9");
    EXPECT_EQ(parseOk("{}").presence_ttl.count(), 9);
}

TEST_F(ConfigTest, InboxOptionsAreReadAndChecked) {
    Config defaults = parseOk("{}");
    EXPECT_EQ(defaults.inbox.max_messages, 1000u);
    EXPECT_EQ(defaults.inbox.max_bytes, 1024u * 1024u);
    EXPECT_EQ(defaults.inbox.ttl.count(), 7 * 24 * 3600);
    EXPECT_EQ(defaults.inbox.new_device_backlog, 0u);
    EXPECT_EQ(defaults.inbox.device_ttl.count(), 30 * 24 * 3600);
    Config c = parseOk(R"({"inbox": {"max_messages": 10, "max_bytes": 2048, "ttl": 60, "new_device_backlog": 5,
                           "device_ttl": 3600}})");
    EXPECT_EQ(c.inbox.max_messages, 10u);
    EXPECT_EQ(c.inbox.new_device_backlog, 5u);
    EXPECT_EQ(errorPath(R"({"inbox": {"max_messages": 100001}})"), "inbox.max_messages");
    EXPECT_EQ(errorPath(R"({"inbox": {"max_bytes": 10}})"), "inbox.max_bytes");
    EXPECT_EQ(errorPath(R"({"inbox": {"ttl": 0}})"), "inbox.ttl");
    EXPECT_EQ(errorPath(R"({"inbox": {"max_messages": 3, "new_device_backlog": 4}})"), "inbox.new_device_backlog");
    EXPECT_EQ(errorPath(R"({"inbox": {"device_ttl": 0}})"), "inbox.device_ttl");
    EXPECT_EQ(errorPath(R"({"inbox": {"size": 1}})"), "inbox.size");
}

TEST_F(ConfigTest, LimitsHaveProductionDefaults) {
    const LimitsConfig& limits = parseOk("").limits;
    EXPECT_EQ(limits.connections_per_node, 0u);
    EXPECT_EQ(limits.connections_per_user, 100u);
    EXPECT_EQ(limits.connections_per_ip, 0u);  // behind a proxy every client has the proxy's address
    EXPECT_DOUBLE_EQ(limits.connects_per_second_per_ip, 0);
    EXPECT_DOUBLE_EQ(limits.commands_per_second, 50);
    EXPECT_EQ(limits.commands_burst, 200u);
    EXPECT_DOUBLE_EQ(limits.history_reads_per_second, 10);
    EXPECT_DOUBLE_EQ(limits.presence_reads_per_second, 10);
    EXPECT_EQ(limits.max_header_bytes, 16384u);
    EXPECT_EQ(limits.max_url_bytes, 4096u);
    EXPECT_TRUE(parseOk("").websocket.allowed_origins.empty());
}

TEST_F(ConfigTest, LimitsAreReadAndChecked) {
    Config c = parseOk(R"({"limits": {"connections_per_node": 10000, "connections_per_user": 5,
        "connections_per_ip": 50, "connects_per_second_per_ip": 2.5, "commands_per_second": 0.5,
        "commands_burst": 3, "history_reads_per_second": 0, "presence_reads_per_second": 1,
        "max_header_bytes": 1024, "max_url_bytes": 256}})");
    EXPECT_EQ(c.limits.connections_per_node, 10000u);
    EXPECT_EQ(c.limits.connections_per_user, 5u);
    EXPECT_EQ(c.limits.connections_per_ip, 50u);
    EXPECT_DOUBLE_EQ(c.limits.connects_per_second_per_ip, 2.5);
    EXPECT_DOUBLE_EQ(c.limits.commands_per_second, 0.5);
    EXPECT_EQ(c.limits.commands_burst, 3u);
    EXPECT_DOUBLE_EQ(c.limits.history_reads_per_second, 0);
    EXPECT_DOUBLE_EQ(c.limits.presence_reads_per_second, 1);
    EXPECT_EQ(c.limits.max_header_bytes, 1024u);
    EXPECT_EQ(c.limits.max_url_bytes, 256u);

    EXPECT_EQ(errorPath(R"({"limits": {"commands_per_second": -1}})"), "limits.commands_per_second");
    EXPECT_EQ(errorPath(R"({"limits": {"commands_per_second": "50"}})"), "limits.commands_per_second");
    EXPECT_EQ(errorPath(R"({"limits": {"connections_per_ip": 1.5}})"), "limits.connections_per_ip");
    EXPECT_EQ(errorPath(R"({"limits": {"max_header_bytes": 1000}})"), "limits.max_header_bytes");
    EXPECT_EQ(errorPath(R"({"limits": {"max_url_bytes": 255}})"), "limits.max_url_bytes");
    EXPECT_EQ(errorPath(R"({"limits": {"max_url_bytes": 2000000}})"), "limits.max_url_bytes");
    EXPECT_EQ(parseOk(R"({"limits": {"max_header_bytes": 2048}})").limits.max_url_bytes, 4096u);
    EXPECT_EQ(errorPath(R"({"limits": {"per_ip": 1}})"), "limits.per_ip");
}

TEST_F(ConfigTest, LimitsComeFromTheEnvironment) {
    setEnv("WSPUSH_LIMITS_COMMANDS_PER_SECOND", "12.5");
    setEnv("WSPUSH_LIMITS_CONNECTIONS_PER_USER", "0");
    setEnv("WSPUSH_WEBSOCKET_ALLOWED_ORIGINS", R"(["https://*.example.com"])");
    Config c = parseOk("");
    EXPECT_DOUBLE_EQ(c.limits.commands_per_second, 12.5);
    EXPECT_EQ(c.limits.connections_per_user, 0u);
    EXPECT_EQ(c.websocket.allowed_origins, (std::vector<std::string>{"https://*.example.com"}));
}

TEST_F(ConfigTest, TlsIsOffByDefaultAndItsFilesGoTogether) {
    EXPECT_FALSE(parseOk("").tls.enabled());
    EXPECT_EQ(parseOk("").tls.min_version, "1.2");
    Config c =
        parseOk(R"({"tls": {"cert": "/etc/wspush/cert.pem", "key": "/etc/wspush/key.pem", "min_version": "1.3"}})");
    EXPECT_TRUE(c.tls.enabled());
    EXPECT_EQ(c.tls.cert, "/etc/wspush/cert.pem");
    EXPECT_EQ(c.tls.key, "/etc/wspush/key.pem");
    EXPECT_EQ(c.tls.min_version, "1.3");
    EXPECT_EQ(errorPath(R"({"tls": {"cert": "/etc/wspush/cert.pem"}})"), "tls.key");
    EXPECT_EQ(errorPath(R"({"tls": {"key": "/etc/wspush/key.pem"}})"), "tls.cert");
    EXPECT_EQ(errorPath(R"({"tls": {"cert": "c", "key": "k", "min_version": "1.1"}})"), "tls.min_version");
    EXPECT_EQ(errorPath(R"({"tls": {"certificate": "c"}})"), "tls.certificate");

    setEnv("WSPUSH_TLS_CERT", "/run/secrets/cert.pem");
    setEnv("WSPUSH_TLS_KEY", "/run/secrets/key.pem");
    Config fromEnvironment = parseOk("");
    EXPECT_EQ(fromEnvironment.tls.cert, "/run/secrets/cert.pem");
    EXPECT_EQ(fromEnvironment.tls.key, "/run/secrets/key.pem");
}

TEST_F(ConfigTest, TrustedProxiesAreNobodyByDefaultAndParsedAtLoad) {
    EXPECT_TRUE(parseOk("").proxy.trusted.empty());
    Config c = parseOk(R"({"proxy": {"trusted": ["127.0.0.1", "10.0.0.0/8", "fd00::/8", "::1"]}})");
    ASSERT_EQ(c.proxy.trusted.size(), 4u);
    EXPECT_FALSE(c.proxy.trusted[0].v6);
    EXPECT_EQ(c.proxy.trusted[0].prefix_length, 32u);
    EXPECT_EQ(c.proxy.trusted[1].prefix_length, 8u);
    EXPECT_TRUE(c.proxy.trusted[2].v6);
    EXPECT_EQ(c.proxy.trusted[3].prefix_length, 128u);

    ConfigError bad = parseError(R"({"proxy": {"trusted": ["127.0.0.1", "10.0.0.0/33"]}})");
    EXPECT_EQ(bad.path, "proxy.trusted[1]");
    EXPECT_NE(bad.message.find("\"10.0.0.0/33\""), std::string::npos) << bad.message;
    EXPECT_EQ(errorPath(R"({"proxy": {"trusted": "127.0.0.1"}})"), "proxy.trusted");
    EXPECT_EQ(errorPath(R"({"proxy": {"trusted": [7]}})"), "proxy.trusted[0]");
    EXPECT_EQ(errorPath(R"({"proxy": {"trusted": ["nginx"]}})"), "proxy.trusted[0]");
    EXPECT_EQ(errorPath(R"({"proxy": {"trust": []}})"), "proxy.trust");

    setEnv("WSPUSH_PROXY_TRUSTED", R"(["172.16.0.0/12"])");
    Config fromEnvironment = parseOk(R"({"proxy": {"trusted": ["127.0.0.1"]}})");
    ASSERT_EQ(fromEnvironment.proxy.trusted.size(), 1u);
    EXPECT_EQ(fromEnvironment.proxy.trusted[0].prefix_length, 12u);
    setEnv("WSPUSH_PROXY_TRUSTED", "127.0.0.1");  // JSON, like every list
    EXPECT_EQ(errorPath(""), "proxy.trusted");
    setEnv("WSPUSH_PROXY_TRUSTED", R"(["127.0.0.1/"])");
    EXPECT_EQ(errorPath(""), "proxy.trusted[0]");
}

TEST_F(ConfigTest, AllowedOriginsAreCheckedAtLoad) {
    Config c = parseOk(R"({"websocket": {"allowed_origins": ["https://app.example.com", "http://*.example.org:8080",
        "http://localhost:3000", "http://[::1]:8080"]}})");
    EXPECT_EQ(c.websocket.allowed_origins.size(), 4u);
    for (const char* bad : {"app.example.com", "https://app.example.com/", "https://*.com", "https://a.*.example.com",
                            "https://example.com:0", "https://", "*"}) {
        std::string text =
            std::string(R"({"websocket": {"allowed_origins": ["https://ok.example.com", ")") + bad + R"("]}})";
        EXPECT_EQ(errorPath(text), "websocket.allowed_origins[1]") << bad;
    }
    EXPECT_EQ(errorPath(R"({"websocket": {"allowed_origins": "https://app.example.com"}})"),
              "websocket.allowed_origins");
}

TEST_F(ConfigTest, JoinLeaveNeedsPresenceAndAUserStatusSwitchExists) {
    Config defaults = parseOk("{}");
    EXPECT_FALSE(defaults.channel_defaults.join_leave);
    EXPECT_EQ(defaults.channel_defaults.join_leave_max_members, 100u);
    EXPECT_FALSE(defaults.client.user_status);
    Config c = parseOk(R"({"client": {"user_status": true}, "namespaces": {"room": {"presence": true,
                           "join_leave": true, "join_leave_max_members": 20}}})");
    EXPECT_TRUE(c.client.user_status);
    EXPECT_TRUE(c.namespaces.at("room").join_leave);
    EXPECT_EQ(c.namespaces.at("room").join_leave_max_members, 20u);
    EXPECT_EQ(errorPath(R"({"namespaces": {"room": {"join_leave": true}}})"), "namespaces.room.join_leave");
    EXPECT_EQ(errorPath(R"({"channel_defaults": {"presence": true, "join_leave_max_members": 0}})"),
              "channel_defaults.join_leave_max_members");
    setEnv("WSPUSH_CLIENT_USER_STATUS", "true");
    EXPECT_TRUE(parseOk("{}").client.user_status);
}

TEST_F(ConfigTest, EmptyApiListenMeansSharedListener) {
    EXPECT_FALSE(parseOk(R"({"api": {"listen": ""}})").api.listen.has_value());
}

TEST_F(ConfigTest, CommentsInTheFileAreAllowed) {
    Config c = parseOk("{\n  // the loop count\n  \"threads\": 2 /* two */\n}");
    EXPECT_EQ(c.threads, 2u);
}

TEST_F(ConfigTest, UnderscoreKeysAreIgnoredAtEveryLevel) {
    Config c = parseOk(R"({
        "_comment": "top",
        "websocket": {"_why": 1, "compression": {"_note": [1, 2]}},
        "namespaces": {"chat": {"_comment": "x", "client_publish": true}}
    })");
    EXPECT_TRUE(c.namespaces.at("chat").client_publish);
}

// --- unknown keys -----------------------------------------------------------------------------

TEST_F(ConfigTest, UnderscoreIsNotSpecialForNamespaceNames) {
    Config c = parseOk(R"({"namespaces": {"_private": {"client_publish": true}}})");
    ASSERT_EQ(c.namespaces.count("_private"), 1u);
    EXPECT_TRUE(c.namespaces.at("_private").client_publish);
}

TEST_F(ConfigTest, ZeroShutdownTimeoutIsAllowed) {
    EXPECT_DOUBLE_EQ(parseOk(R"({"shutdown": {"timeout": 0}})").shutdown.timeout.count(), 0);
    EXPECT_DOUBLE_EQ(parseOk(R"({"shutdown": {"drain_rate": 0}})").shutdown.drain_rate, 0);
}

TEST_F(ConfigTest, UnknownTopLevelKeyIsRejectedWithItsPath) {
    ConfigError error = parseError(R"({"thread": 2})");
    EXPECT_EQ(error.path, "thread");
    EXPECT_EQ(error.message, "unknown key");
    EXPECT_EQ(error.describe(), "thread: unknown key");
}

TEST_F(ConfigTest, UnknownNestedKeyIsRejectedWithItsFullPath) {
    EXPECT_EQ(errorPath(R"({"websocket": {"compression": {"foo": 1}}})"), "websocket.compression.foo");
    EXPECT_EQ(errorPath(R"({"api": {"key": []}})"), "api.key");
    EXPECT_EQ(errorPath(R"({"log": {"file": "x"}})"), "log.file");
    EXPECT_EQ(errorPath(R"({"client": {"anonymous": true}})"), "client.anonymous");
    EXPECT_EQ(errorPath(R"({"channel_defaults": {"qos": 1}})"), "channel_defaults.qos");
}

TEST_F(ConfigTest, UnknownKeyInsideANamespaceIsRejectedWithItsPath) {
    EXPECT_EQ(errorPath(R"({"namespaces": {"chat": {"foo": true}}})"), "namespaces.chat.foo");
}

// --- wrong types ------------------------------------------------------------------------------

TEST_F(ConfigTest, StringWhereANumberIsExpected) {
    EXPECT_EQ(errorPath(R"({"threads": "4"})"), "threads");
    EXPECT_EQ(errorPath(R"({"websocket": {"ping_interval": "25"}})"), "websocket.ping_interval");
    EXPECT_EQ(errorPath(R"({"websocket": {"compression": {"level": "1"}}})"), "websocket.compression.level");
}

TEST_F(ConfigTest, NegativeWhereAnUnsignedIsExpected) {
    EXPECT_EQ(errorPath(R"({"threads": -1})"), "threads");
    EXPECT_EQ(errorPath(R"({"websocket": {"max_message_size": -1}})"), "websocket.max_message_size");
    EXPECT_EQ(errorPath(R"({"shutdown": {"timeout": -1}})"), "shutdown.timeout");
    EXPECT_EQ(errorPath(R"({"shutdown": {"drain_rate": -1}})"), "shutdown.drain_rate");
    EXPECT_EQ(errorPath(R"({"shutdown": {"timeout": 1, "rate": 1}})"), "shutdown.rate");
    // The key of before the drain rate is refused with where it went.
    EXPECT_EQ(errorPath(R"({"shutdown_timeout": 10})"), "shutdown_timeout");
}

TEST_F(ConfigTest, FloatWhereAnIntegerIsExpected) {
    EXPECT_EQ(errorPath(R"({"threads": 2.5})"), "threads");
    EXPECT_EQ(errorPath(R"({"websocket": {"compression": {"level": 1.5}}})"), "websocket.compression.level");
    EXPECT_EQ(errorPath(R"({"api": {"max_body_size": 1.0}})"), "api.max_body_size");
}

TEST_F(ConfigTest, IntegerTooLargeForItsFieldIsRejected) {
    // 2^32 + 1 must not wrap around to a valid small value.
    EXPECT_EQ(errorPath(R"({"threads": 4294967297})"), "threads");
    EXPECT_EQ(errorPath(R"({"websocket": {"compression": {"level": 4294967297}}})"), "websocket.compression.level");
    EXPECT_EQ(errorPath(R"({"channel_defaults": {"default_qos": -4294967295}})"), "channel_defaults.default_qos");
}

TEST_F(ConfigTest, OtherWrongTypesNameTheirPath) {
    EXPECT_EQ(errorPath(R"({"client": {"allow_anonymous": "yes"}})"), "client.allow_anonymous");
    EXPECT_EQ(errorPath(R"({"node_name": 5})"), "node_name");
    EXPECT_EQ(errorPath(R"({"listen": 8080})"), "listen");
    EXPECT_EQ(errorPath(R"({"api": {"keys": "0123456789abcdef"}})"), "api.keys");
    EXPECT_EQ(errorPath(R"({"api": {"keys": ["0123456789abcdef", 5]}})"), "api.keys[1]");
    EXPECT_EQ(errorPath(R"({"websocket": []})"), "websocket");
    EXPECT_EQ(errorPath(R"({"namespaces": []})"), "namespaces");
    EXPECT_EQ(errorPath(R"({"namespaces": {"chat": true}})"), "namespaces.chat");
}

// --- range checks -----------------------------------------------------------------------------

TEST_F(ConfigTest, ThreadsAtMost64) {
    EXPECT_EQ(parseOk(R"({"threads": 64})").threads, 64u);
    EXPECT_EQ(errorPath(R"({"threads": 65})"), "threads");
}

TEST_F(ConfigTest, CompressionRanges) {
    EXPECT_EQ(errorPath(R"({"websocket": {"compression": {"window_bits": 8}}})"), "websocket.compression.window_bits");
    EXPECT_EQ(errorPath(R"({"websocket": {"compression": {"window_bits": 16}}})"), "websocket.compression.window_bits");
    EXPECT_EQ(parseOk(R"({"websocket": {"compression": {"window_bits": 9}}})").websocket.compression.window_bits, 9);
    EXPECT_EQ(errorPath(R"({"websocket": {"compression": {"level": 10}}})"), "websocket.compression.level");
    EXPECT_EQ(errorPath(R"({"websocket": {"compression": {"level": -1}}})"), "websocket.compression.level");
    EXPECT_EQ(parseOk(R"({"websocket": {"compression": {"level": 0}}})").websocket.compression.level, 0);
    EXPECT_EQ(errorPath(R"({"websocket": {"compression": {"mem_level": 0}}})"), "websocket.compression.mem_level");
    EXPECT_EQ(errorPath(R"({"websocket": {"compression": {"mem_level": 10}}})"), "websocket.compression.mem_level");
}

TEST_F(ConfigTest, DefaultQosIsZeroOneOrTwo) {
    EXPECT_EQ(errorPath(R"({"channel_defaults": {"default_qos": 3}})"), "channel_defaults.default_qos");
    EXPECT_EQ(errorPath(R"({"namespaces": {"chat": {"default_qos": 3}}})"), "namespaces.chat.default_qos");
    EXPECT_EQ(errorPath(R"({"namespaces": {"chat": {"default_qos": -1}}})"), "namespaces.chat.default_qos");
}

TEST_F(ConfigTest, WebSocketRanges) {
    EXPECT_EQ(errorPath(R"({"websocket": {"ping_interval": 0}})"), "websocket.ping_interval");
    EXPECT_EQ(errorPath(R"({"websocket": {"pong_timeout": 0}})"), "websocket.pong_timeout");
    EXPECT_EQ(errorPath(R"({"websocket": {"connect_timeout": 0}})"), "websocket.connect_timeout");
    EXPECT_EQ(errorPath(R"({"websocket": {"handshake_timeout": 0}})"), "websocket.handshake_timeout");
    EXPECT_EQ(errorPath(R"({"websocket": {"path": "ws"}})"), "websocket.path");
    EXPECT_EQ(errorPath(R"({"websocket": {"path": ""}})"), "websocket.path");
    EXPECT_EQ(errorPath(R"({"websocket": {"max_message_size": 127}})"), "websocket.max_message_size");
    EXPECT_EQ(errorPath(R"({"websocket": {"write_queue_max_frames": 0}})"), "websocket.write_queue_max_frames");
    EXPECT_EQ(errorPath(R"({"websocket": {"write_queue_max_bytes": 1023}})"), "websocket.write_queue_max_bytes");
    EXPECT_EQ(errorPath(R"({"websocket": {"max_subscriptions": 0}})"), "websocket.max_subscriptions");
    EXPECT_EQ(errorPath(R"({"websocket": {"write_delay": 1.5}})"), "websocket.write_delay");
    EXPECT_EQ(errorPath(R"({"websocket": {"write_delay": -0.1}})"), "websocket.write_delay");
    EXPECT_DOUBLE_EQ(parseOk(R"({"websocket": {"ping_interval": 0.25}})").websocket.ping_interval.count(), 0.25);
}

TEST_F(ConfigTest, ApiKeysMustBeAtLeast16Characters) {
    EXPECT_EQ(errorPath(R"({"api": {"keys": ["0123456789abcdef", "short-key-15chr"]}})"), "api.keys[1]");
    EXPECT_EQ(parseOk(R"({"api": {"keys": ["0123456789abcdef"]}})").api.keys.size(), 1u);
}

TEST_F(ConfigTest, IdempotencySettingsAreReadAndChecked) {
    Config c = parseOk(R"({"api": {"idempotency_window": 30.5, "idempotency_max_entries": 10}})");
    EXPECT_DOUBLE_EQ(c.api.idempotency_window.count(), 30.5);
    EXPECT_EQ(c.api.idempotency_max_entries, 10u);
    EXPECT_EQ(parseOk(R"({"api": {"idempotency_max_entries": 1}})").api.idempotency_max_entries, 1u);
    EXPECT_EQ(errorPath(R"({"api": {"idempotency_window": 0}})"), "api.idempotency_window");
    EXPECT_EQ(errorPath(R"({"api": {"idempotency_window": -1}})"), "api.idempotency_window");
    EXPECT_EQ(errorPath(R"({"api": {"idempotency_window": "600"}})"), "api.idempotency_window");
    EXPECT_EQ(errorPath(R"({"api": {"idempotency_max_entries": 0}})"), "api.idempotency_max_entries");
    EXPECT_EQ(errorPath(R"({"api": {"idempotency_max_entries": 1.5}})"), "api.idempotency_max_entries");
    EXPECT_EQ(errorPath(R"({"api": {"idempotency_max_entries": -1}})"), "api.idempotency_max_entries");
}

TEST_F(ConfigTest, EnvironmentOverridesTheIdempotencySettings) {
    setEnv("WSPUSH_API_IDEMPOTENCY_WINDOW", "60");
    setEnv("WSPUSH_API_IDEMPOTENCY_MAX_ENTRIES", "500");
    Config c = parseOk(R"({"api": {"idempotency_window": 5, "idempotency_max_entries": 7}})");
    EXPECT_DOUBLE_EQ(c.api.idempotency_window.count(), 60);
    EXPECT_EQ(c.api.idempotency_max_entries, 500u);
    setEnv("WSPUSH_API_IDEMPOTENCY_MAX_ENTRIES", "0");
    EXPECT_EQ(errorPath(""), "api.idempotency_max_entries");
}

TEST_F(ConfigTest, LogLevelAndFormatAreChecked) {
    EXPECT_EQ(errorPath(R"({"log": {"level": "verbose"}})"), "log.level");
    EXPECT_EQ(errorPath(R"({"log": {"format": "xml"}})"), "log.format");
    for (const char* level : {"trace", "debug", "info", "warn", "error", "critical", "off"})
        EXPECT_EQ(parseOk(std::string(R"({"log": {"level": ")") + level + "\"}}").log.level, level);
}

TEST_F(ConfigTest, EndpointsAreValidated) {
    EXPECT_EQ(errorPath(R"({"listen": "nohost"})"), "listen");
    EXPECT_EQ(errorPath(R"({"listen": "127.0.0.1:70000"})"), "listen");
    EXPECT_EQ(errorPath(R"({"listen": ":80"})"), "listen");
    EXPECT_EQ(errorPath(R"({"listen": "host:"})"), "listen");
    EXPECT_EQ(errorPath(R"({"listen": "host:8o"})"), "listen");
    EXPECT_EQ(errorPath(R"({"api": {"listen": "nohost"}})"), "api.listen");
    Config c = parseOk(R"({"listen": "[::1]:80"})");
    EXPECT_EQ(c.listen.host, "::1");
    EXPECT_EQ(c.listen.port, 80);
    EXPECT_EQ(parseOk(R"({"listen": "127.0.0.1:0"})").listen.port, 0);
    EXPECT_EQ(parseOk(R"({"listen": "0.0.0.0:65535"})").listen.port, 65535);
    // A host name would only fail at startup, when binding: it is refused at load.
    EXPECT_EQ(errorPath(R"({"listen": "localhost:8080"})"), "listen");
}

TEST(ParseEndpointTest, AcceptsHostPortAndBracketedV6) {
    auto v4 = parseEndpoint("10.1.2.3:443");
    ASSERT_TRUE(v4.has_value());
    EXPECT_EQ(v4->host, "10.1.2.3");
    EXPECT_EQ(v4->port, 443);
    auto v6 = parseEndpoint("[fe80::1]:8080");
    ASSERT_TRUE(v6.has_value());
    EXPECT_EQ(v6->host, "fe80::1");
    EXPECT_EQ(v6->port, 8080);
}

TEST(ParseEndpointTest, RejectsMalformedText) {
    for (const char* text :
         {"", "nohost", ":80", "host:", "host:65536", "host:123456", "host:-1", "[::1:80", "[]:80", "host:8 "})
        EXPECT_FALSE(parseEndpoint(text).has_value()) << text;
}

TEST(ParseIpNetworkTest, AcceptsAddressesAndCidrNetworks) {
    auto one = parseIpNetwork("192.0.2.7");
    ASSERT_TRUE(one.has_value());
    EXPECT_FALSE(one->v6);
    EXPECT_EQ(one->prefix_length, 32u);
    unsigned char inside[4] = {192, 0, 2, 7};
    unsigned char outside[4] = {192, 0, 2, 8};
    EXPECT_TRUE(one->contains(false, inside));
    EXPECT_FALSE(one->contains(false, outside));

    auto all = parseIpNetwork("0.0.0.0/0");
    ASSERT_TRUE(all.has_value());
    EXPECT_TRUE(all->contains(false, outside));
    unsigned char v6[16] = {0x20, 0x01, 0x0d, 0xb8};
    EXPECT_FALSE(all->contains(true, v6));

    auto v6Network = parseIpNetwork("2001:db8::/32");
    ASSERT_TRUE(v6Network.has_value());
    EXPECT_TRUE(v6Network->v6);
    EXPECT_TRUE(v6Network->contains(true, v6));
    EXPECT_EQ(parseIpNetwork("::/0")->prefix_length, 0u);
}

TEST(ParseIpNetworkTest, IgnoresHostBitsAndUnmapsIPv4MappedNetworks) {
    auto network = parseIpNetwork("10.1.2.3/8");
    ASSERT_TRUE(network.has_value());
    EXPECT_EQ(network->bytes[1], 0);
    EXPECT_EQ(network->bytes[3], 0);
    unsigned char other[4] = {10, 200, 0, 1};
    EXPECT_TRUE(network->contains(false, other));
    auto odd = parseIpNetwork("192.168.1.200/25");
    ASSERT_TRUE(odd.has_value());
    EXPECT_EQ(odd->bytes[3], 128);

    auto mapped = parseIpNetwork("::ffff:10.0.0.0/104");
    ASSERT_TRUE(mapped.has_value());
    EXPECT_FALSE(mapped->v6);
    EXPECT_EQ(mapped->prefix_length, 8u);
    EXPECT_TRUE(mapped->contains(false, other));
}

TEST(ParseIpNetworkTest, RejectsMalformedText) {
    for (const char* text :
         {"", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/8/8", "10.0.0.0/0008",
          "10.0.0", "10.0.0.0.0", "localhost", "10.0.0.0 /8", " 10.0.0.0", "[::1]", "fe80::1%eth0", "10.0.0.0/8 "})
        EXPECT_FALSE(parseIpNetwork(text).has_value()) << '"' << text << '"';
    EXPECT_FALSE(parseIpNetwork(std::string_view("127.0.0.1\0junk", 14)).has_value())
        << "a NUL does not end the address";
    EXPECT_FALSE(parseIpNetwork(std::string_view("10.0.0.0/8\0", 11)).has_value());
}

// --- namespaces and documents -----------------------------------------------------------------

TEST_F(ConfigTest, NamespaceNameWithAColonIsRejected) {
    ConfigError error = parseError(R"({"namespaces": {"chat:room": {}}})");
    EXPECT_EQ(error.path, "namespaces.chat:room");
    EXPECT_EQ(errorPath(R"({"namespaces": {"has space": {}}})"), "namespaces.has space");
    EXPECT_EQ(errorPath(R"({"namespaces": {"": {}}})"), "namespaces.");
}

TEST_F(ConfigTest, InvalidJsonDocumentIsAnError) {
    ConfigError error = parseError(R"({"threads": 2,)");
    EXPECT_EQ(error.path, "");
    EXPECT_FALSE(error.message.empty());
    EXPECT_EQ(error.describe(), error.message);
}

TEST_F(ConfigTest, NestingDeeperThanTheLimitFailsStartupNamingTheLimit) {
    // Ignored keys may hold anything, but not nesting that could exhaust the stack.
    std::string deep = std::string(100'000, '[') + std::string(100'000, ']');
    ConfigError error = parseError(R"({"_comment": )" + deep + "}");
    EXPECT_EQ(error.path, "");
    EXPECT_NE(error.message.find(std::to_string(kMaxJsonDepth) + " levels"), std::string::npos) << error.message;
    std::string allowed = std::string(kMaxJsonDepth - 1, '[') + std::string(kMaxJsonDepth - 1, ']');
    parseOk(R"({"_comment": )" + allowed + "}");
}

TEST_F(ConfigTest, TopLevelMustBeAnObject) {
    EXPECT_EQ(parseError("[1, 2]").path, "");
    EXPECT_EQ(parseError("42").path, "");
}

TEST_F(ConfigTest, NamespaceForFindsTheChannelsOptions) {
    Config c = parseOk(R"({"namespaces": {"chat": {"client_publish": true}}})");
    EXPECT_EQ(c.namespaceFor("news"), &c.channel_defaults);
    EXPECT_EQ(c.namespaceFor("chat:room1"), &c.namespaces.at("chat"));
    EXPECT_EQ(c.namespaceFor("chat:room:with:colons"), &c.namespaces.at("chat"));
    EXPECT_EQ(c.namespaceFor("other:room1"), nullptr);
    EXPECT_EQ(c.namespaceFor("chatroom"), &c.channel_defaults);
}

// --- environment overrides --------------------------------------------------------------------

TEST_F(ConfigTest, EnvironmentOverridesANumberLeaf) {
    setEnv("WSPUSH_WEBSOCKET_PING_INTERVAL", "5");
    EXPECT_DOUBLE_EQ(parseOk("").websocket.ping_interval.count(), 5);
}

TEST_F(ConfigTest, EnvironmentOverridesAStringLeafVerbatim) {
    setEnv("WSPUSH_LISTEN", "127.0.0.1:9000");
    setEnv("WSPUSH_NODE_NAME", "not \"json\"");
    Config c = parseOk("");
    EXPECT_EQ(c.listen.host, "127.0.0.1");
    EXPECT_EQ(c.listen.port, 9000);
    EXPECT_EQ(c.node_name, "not \"json\"");
}

TEST_F(ConfigTest, EnvironmentOverridesTheNamespacesMap) {
    setEnv("WSPUSH_NAMESPACES", R"({"chat":{"client_publish":true}})");
    Config c = parseOk(R"({"namespaces": {"feed": {}}})");
    ASSERT_EQ(c.namespaces.size(), 1u);
    EXPECT_TRUE(c.namespaces.at("chat").client_publish);
}

TEST_F(ConfigTest, EnvironmentOverridesTheApiKeysList) {
    setEnv("WSPUSH_API_KEYS", R"(["0123456789abcdef","abcdefghijklmnopq"])");
    Config c = parseOk("");
    EXPECT_EQ(keysOf(c), (std::vector<std::string>{"0123456789abcdef", "abcdefghijklmnopq"}));
}

TEST_F(ConfigTest, EnvironmentCreatesMissingSections) {
    setEnv("WSPUSH_WEBSOCKET_COMPRESSION_LEVEL", "3");
    setEnv("WSPUSH_CLIENT_ALLOW_ANONYMOUS", "true");
    Config c = parseOk("");
    EXPECT_EQ(c.websocket.compression.level, 3);
    EXPECT_TRUE(c.client.allow_anonymous);
}

TEST_F(ConfigTest, InvalidJsonInTheEnvironmentNamesThePath) {
    setEnv("WSPUSH_WEBSOCKET_PING_INTERVAL", "five");
    ConfigError error = parseError("");
    EXPECT_EQ(error.path, "websocket.ping_interval");
    EXPECT_NE(error.message.find("WSPUSH_WEBSOCKET_PING_INTERVAL"), std::string::npos) << error.message;
}

TEST_F(ConfigTest, TooDeepJsonInTheEnvironmentNamesThePathAndTheLimit) {
    setEnv("WSPUSH_NAMESPACES", std::string(100'000, '[') + std::string(100'000, ']'));
    ConfigError error = parseError("");
    EXPECT_EQ(error.path, "namespaces");
    EXPECT_NE(error.message.find("WSPUSH_NAMESPACES"), std::string::npos) << error.message;
    EXPECT_NE(error.message.find(std::to_string(kMaxJsonDepth) + " levels"), std::string::npos) << error.message;
}

TEST_F(ConfigTest, InvalidJsonInTheNamespacesVariableNamesThePath) {
    setEnv("WSPUSH_NAMESPACES", R"({"chat":)");
    EXPECT_EQ(parseError("").path, "namespaces");
}

TEST_F(ConfigTest, EnvironmentValuesAreValidatedLikeFileValues) {
    setEnv("WSPUSH_THREADS", "65");
    EXPECT_EQ(errorPath(""), "threads");
    fakeEnvironment().clear();
    setEnv("WSPUSH_LISTEN", "nohost");
    EXPECT_EQ(errorPath(""), "listen");
    fakeEnvironment().clear();
    setEnv("WSPUSH_WEBSOCKET_PING_INTERVAL", "\"5\"");
    EXPECT_EQ(errorPath(""), "websocket.ping_interval");
}

TEST_F(ConfigTest, EnvironmentOverridesTheFile) {
    setEnv("WSPUSH_WEBSOCKET_PING_INTERVAL", "5");
    setEnv("WSPUSH_API_LISTEN", "");
    Config c =
        parseOk(R"({"websocket": {"ping_interval": 30, "pong_timeout": 7}, "api": {"listen": "127.0.0.1:9100"}})");
    EXPECT_DOUBLE_EQ(c.websocket.ping_interval.count(), 5);
    EXPECT_DOUBLE_EQ(c.websocket.pong_timeout.count(), 7);  // siblings in the file survive
    EXPECT_FALSE(c.api.listen.has_value());
}

TEST_F(ConfigTest, EnvironmentIntoANonObjectSectionNamesTheSection) {
    setEnv("WSPUSH_WEBSOCKET_PATH", "/x");
    EXPECT_EQ(errorPath(R"({"websocket": 5})"), "websocket");
}

TEST_F(ConfigTest, EnvironmentVariablesAreTheDocumentedList) {
    // docs/configuration.md, "All environment variables", in that order.
    const std::vector<std::string> documented{
        "WSPUSH_NODE_NAME",
        "WSPUSH_THREADS",
        "WSPUSH_LISTEN",
        "WSPUSH_REUSE_PORT",
        "WSPUSH_API_LISTEN",
        "WSPUSH_API_KEYS",
        "WSPUSH_API_MAX_BODY_SIZE",
        "WSPUSH_API_IDEMPOTENCY_WINDOW",
        "WSPUSH_API_IDEMPOTENCY_MAX_ENTRIES",
        "WSPUSH_WEBSOCKET_PATH",
        "WSPUSH_WEBSOCKET_MAX_MESSAGE_SIZE",
        "WSPUSH_WEBSOCKET_PING_INTERVAL",
        "WSPUSH_WEBSOCKET_PONG_TIMEOUT",
        "WSPUSH_WEBSOCKET_CONNECT_TIMEOUT",
        "WSPUSH_WEBSOCKET_HANDSHAKE_TIMEOUT",
        "WSPUSH_WEBSOCKET_WRITE_QUEUE_MAX_BYTES",
        "WSPUSH_WEBSOCKET_WRITE_QUEUE_MAX_FRAMES",
        "WSPUSH_WEBSOCKET_MAX_SUBSCRIPTIONS",
        "WSPUSH_WEBSOCKET_ALLOWED_ORIGINS",
        "WSPUSH_WEBSOCKET_WRITE_DELAY",
        "WSPUSH_WEBSOCKET_COMPRESSION_ENABLED",
        "WSPUSH_WEBSOCKET_COMPRESSION_LEVEL",
        "WSPUSH_WEBSOCKET_COMPRESSION_WINDOW_BITS",
        "WSPUSH_WEBSOCKET_COMPRESSION_MEM_LEVEL",
        "WSPUSH_WEBSOCKET_COMPRESSION_THRESHOLD",
        "WSPUSH_WEBSOCKET_COMPRESSION_CONTEXT_TAKEOVER",
        "WSPUSH_CLIENT_ALLOW_ANONYMOUS",
        "WSPUSH_CLIENT_TRUST_CLIENT_USER",
        "WSPUSH_CLIENT_USER_STATUS",
        "WSPUSH_CLIENT_TOKEN_HMAC_SECRETS",
        "WSPUSH_CLIENT_TOKEN_PUBLIC_KEYS",
        "WSPUSH_CLIENT_TOKEN_JWKS_FILE",
        "WSPUSH_CLIENT_TOKEN_AUDIENCE",
        "WSPUSH_CLIENT_TOKEN_ISSUER",
        "WSPUSH_CLIENT_TOKEN_REQUIRE_EXP",
        "WSPUSH_CLIENT_TOKEN_LEEWAY",
        "WSPUSH_INBOX_MAX_MESSAGES",
        "WSPUSH_INBOX_MAX_BYTES",
        "WSPUSH_INBOX_TTL",
        "WSPUSH_INBOX_NEW_DEVICE_BACKLOG",
        "WSPUSH_INBOX_DEVICE_TTL",
        "WSPUSH_SESSIONS_TTL",
        "WSPUSH_SESSIONS_MAX_QUEUED",
        "WSPUSH_QOS_ACK_TIMEOUT",
        "WSPUSH_QOS_MAX_REDELIVERIES",
        "WSPUSH_QOS_MAX_INFLIGHT",
        "WSPUSH_CHANNEL_DEFAULTS",
        "WSPUSH_NAMESPACES",
        "WSPUSH_SHUTDOWN_TIMEOUT",
        "WSPUSH_SHUTDOWN_DRAIN_RATE",
        "WSPUSH_PRESENCE_TTL",
        "WSPUSH_STATIC_FILES_ROOT",
        "WSPUSH_ADMIN_CONSOLE",
        "WSPUSH_LOG_LEVEL",
        "WSPUSH_LOG_FORMAT",
        "WSPUSH_ENGINE",
        "WSPUSH_REDIS_ADDRESSES",
        "WSPUSH_REDIS_PASSWORD",
        "WSPUSH_REDIS_DB",
        "WSPUSH_REDIS_PREFIX",
        "WSPUSH_REDIS_CONNECT_TIMEOUT",
        "WSPUSH_REDIS_COMMAND_TIMEOUT",
        "WSPUSH_REDIS_SENTINEL_ADDRESSES",
        "WSPUSH_REDIS_SENTINEL_MASTER_NAMES",
        "WSPUSH_WEBHOOKS_ENDPOINTS",
        "WSPUSH_WEBHOOKS_TIMEOUT",
        "WSPUSH_WEBHOOKS_RETRY_FOR",
        "WSPUSH_WEBHOOKS_OFFLINE_GRACE",
        "WSPUSH_WEBHOOKS_UNACKED_AFTER",
        "WSPUSH_WEBHOOKS_MAX_QUEUE",
        "WSPUSH_WEBHOOKS_MAX_BATCH",
        "WSPUSH_WEBHOOKS_TLS_VERIFY",
        "WSPUSH_LIMITS_CONNECTIONS_PER_NODE",
        "WSPUSH_LIMITS_CONNECTIONS_PER_USER",
        "WSPUSH_LIMITS_CONNECTIONS_PER_IP",
        "WSPUSH_LIMITS_CONNECTS_PER_SECOND_PER_IP",
        "WSPUSH_LIMITS_COMMANDS_PER_SECOND",
        "WSPUSH_LIMITS_COMMANDS_BURST",
        "WSPUSH_LIMITS_HISTORY_READS_PER_SECOND",
        "WSPUSH_LIMITS_PRESENCE_READS_PER_SECOND",
        "WSPUSH_LIMITS_MAX_HEADER_BYTES",
        "WSPUSH_LIMITS_MAX_URL_BYTES",
        "WSPUSH_TLS_CERT",
        "WSPUSH_TLS_KEY",
        "WSPUSH_TLS_MIN_VERSION",
        "WSPUSH_PROXY_TRUSTED",
    };
    EXPECT_EQ(configEnvironmentVariables(), documented);
}

TEST_F(ConfigTest, NoVariableForOneOptionInsideANamespaceSection) {
    setEnv("WSPUSH_CHANNEL_DEFAULTS_CLIENT_PUBLISH", "true");
    EXPECT_FALSE(parseOk("").channel_defaults.client_publish);
    EXPECT_FALSE(queriedVariables().contains("WSPUSH_CHANNEL_DEFAULTS_CLIENT_PUBLISH"));
}

TEST_F(ConfigTest, EnvironmentChannelDefaultsReplaceTheWholeSection) {
    setEnv("WSPUSH_CHANNEL_DEFAULTS", R"({"presence":true})");
    Config c = parseOk(R"({"channel_defaults": {"client_publish": true, "presence": false}})");
    EXPECT_TRUE(c.channel_defaults.presence);
    EXPECT_FALSE(c.channel_defaults.client_publish);  // back at the built-in default, not the file's
}

TEST_F(ConfigTest, EnvironmentBooleansMustBeJson) {
    setEnv("WSPUSH_CLIENT_ALLOW_ANONYMOUS", "1");
    EXPECT_EQ(errorPath(""), "client.allow_anonymous");
    setEnv("WSPUSH_CLIENT_ALLOW_ANONYMOUS", "yes");
    EXPECT_EQ(errorPath(""), "client.allow_anonymous");
}

TEST_F(ConfigTest, TheAdminConsoleIsOffUnlessTurnedOn) {
    EXPECT_FALSE(parseOk("").admin.console);
    EXPECT_TRUE(parseOk(R"({"admin": {"console": true}})").admin.console);
    EXPECT_EQ(errorPath(R"({"admin": {"console": "yes"}})"), "admin.console");
    EXPECT_EQ(errorPath(R"({"admin": {"consol": true}})"), "admin.consol");
    setEnv("WSPUSH_ADMIN_CONSOLE", "true");
    EXPECT_TRUE(parseOk(R"({"admin": {"console": false}})").admin.console);
    setEnv("WSPUSH_ADMIN_CONSOLE", "1");
    EXPECT_EQ(errorPath(""), "admin.console");
}

TEST_F(ConfigTest, EveryConsultedVariableIsDocumentedAndViceVersa) {
    parseOk("");
    std::vector<std::string> names = configEnvironmentVariables();
    EXPECT_EQ(queriedVariables(), std::set<std::string>(names.begin(), names.end()));
    EXPECT_EQ(queriedVariables().size(), names.size());  // no duplicates
}

// --- engine and redis -------------------------------------------------------------------------

TEST_F(ConfigTest, TheEngineIsMemoryByDefaultWithRedisDefaults) {
    Config config = parseOk("");
    EXPECT_EQ(config.engine, "memory");
    EXPECT_TRUE(config.redis.addresses.empty());
    EXPECT_EQ(config.redis.password, "");
    EXPECT_EQ(config.redis.db, 0u);
    EXPECT_EQ(config.redis.prefix, "wsp");
    EXPECT_DOUBLE_EQ(config.redis.connect_timeout.count(), 1.0);
    EXPECT_DOUBLE_EQ(config.redis.command_timeout.count(), 2.0);
    EXPECT_FALSE(config.redis.sentinel.has_value());
}

TEST_F(ConfigTest, RedisKeysAreRead) {
    Config config = parseOk(R"({"engine":"redis","redis":{"addresses":["127.0.0.1:6379","[::1]:6380"],
        "password":"secret","db":3,"prefix":"app.v1-x_","connect_timeout":0.5,"command_timeout":1.5}})");
    EXPECT_EQ(config.engine, "redis");
    ASSERT_EQ(config.redis.addresses.size(), 2u);
    EXPECT_EQ(config.redis.addresses[0].host, "127.0.0.1");
    EXPECT_EQ(config.redis.addresses[0].port, 6379);
    EXPECT_EQ(config.redis.addresses[1].host, "::1");
    EXPECT_EQ(config.redis.addresses[1].port, 6380);
    EXPECT_EQ(config.redis.password, "secret");
    EXPECT_EQ(config.redis.db, 3u);
    EXPECT_EQ(config.redis.prefix, "app.v1-x_");
    EXPECT_DOUBLE_EQ(config.redis.connect_timeout.count(), 0.5);
    EXPECT_DOUBLE_EQ(config.redis.command_timeout.count(), 1.5);
}

TEST_F(ConfigTest, SentinelNamesTheShardsInsteadOfAddresses) {
    Config config = parseOk(R"({"engine":"redis","redis":{"sentinel":{
        "addresses":["10.0.0.1:26379","10.0.0.2:26379"],"master_names":["shard0","shard1"]}}})");
    ASSERT_TRUE(config.redis.sentinel.has_value());
    EXPECT_EQ(config.redis.sentinel->addresses.size(), 2u);
    EXPECT_EQ(config.redis.sentinel->addresses[1].host, "10.0.0.2");
    EXPECT_EQ(config.redis.sentinel->master_names, (std::vector<std::string>{"shard0", "shard1"}));
    EXPECT_TRUE(config.redis.addresses.empty());
}

TEST_F(ConfigTest, RedisValidationErrorsNameTheKey) {
    EXPECT_EQ(errorPath(R"({"engine":"mongo"})"), "engine");
    EXPECT_EQ(errorPath(R"({"engine":"redis"})"), "redis.addresses");
    EXPECT_EQ(errorPath(R"({"engine":"redis","redis":{"addresses":[]}})"), "redis.addresses");
    EXPECT_EQ(errorPath(R"({"redis":{"addresses":"127.0.0.1:6379"}})"), "redis.addresses");
    EXPECT_EQ(errorPath(R"({"redis":{"addresses":["127.0.0.1:6379","redis host:6379"]}})"), "redis.addresses[1]");
    EXPECT_EQ(errorPath(R"({"redis":{"addresses":[6379]}})"), "redis.addresses[0]");
    EXPECT_EQ(errorPath(R"({"redis":{"db":-1}})"), "redis.db");
    EXPECT_EQ(errorPath(R"({"redis":{"prefix":""}})"), "redis.prefix");
    EXPECT_EQ(errorPath(R"({"redis":{"prefix":"a b"}})"), "redis.prefix");
    EXPECT_EQ(errorPath(R"({"redis":{"prefix":")" + std::string(65, 'p') + R"("}})"), "redis.prefix");
    EXPECT_EQ(parseOk(R"({"redis":{"prefix":")" + std::string(64, 'p') + R"("}})").redis.prefix.size(), 64u);
    EXPECT_EQ(errorPath(R"({"redis":{"connect_timeout":0}})"), "redis.connect_timeout");
    EXPECT_EQ(errorPath(R"({"redis":{"command_timeout":-1}})"), "redis.command_timeout");
    EXPECT_EQ(errorPath(R"({"redis":{"password":1}})"), "redis.password");
    EXPECT_EQ(errorPath(R"({"redis":{"cluster":true}})"), "redis.cluster");
    EXPECT_EQ(errorPath(R"({"redis":{"sentinel":{"master_names":["m"]}}})"), "redis.sentinel.addresses");
    EXPECT_EQ(errorPath(R"({"redis":{"sentinel":{"addresses":["127.0.0.1:26379"]}}})"), "redis.sentinel.master_names");
    EXPECT_EQ(errorPath(R"({"redis":{"sentinel":{"addresses":["127.0.0.1:26379"],"master_names":["m",""]}}})"),
              "redis.sentinel.master_names[1]");
    EXPECT_EQ(errorPath(R"({"redis":{"sentinel":{"addresses":["127.0.0.1:26379"],"master_names":["m","m"]}}})"),
              "redis.sentinel.master_names[1]");
    EXPECT_EQ(errorPath(R"({"redis":{"sentinel":{"addresses":["x"],"master_names":["m"]}}})"),
              "redis.sentinel.addresses[0]");
}

// --- reuse_port ------------------------------------------------------------------------------

constexpr const char* kOnRedis = R"("engine":"redis","redis":{"addresses":["127.0.0.1:6379"]})";

TEST_F(ConfigTest, ReusePortIsOffByDefaultAndNeedsABoolean) {
    EXPECT_FALSE(parseOk("").reuse_port);
    EXPECT_TRUE(parseOk(std::string(R"({"reuse_port":true,)") + kOnRedis + "}").reuse_port);
    EXPECT_FALSE(parseOk(R"({"reuse_port":false})").reuse_port);
    EXPECT_EQ(errorPath(std::string(R"({"reuse_port":1,)") + kOnRedis + "}"), "reuse_port");
    EXPECT_EQ(errorPath(R"({"listen":{"reuse_port":true}})"), "listen");
}

TEST_F(ConfigTest, ReusePortIsRefusedOnTheMemoryEngine) {
    // Processes sharing a port on the memory engine would each deliver only their own publications.
    ConfigError error = parseError(R"({"reuse_port":true})");
    EXPECT_EQ(error.path, "reuse_port");
    EXPECT_NE(error.message.find("engine \"redis\""), std::string::npos) << error.message;
    EXPECT_EQ(errorPath(R"({"reuse_port":true,"engine":"memory"})"), "reuse_port");
}

TEST_F(ConfigTest, ReusePortFromTheEnvironment) {
    setEnv("WSPUSH_REUSE_PORT", "true");
    EXPECT_EQ(errorPath(""), "reuse_port");  // the memory engine still refuses it
    EXPECT_TRUE(parseOk(std::string("{") + kOnRedis + "}").reuse_port);
    setEnv("WSPUSH_REUSE_PORT", "false");
    EXPECT_FALSE(parseOk(std::string(R"({"reuse_port":true,)") + kOnRedis + "}").reuse_port);
    setEnv("WSPUSH_REUSE_PORT", "yes");
    EXPECT_EQ(errorPath(std::string("{") + kOnRedis + "}"), "reuse_port");
}

TEST_F(ConfigTest, RedisFromTheEnvironment) {
    setEnv("WSPUSH_ENGINE", "redis");
    setEnv("WSPUSH_REDIS_ADDRESSES", R"(["127.0.0.1:6379"])");
    setEnv("WSPUSH_REDIS_PASSWORD", "pw");
    setEnv("WSPUSH_REDIS_DB", "2");
    setEnv("WSPUSH_REDIS_PREFIX", "env");
    setEnv("WSPUSH_REDIS_COMMAND_TIMEOUT", "0.25");
    Config config = parseOk("");
    EXPECT_EQ(config.engine, "redis");
    ASSERT_EQ(config.redis.addresses.size(), 1u);
    EXPECT_EQ(config.redis.addresses[0].port, 6379);
    EXPECT_EQ(config.redis.password, "pw");
    EXPECT_EQ(config.redis.db, 2u);
    EXPECT_EQ(config.redis.prefix, "env");
    EXPECT_DOUBLE_EQ(config.redis.command_timeout.count(), 0.25);
}

TEST_F(ConfigTest, SentinelFromTheEnvironmentOverridesTheFile) {
    setEnv("WSPUSH_REDIS_SENTINEL_ADDRESSES", R"(["127.0.0.1:26379"])");
    setEnv("WSPUSH_REDIS_SENTINEL_MASTER_NAMES", R"(["mymaster"])");
    Config config = parseOk(R"({"engine":"redis","redis":{"sentinel":{"addresses":["10.0.0.1:26379"],
        "master_names":["a","b"]}}})");
    ASSERT_TRUE(config.redis.sentinel.has_value());
    EXPECT_EQ(config.redis.sentinel->addresses[0].host, "127.0.0.1");
    EXPECT_EQ(config.redis.sentinel->master_names, std::vector<std::string>{"mymaster"});

    setEnv("WSPUSH_REDIS_SENTINEL_MASTER_NAMES", "mymaster");  // a list holds JSON
    EXPECT_EQ(errorPath(""), "redis.sentinel.master_names");
}

// --- webhooks ----------------------------------------------------------------------------------

TEST_F(ConfigTest, WebhooksAreOffByDefault) {
    Config config = parseOk("");
    EXPECT_TRUE(config.webhooks.endpoints.empty());
    EXPECT_DOUBLE_EQ(config.webhooks.timeout.count(), 5);
    EXPECT_DOUBLE_EQ(config.webhooks.retry_for.count(), 300);
    EXPECT_DOUBLE_EQ(config.webhooks.offline_grace.count(), 5);
    EXPECT_DOUBLE_EQ(config.webhooks.unacked_after.count(), 30);
    EXPECT_EQ(config.webhooks.max_queue, 100000u);
    EXPECT_EQ(config.webhooks.max_batch, 100u);
    EXPECT_TRUE(config.webhooks.tls_verify);
}

TEST_F(ConfigTest, WebhookKeysAreRead) {
    Config config = parseOk(R"({"webhooks":{"endpoints":[
        {"url":"https://backend.example.com/hooks/wspush?v=1","events":["user_online","user_offline"],"secret":"s1"},
        {"url":"http://10.0.0.7:8000","events":["message_unacked"],"secret":"s2"}],
        "timeout":2.5,"retry_for":60,"offline_grace":0,"unacked_after":10,"max_queue":50,"max_batch":10,
        "tls_verify":false}})");
    const WebhooksConfig& webhooks = config.webhooks;
    ASSERT_EQ(webhooks.endpoints.size(), 2u);
    EXPECT_EQ(webhooks.endpoints[0].url, "https://backend.example.com/hooks/wspush?v=1");
    EXPECT_EQ(webhooks.endpoints[0].events, (std::vector<std::string>{"user_online", "user_offline"}));
    EXPECT_EQ(webhooks.endpoints[0].secret, "s1");
    EXPECT_EQ(webhooks.endpoints[1].events, std::vector<std::string>{"message_unacked"});
    EXPECT_DOUBLE_EQ(webhooks.timeout.count(), 2.5);
    EXPECT_DOUBLE_EQ(webhooks.retry_for.count(), 60);
    EXPECT_DOUBLE_EQ(webhooks.offline_grace.count(), 0);
    EXPECT_DOUBLE_EQ(webhooks.unacked_after.count(), 10);
    EXPECT_EQ(webhooks.max_queue, 50u);
    EXPECT_EQ(webhooks.max_batch, 10u);
    EXPECT_FALSE(webhooks.tls_verify);
}

TEST_F(ConfigTest, EveryEventNameIsAccepted) {
    std::string events;
    for (auto name : kWebhookEventNames) events += (events.empty() ? "\"" : ",\"") + std::string(name) + "\"";
    Config config =
        parseOk(R"({"webhooks":{"endpoints":[{"url":"http://h/","secret":"s","events":[)" + events + "]}]}}");
    EXPECT_EQ(config.webhooks.endpoints[0].events.size(), std::size(kWebhookEventNames));
}

TEST_F(ConfigTest, WebhookValidationErrorsNameTheKey) {
    auto endpoint = [](const std::string& fields) {
        return R"({"webhooks":{"endpoints":[{"url":"http://h/","events":["user_online"],"secret":"s"},)" + fields +
               "]}}";
    };
    EXPECT_EQ(errorPath(R"({"webhooks":[]})"), "webhooks");
    EXPECT_EQ(errorPath(R"({"webhooks":{"endpoints":{}}})"), "webhooks.endpoints");
    EXPECT_EQ(errorPath(R"({"webhooks":{"endpoints":[5]}})"), "webhooks.endpoints[0]");
    EXPECT_EQ(errorPath(endpoint(R"({"url":"ftp://h/","events":["user_online"],"secret":"s"})")),
              "webhooks.endpoints[1].url");
    EXPECT_EQ(errorPath(endpoint(R"({"events":["user_online"],"secret":"s"})")), "webhooks.endpoints[1].url");
    EXPECT_EQ(errorPath(endpoint(R"({"url":"http://h/","events":[],"secret":"s"})")), "webhooks.endpoints[1].events");
    EXPECT_EQ(errorPath(endpoint(R"({"url":"http://h/","secret":"s"})")), "webhooks.endpoints[1].events");
    EXPECT_EQ(errorPath(endpoint(R"({"url":"http://h/","events":["user_online","*"],"secret":"s"})")),
              "webhooks.endpoints[1].events[1]");
    EXPECT_EQ(errorPath(endpoint(R"({"url":"http://h/","events":["user_online","user_online"],"secret":"s"})")),
              "webhooks.endpoints[1].events[1]");
    EXPECT_EQ(errorPath(endpoint(R"({"url":"http://h/","events":[1],"secret":"s"})")),
              "webhooks.endpoints[1].events[0]");
    EXPECT_EQ(errorPath(endpoint(R"({"url":"http://h/","events":["user_online"]})")), "webhooks.endpoints[1].secret");
    EXPECT_EQ(errorPath(endpoint(R"({"url":"http://h/","events":["user_online"],"secret":""})")),
              "webhooks.endpoints[1].secret");
    EXPECT_EQ(errorPath(endpoint(R"({"url":"http://h/","events":["user_online"],"secret":"s","retries":3})")),
              "webhooks.endpoints[1].retries");
    EXPECT_EQ(errorPath(R"({"webhooks":{"timeout":0}})"), "webhooks.timeout");
    EXPECT_EQ(errorPath(R"({"webhooks":{"retry_for":0}})"), "webhooks.retry_for");
    EXPECT_EQ(errorPath(R"({"webhooks":{"offline_grace":-1}})"), "webhooks.offline_grace");
    EXPECT_EQ(errorPath(R"({"webhooks":{"unacked_after":0}})"), "webhooks.unacked_after");
    EXPECT_EQ(errorPath(R"({"webhooks":{"max_queue":0}})"), "webhooks.max_queue");
    EXPECT_EQ(errorPath(R"({"webhooks":{"max_batch":0}})"), "webhooks.max_batch");
    EXPECT_EQ(errorPath(R"({"webhooks":{"max_batch":10001}})"), "webhooks.max_batch");
    EXPECT_EQ(errorPath(R"({"webhooks":{"tls_verify":"no"}})"), "webhooks.tls_verify");
    EXPECT_EQ(errorPath(R"({"webhooks":{"urls":[]}})"), "webhooks.urls");
}

TEST_F(ConfigTest, WebhooksFromTheEnvironment) {
    setEnv("WSPUSH_WEBHOOKS_ENDPOINTS", R"([{"url":"https://b/h","events":["member_added"],"secret":"env"}])");
    setEnv("WSPUSH_WEBHOOKS_TLS_VERIFY", "false");
    setEnv("WSPUSH_WEBHOOKS_MAX_BATCH", "7");
    Config config = parseOk(R"({"webhooks":{"endpoints":[{"url":"http://a/","events":["user_online"],"secret":"f"}],
        "timeout":3}})");
    ASSERT_EQ(config.webhooks.endpoints.size(), 1u);
    EXPECT_EQ(config.webhooks.endpoints[0].secret, "env");
    EXPECT_FALSE(config.webhooks.tls_verify);
    EXPECT_EQ(config.webhooks.max_batch, 7u);
    EXPECT_DOUBLE_EQ(config.webhooks.timeout.count(), 3);  // siblings in the file survive

    setEnv("WSPUSH_WEBHOOKS_ENDPOINTS", R"([{"url":"https://b/h","events":["member_added"],"secret":""}])");
    EXPECT_EQ(errorPath(""), "webhooks.endpoints[0].secret");
}

TEST(ParseWebhookUrlTest, SplitsSchemeHostPortAndTarget) {
    auto url = parseWebhookUrl("https://backend.example.com/hooks/wspush?token=x");
    ASSERT_TRUE(url.has_value());
    EXPECT_TRUE(url->tls);
    EXPECT_EQ(url->host, "backend.example.com");
    EXPECT_EQ(url->port, 443);
    EXPECT_EQ(url->target, "/hooks/wspush?token=x");
    EXPECT_EQ(url->hostHeader(), "backend.example.com");
    EXPECT_EQ(url->describe(), "https://backend.example.com/hooks/wspush");  // the query may hold a token

    url = parseWebhookUrl("HTTP://127.0.0.1:8000");
    ASSERT_TRUE(url.has_value());
    EXPECT_FALSE(url->tls);
    EXPECT_EQ(url->host, "127.0.0.1");
    EXPECT_EQ(url->port, 8000);
    EXPECT_EQ(url->target, "/");
    EXPECT_EQ(url->hostHeader(), "127.0.0.1:8000");

    url = parseWebhookUrl("http://[::1]:9000?x=1");
    ASSERT_TRUE(url.has_value());
    EXPECT_EQ(url->host, "::1");
    EXPECT_EQ(url->port, 9000);
    EXPECT_EQ(url->target, "/?x=1");
    EXPECT_EQ(url->hostHeader(), "[::1]:9000");

    url = parseWebhookUrl("http://h:80/");
    ASSERT_TRUE(url.has_value());
    EXPECT_EQ(url->hostHeader(), "h");
}

TEST(ParseWebhookUrlTest, RejectsWhatCannotBeSentSafely) {
    for (const char* text :
         {"", "backend/hook", "ftp://h/", "http://", "http:///path", "http://h:/", "http://h:0/", "http://h:65536/",
          "http://h:8x/", "http://user:pw@h/", "http://h/a b", "http://h/a#frag", "http://h/\r\nX-Injected: 1",
          "http://[::1/", "http://[not-v6]/", "http://ho st/", "http://[::1]x/"})
        EXPECT_FALSE(parseWebhookUrl(text).has_value()) << text;
}

}  // namespace
}  // namespace wspush

namespace wspush {
namespace {

// --- security: API key scopes, tokens, subscribe permissions ---------------------------------

TEST_F(ConfigTest, ApiKeysAreStringsWithEveryScopeOrObjectsWithTheirOwn) {
    Config c = parseOk(R"({"api": {"keys": ["0123456789abcdef",
        {"name": "orders", "key": "publish-only-key-123", "scopes": ["publish"]},
        {"name": "ops", "key": "read-and-admin-key-1", "scopes": ["read", "admin"]}]}})");
    ASSERT_EQ(c.api.keys.size(), 3u);
    EXPECT_EQ(c.api.keys[0].scopes, unsigned{kAllScopes});
    EXPECT_EQ(c.api.keys[1].name, "orders");
    EXPECT_EQ(c.api.keys[1].scopes, unsigned{kScopePublish});
    EXPECT_EQ(c.api.keys[2].scopes, unsigned{kScopeRead | kScopeAdmin});
}

TEST_F(ConfigTest, ApiKeyObjectsAreChecked) {
    EXPECT_EQ(errorPath(R"({"api": {"keys": [{"name": "a", "key": "0123456789abcdef", "scopes": ["write"]}]}})"),
              "api.keys[0].scopes[0]");
    EXPECT_EQ(errorPath(R"({"api": {"keys": [{"name": "a", "key": "0123456789abcdef", "scopes": []}]}})"),
              "api.keys[0].scopes");
    EXPECT_EQ(errorPath(R"({"api": {"keys": [{"name": "a", "key": "short"}]}})"), "api.keys[0].key");
    EXPECT_EQ(errorPath(R"({"api": {"keys": [{"key": "0123456789abcdef"}]}})"), "api.keys[0].name");
    EXPECT_EQ(errorPath(R"({"api": {"keys": [{"name": "a", "key": "0123456789abcdef", "colour": 1}]}})"),
              "api.keys[0].colour");
    EXPECT_EQ(errorPath(R"({"api": {"keys": [{"name": "a", "key": "0123456789abcdef"},
                                             {"name": "a", "key": "fedcba9876543210"}]}})"),
              "api.keys[1].name");
}

TEST_F(ConfigTest, TokenSettingsAreReadAndChecked) {
    Config c = parseOk(R"({"client": {"token": {
        "hmac_secrets": [{"kid": "k1", "secret": "0123456789abcdef0123456789abcdef"}],
        "public_keys": [{"kid": "rsa1", "pem_file": "/etc/wspush/rsa1.pem"}],
        "audience": "wspush", "issuer": "auth.example.com", "require_exp": false, "leeway": 2}}})");
    const TokenConfig& t = c.client.token;
    ASSERT_EQ(t.hmac_secrets.size(), 1u);
    EXPECT_EQ(t.hmac_secrets[0].kid, "k1");
    ASSERT_EQ(t.public_keys.size(), 1u);
    EXPECT_EQ(t.public_keys[0].pem_file, "/etc/wspush/rsa1.pem");
    EXPECT_EQ(t.audience, "wspush");
    EXPECT_EQ(t.issuer, "auth.example.com");
    EXPECT_FALSE(t.require_exp);
    EXPECT_EQ(t.leeway.count(), 2);
    EXPECT_TRUE(t.enabled());
    EXPECT_FALSE(parseOk("").client.token.enabled());
    EXPECT_TRUE(parseOk("").client.token.require_exp);

    EXPECT_EQ(errorPath(R"({"client": {"token": {"hmac_secrets": [{"kid": "k", "secret": "too-short"}]}}})"),
              "client.token.hmac_secrets[0].secret");
    EXPECT_EQ(errorPath(R"({"client": {"token": {"public_keys": [{"kid": "k"}]}}})"),
              "client.token.public_keys[0].pem_file");
    EXPECT_EQ(errorPath(R"({"client": {"token": {"leeway": 301}}})"), "client.token.leeway");
    EXPECT_EQ(errorPath(R"({"client": {"token": {"algorithm": "HS256"}}})"), "client.token.algorithm");
}

TEST_F(ConfigTest, TokenSecretsComeFromTheEnvironment) {
    setEnv("WSPUSH_CLIENT_TOKEN_HMAC_SECRETS", R"([{"kid":"","secret":"0123456789abcdef0123456789abcdef"}])");
    setEnv("WSPUSH_CLIENT_TOKEN_AUDIENCE", "wspush");
    Config c = parseOk("");
    ASSERT_EQ(c.client.token.hmac_secrets.size(), 1u);
    EXPECT_EQ(c.client.token.audience, "wspush");
}

TEST_F(ConfigTest, NamespacesSaySubscribePermission) {
    Config c = parseOk(R"({"namespaces": {"a": {"subscribe": "authenticated"}, "b": {"subscribe": "token"},
                                          "dialog": {"subscribe": "user_limited"}}})");
    EXPECT_EQ(c.channel_defaults.subscribe, SubscribePermission::Public);
    EXPECT_EQ(c.namespaces["a"].subscribe, SubscribePermission::Authenticated);
    EXPECT_EQ(c.namespaces["b"].subscribe, SubscribePermission::Token);
    EXPECT_EQ(c.namespaces["dialog"].subscribe, SubscribePermission::UserLimited);
    EXPECT_EQ(errorPath(R"({"namespaces": {"a": {"subscribe": "private"}}})"), "namespaces.a.subscribe");
}

}  // namespace
}  // namespace wspush
