#include "wspush/config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "base/bounded_json.h"
#include "wspush/channel_name.h"

namespace wspush {
namespace {

using json = nlohmann::json;

// Config loading happens once, before any I/O; an exception unwinds to parseConfig and becomes a
// ConfigError. Nothing on the data path throws.
struct Invalid {
    ConfigError error;
};

[[noreturn]] void fail(std::string path, std::string message) {
    throw Invalid{ConfigError{std::move(path), std::move(message)}};
}

std::string join(const std::string& parent, const std::string& key) {
    return parent.empty() ? key : parent + "." + key;
}

// Reads the members of one JSON object into a struct and rejects every key nobody read.
class ObjectReader {
public:
    ObjectReader(const json& object, std::string path) : object_(object), path_(std::move(path)) {
        if (!object_.is_object()) fail(path_, "expected an object");
    }

    template <class T>
    void read(const std::string& key, T& out) {
        seen_.insert(key);
        auto it = object_.find(key);
        if (it == object_.end() || it->is_null()) return;  // absent or null: keep the default
        readValue(*it, join(path_, key), out);
    }

    void rejectUnknownKeys() const {
        for (const auto& [key, value] : object_.items()) {
            if (key.starts_with("_")) continue;  // "_comment" and friends document a file
            if (!seen_.contains(key)) fail(join(path_, key), "unknown key");
        }
    }

private:
    static void readValue(const json& v, const std::string& path, bool& out) {
        if (!v.is_boolean()) fail(path, "expected true or false");
        out = v.get<bool>();
    }
    // get<int>() and get<unsigned>() narrow silently (2^32 + 1 would read as 1), so check first.
    static void readValue(const json& v, const std::string& path, int& out) {
        if (!v.is_number_integer()) fail(path, "expected an integer");
        bool inRange = v.is_number_unsigned()
                           ? v.get<std::uint64_t>() <= static_cast<std::uint64_t>(std::numeric_limits<int>::max())
                           : v.get<std::int64_t>() >= std::numeric_limits<int>::min();
        if (!inRange) fail(path, "integer out of range");
        out = v.get<int>();
    }
    static void readValue(const json& v, const std::string& path, unsigned& out) {
        if (!v.is_number_unsigned()) fail(path, "expected a non-negative integer");
        if (v.get<std::uint64_t>() > std::numeric_limits<unsigned>::max()) fail(path, "integer out of range");
        out = v.get<unsigned>();
    }
    static void readValue(const json& v, const std::string& path, std::size_t& out) {
        if (!v.is_number_unsigned()) fail(path, "expected a non-negative integer");
        out = v.get<std::size_t>();
    }
    static void readValue(const json& v, const std::string& path, double& out) {
        if (!v.is_number() || v.get<double>() < 0) fail(path, "expected a non-negative number");
        out = v.get<double>();
    }
    static void readValue(const json& v, const std::string& path, Seconds& out) {
        if (!v.is_number() || v.get<double>() < 0) fail(path, "expected a non-negative number of seconds");
        out = Seconds{v.get<double>()};
    }
    static void readValue(const json& v, const std::string& path, std::string& out) {
        if (!v.is_string()) fail(path, "expected a string");
        out = v.get<std::string>();
    }
    static void readValue(const json& v, const std::string& path, std::vector<std::string>& out) {
        if (!v.is_array()) fail(path, "expected an array of strings");
        out.clear();
        for (std::size_t i = 0; i < v.size(); ++i) {
            if (!v[i].is_string()) fail(path + "[" + std::to_string(i) + "]", "expected a string");
            out.push_back(v[i].get<std::string>());
        }
    }
    static void readValue(const json& v, const std::string& path, Endpoint& out) {
        if (!v.is_string()) fail(path, "expected \"host:port\"");
        auto endpoint = parseEndpoint(v.get<std::string>());
        if (!endpoint)
            fail(path, "expected \"address:port\" with an IP address (e.g. 0.0.0.0:8080 or [::]:8080), got \"" +
                           v.get<std::string>() + "\"");
        out = *endpoint;
    }
    // Servers to connect to (Redis, Sentinel): host names are allowed, resolved without blocking
    // when connecting.
    static void readValue(const json& v, const std::string& path, std::vector<Endpoint>& out) {
        if (!v.is_array()) fail(path, "expected an array of \"host:port\" strings");
        out.clear();
        for (std::size_t i = 0; i < v.size(); ++i) {
            std::string item = path + "[" + std::to_string(i) + "]";
            if (!v[i].is_string()) fail(item, "expected \"host:port\"");
            auto endpoint = parseEndpoint(v[i].get<std::string>(), EndpointHost::NameOrAddress);
            if (!endpoint) fail(item, "expected \"host:port\", got \"" + v[i].get<std::string>() + "\"");
            out.push_back(*endpoint);
        }
    }
    static void readValue(const json& v, const std::string& path, std::optional<Endpoint>& out) {
        if (v.is_string() && v.get<std::string>().empty()) {
            out.reset();
            return;
        }
        Endpoint endpoint;
        readValue(v, path, endpoint);
        out = endpoint;
    }
    static void readValue(const json& v, const std::string& path, NamespaceConfig& out);
    static void readValue(const json& v, const std::string& path, CompressionConfig& out);
    static void readValue(const json& v, const std::string& path, WebSocketConfig& out);
    static void readValue(const json& v, const std::string& path, ApiConfig& out);
    static void readValue(const json& v, const std::string& path, ClientConfig& out);
    static void readValue(const json& v, const std::string& path, InboxConfig& out);
    static void readValue(const json& v, const std::string& path, SessionConfig& out);
    static void readValue(const json& v, const std::string& path, QosConfig& out);
    static void readValue(const json& v, const std::string& path, StaticFilesConfig& out);
    static void readValue(const json& v, const std::string& path, AdminConfig& out);
    static void readValue(const json& v, const std::string& path, LogConfig& out);
    static void readValue(const json& v, const std::string& path, RedisConfig& out);
    static void readValue(const json& v, const std::string& path, std::optional<RedisSentinelConfig>& out);
    static void readValue(const json& v, const std::string& path, std::map<std::string, NamespaceConfig>& out);
    static void readValue(const json& v, const std::string& path, WebhookEndpointConfig& out);
    static void readValue(const json& v, const std::string& path, std::vector<ApiKey>& out);
    static void readValue(const json& v, const std::string& path, TokenConfig& out);
    static void readValue(const json& v, const std::string& path, std::vector<TokenHmacSecret>& out);
    static void readValue(const json& v, const std::string& path, std::vector<TokenPublicKey>& out);
    static void readValue(const json& v, const std::string& path, SubscribePermission& out);
    static void readValue(const json& v, const std::string& path, std::vector<WebhookEndpointConfig>& out);
    static void readValue(const json& v, const std::string& path, WebhooksConfig& out);
    static void readValue(const json& v, const std::string& path, LimitsConfig& out);
    static void readValue(const json& v, const std::string& path, TlsConfig& out);
    static void readValue(const json& v, const std::string& path, ShutdownConfig& out);
    static void readValue(const json& v, const std::string& path, ProxyConfig& out);

    const json& object_;
    std::string path_;
    std::set<std::string> seen_;
};

void ObjectReader::readValue(const json& v, const std::string& path, NamespaceConfig& out) {
    ObjectReader r(v, path);
    r.read("client_publish", out.client_publish);
    r.read("history_size", out.history_size);
    r.read("history_ttl", out.history_ttl);
    r.read("recovery_max", out.recovery_max);
    r.read("client_history", out.client_history);
    r.read("presence", out.presence);
    r.read("client_presence", out.client_presence);
    r.read("presence_max_members", out.presence_max_members);
    r.read("join_leave", out.join_leave);
    r.read("join_leave_max_members", out.join_leave_max_members);
    r.read("default_qos", out.default_qos);
    r.read("subscribe", out.subscribe);
    r.rejectUnknownKeys();
    if (out.default_qos < 0 || out.default_qos > 2) fail(join(path, "default_qos"), "must be 0, 1 or 2");
    if (out.history_size > kMaxHistorySize)
        fail(join(path, "history_size"), "must be at most " + std::to_string(kMaxHistorySize));
    if (out.history_ttl.count() < 0) fail(join(path, "history_ttl"), "must not be negative");
    if (out.history_size > 0 && out.history_ttl.count() == 0) out.history_ttl = kDefaultHistoryTtl;
    if (out.recovery_max < 1 || out.recovery_max > kMaxHistorySize)
        fail(join(path, "recovery_max"), "must be 1 to " + std::to_string(kMaxHistorySize));
    if (out.presence_max_members < 1 || out.presence_max_members > kMaxPresenceMembers)
        fail(join(path, "presence_max_members"), "must be 1 to " + std::to_string(kMaxPresenceMembers));
    if (out.join_leave && !out.presence) fail(join(path, "join_leave"), "needs \"presence\": true");
    if (out.join_leave_max_members < 1 || out.join_leave_max_members > kMaxPresenceMembers)
        fail(join(path, "join_leave_max_members"), "must be 1 to " + std::to_string(kMaxPresenceMembers));
}

void ObjectReader::readValue(const json& v, const std::string& path, CompressionConfig& out) {
    ObjectReader r(v, path);
    r.read("enabled", out.enabled);
    r.read("level", out.level);
    r.read("window_bits", out.window_bits);
    r.read("mem_level", out.mem_level);
    r.read("threshold", out.threshold);
    r.read("context_takeover", out.context_takeover);
    r.rejectUnknownKeys();
    if (out.level < 0 || out.level > 9) fail(join(path, "level"), "must be 0..9");
    // zlib cannot produce raw deflate streams with 8-bit windows, so 9 is the floor.
    if (out.window_bits < 9 || out.window_bits > 15) fail(join(path, "window_bits"), "must be 9..15");
    if (out.mem_level < 1 || out.mem_level > 9) fail(join(path, "mem_level"), "must be 1..9");
}

void ObjectReader::readValue(const json& v, const std::string& path, WebSocketConfig& out) {
    ObjectReader r(v, path);
    r.read("path", out.path);
    r.read("max_message_size", out.max_message_size);
    r.read("ping_interval", out.ping_interval);
    r.read("pong_timeout", out.pong_timeout);
    r.read("connect_timeout", out.connect_timeout);
    r.read("handshake_timeout", out.handshake_timeout);
    r.read("write_queue_max_bytes", out.write_queue_max_bytes);
    r.read("write_queue_max_frames", out.write_queue_max_frames);
    r.read("max_subscriptions", out.max_subscriptions);
    r.read("allowed_origins", out.allowed_origins);
    r.read("write_delay", out.write_delay);
    r.read("compression", out.compression);
    r.rejectUnknownKeys();
    if (!out.path.starts_with("/")) fail(join(path, "path"), "must start with '/'");
    if (out.max_message_size < 128) fail(join(path, "max_message_size"), "must be at least 128");
    if (out.ping_interval.count() <= 0) fail(join(path, "ping_interval"), "must be positive");
    if (out.pong_timeout.count() <= 0) fail(join(path, "pong_timeout"), "must be positive");
    if (out.connect_timeout.count() <= 0) fail(join(path, "connect_timeout"), "must be positive");
    if (out.handshake_timeout.count() <= 0) fail(join(path, "handshake_timeout"), "must be positive");
    if (out.write_queue_max_frames == 0) fail(join(path, "write_queue_max_frames"), "must be positive");
    if (out.write_queue_max_bytes < 1024) fail(join(path, "write_queue_max_bytes"), "must be at least 1024");
    if (out.max_subscriptions == 0) fail(join(path, "max_subscriptions"), "must be positive");
    if (out.write_delay.count() > 1) fail(join(path, "write_delay"), "must be at most 1 (second)");
    for (std::size_t i = 0; i < out.allowed_origins.size(); ++i) {
        const std::string& origin = out.allowed_origins[i];
        if (parseOrigin(origin, OriginSyntax::Pattern)) continue;
        fail(join(path, "allowed_origins") + "[" + std::to_string(i) + "]",
             R"(expected "scheme://host[:port]" or "scheme://*.domain[:port]" (e.g. https://app.example.com), got ")" +
                 origin + "\"");
    }
}

void ObjectReader::readValue(const json& v, const std::string& path, ApiConfig& out) {
    ObjectReader r(v, path);
    r.read("listen", out.listen);
    r.read("keys", out.keys);
    r.read("max_body_size", out.max_body_size);
    r.read("idempotency_window", out.idempotency_window);
    r.read("idempotency_max_entries", out.idempotency_max_entries);
    r.rejectUnknownKeys();
    if (out.idempotency_window.count() <= 0) fail(join(path, "idempotency_window"), "must be positive");
    if (out.idempotency_max_entries == 0) fail(join(path, "idempotency_max_entries"), "must be positive");
}

// A plain string is a key with every scope, so configs from before scopes keep working.
void ObjectReader::readValue(const json& v, const std::string& path, std::vector<ApiKey>& out) {
    if (!v.is_array()) fail(path, "expected an array of keys (strings or {\"name\",\"key\",\"scopes\"} objects)");
    out.clear();
    std::set<std::string> names;
    for (std::size_t i = 0; i < v.size(); ++i) {
        std::string item = path + "[" + std::to_string(i) + "]";
        ApiKey& key = out.emplace_back();
        if (v[i].is_string()) {
            key.key = v[i].get<std::string>();
            key.name = "key " + std::to_string(i);
        } else {
            std::vector<std::string> scopes{"publish", "read", "admin"};
            ObjectReader r(v[i], item);
            r.read("name", key.name);
            r.read("key", key.key);
            r.read("scopes", scopes);
            r.rejectUnknownKeys();
            if (key.name.empty()) fail(join(item, "name"), "must not be empty");
            key.scopes = 0;
            for (std::size_t s = 0; s < scopes.size(); ++s) {
                static const std::map<std::string, unsigned> known{
                    {"publish", kScopePublish}, {"read", kScopeRead}, {"admin", kScopeAdmin}};
                auto scope = known.find(scopes[s]);
                if (scope == known.end())
                    fail(join(item, "scopes") + "[" + std::to_string(s) + "]",
                         "unknown scope \"" + scopes[s] + "\"; expected publish, read or admin");
                key.scopes |= scope->second;
            }
            if (key.scopes == 0) fail(join(item, "scopes"), "must name at least one scope");
        }
        if (key.key.size() < 16) fail(v[i].is_string() ? item : join(item, "key"), "must be at least 16 characters");
        if (!names.insert(key.name).second) fail(join(item, "name"), "names a key twice");
    }
}

void ObjectReader::readValue(const json& v, const std::string& path, std::vector<TokenHmacSecret>& out) {
    if (!v.is_array()) fail(path, "expected an array of {\"kid\",\"secret\"} objects");
    out.clear();
    for (std::size_t i = 0; i < v.size(); ++i) {
        std::string item = path + "[" + std::to_string(i) + "]";
        ObjectReader r(v[i], item);
        auto& secret = out.emplace_back();
        r.read("kid", secret.kid);
        r.read("secret", secret.secret);
        r.rejectUnknownKeys();
        // RFC 7518 3.2: an HMAC key at least as long as the hash; 32 bytes covers HS256.
        if (secret.secret.size() < 32) fail(join(item, "secret"), "must be at least 32 characters");
    }
}

void ObjectReader::readValue(const json& v, const std::string& path, std::vector<TokenPublicKey>& out) {
    if (!v.is_array()) fail(path, "expected an array of {\"kid\",\"pem_file\"} objects");
    out.clear();
    for (std::size_t i = 0; i < v.size(); ++i) {
        std::string item = path + "[" + std::to_string(i) + "]";
        ObjectReader r(v[i], item);
        auto& key = out.emplace_back();
        r.read("kid", key.kid);
        r.read("pem_file", key.pem_file);
        r.rejectUnknownKeys();
        if (key.pem_file.empty()) fail(join(item, "pem_file"), "must name a PEM file");
    }
}

void ObjectReader::readValue(const json& v, const std::string& path, TokenConfig& out) {
    ObjectReader r(v, path);
    r.read("hmac_secrets", out.hmac_secrets);
    r.read("public_keys", out.public_keys);
    r.read("jwks_file", out.jwks_file);
    r.read("audience", out.audience);
    r.read("issuer", out.issuer);
    r.read("require_exp", out.require_exp);
    r.read("leeway", out.leeway);
    r.rejectUnknownKeys();
    if (out.leeway.count() > 300) fail(join(path, "leeway"), "must be at most 300 seconds");
}

void ObjectReader::readValue(const json& v, const std::string& path, SubscribePermission& out) {
    static const std::map<std::string, SubscribePermission> known{{"public", SubscribePermission::Public},
                                                                  {"authenticated", SubscribePermission::Authenticated},
                                                                  {"token", SubscribePermission::Token},
                                                                  {"user_limited", SubscribePermission::UserLimited}};
    auto it = v.is_string() ? known.find(v.get<std::string>()) : known.end();
    if (it == known.end()) fail(path, "expected \"public\", \"authenticated\", \"token\" or \"user_limited\"");
    out = it->second;
}

void ObjectReader::readValue(const json& v, const std::string& path, ClientConfig& out) {
    ObjectReader r(v, path);
    r.read("allow_anonymous", out.allow_anonymous);
    r.read("trust_client_user", out.trust_client_user);
    r.read("user_status", out.user_status);
    r.read("token", out.token);
    r.rejectUnknownKeys();
}

void ObjectReader::readValue(const json& v, const std::string& path, InboxConfig& out) {
    ObjectReader r(v, path);
    r.read("max_messages", out.max_messages);
    r.read("max_bytes", out.max_bytes);
    r.read("ttl", out.ttl);
    r.read("new_device_backlog", out.new_device_backlog);
    r.read("device_ttl", out.device_ttl);
    r.rejectUnknownKeys();
    if (out.max_messages > kMaxHistorySize)
        fail(join(path, "max_messages"), "must be at most " + std::to_string(kMaxHistorySize));
    if (out.max_bytes < 1024) fail(join(path, "max_bytes"), "must be at least 1024");
    // The Redis engine keeps a channel's position 30 days after it was last used.
    if (out.ttl.count() < 1 || out.ttl.count() > 30 * 24 * 3600)
        fail(join(path, "ttl"), "must be 1 second to 30 days (2592000)");
    if (out.new_device_backlog > out.max_messages)
        fail(join(path, "new_device_backlog"), "must be at most max_messages");
    if (out.device_ttl.count() < 1) fail(join(path, "device_ttl"), "must be at least 1 second");
}

void ObjectReader::readValue(const json& v, const std::string& path, SessionConfig& out) {
    ObjectReader r(v, path);
    r.read("ttl", out.ttl);
    r.read("max_queued", out.max_queued);
    r.rejectUnknownKeys();
    if (out.ttl.count() <= 0) fail(join(path, "ttl"), "must be positive");
    if (out.max_queued == 0) fail(join(path, "max_queued"), "must be positive");
}

void ObjectReader::readValue(const json& v, const std::string& path, QosConfig& out) {
    ObjectReader r(v, path);
    r.read("ack_timeout", out.ack_timeout);
    r.read("max_redeliveries", out.max_redeliveries);
    r.read("max_inflight", out.max_inflight);
    r.rejectUnknownKeys();
    if (out.ack_timeout.count() < 0.01) fail(join(path, "ack_timeout"), "must be at least 0.01");
    if (out.max_inflight == 0 || out.max_inflight > 65536) fail(join(path, "max_inflight"), "must be 1..65536");
}

void ObjectReader::readValue(const json& v, const std::string& path, StaticFilesConfig& out) {
    ObjectReader r(v, path);
    r.read("root", out.root);
    r.rejectUnknownKeys();
}

void ObjectReader::readValue(const json& v, const std::string& path, AdminConfig& out) {
    ObjectReader r(v, path);
    r.read("console", out.console);
    r.rejectUnknownKeys();
}

void ObjectReader::readValue(const json& v, const std::string& path, LogConfig& out) {
    ObjectReader r(v, path);
    r.read("level", out.level);
    r.read("format", out.format);
    r.rejectUnknownKeys();
    static const std::set<std::string> levels{"trace", "debug", "info", "warn", "error", "critical", "off"};
    if (!levels.contains(out.level))
        fail(join(path, "level"), "must be one of trace, debug, info, warn, error, critical, off");
    if (out.format != "text" && out.format != "json") fail(join(path, "format"), "must be \"text\" or \"json\"");
}

void ObjectReader::readValue(const json& v, const std::string& path, std::optional<RedisSentinelConfig>& out) {
    RedisSentinelConfig sentinel;
    ObjectReader r(v, path);
    r.read("addresses", sentinel.addresses);
    r.read("master_names", sentinel.master_names);
    r.rejectUnknownKeys();
    if (sentinel.addresses.empty()) fail(join(path, "addresses"), "must name at least one Sentinel");
    if (sentinel.master_names.empty())
        fail(join(path, "master_names"), "must name at least one master (one per shard)");
    std::set<std::string> names;
    for (std::size_t i = 0; i < sentinel.master_names.size(); ++i) {
        std::string where = join(path, "master_names") + "[" + std::to_string(i) + "]";
        if (sentinel.master_names[i].empty()) fail(where, "must not be empty");
        if (!names.insert(sentinel.master_names[i]).second) fail(where, "names a master twice");
    }
    out = std::move(sentinel);
}

void ObjectReader::readValue(const json& v, const std::string& path, RedisConfig& out) {
    ObjectReader r(v, path);
    r.read("addresses", out.addresses);
    r.read("password", out.password);
    r.read("db", out.db);
    r.read("prefix", out.prefix);
    r.read("connect_timeout", out.connect_timeout);
    r.read("command_timeout", out.command_timeout);
    r.read("sentinel", out.sentinel);
    r.rejectUnknownKeys();
    bool prefixOk =
        !out.prefix.empty() && out.prefix.size() <= 64 && std::all_of(out.prefix.begin(), out.prefix.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
        });
    if (!prefixOk) fail(join(path, "prefix"), "must be 1 to 64 letters, digits or _.-");
    if (out.connect_timeout.count() <= 0) fail(join(path, "connect_timeout"), "must be positive");
    if (out.command_timeout.count() <= 0) fail(join(path, "command_timeout"), "must be positive");
}

void ObjectReader::readValue(const json& v, const std::string& path, std::map<std::string, NamespaceConfig>& out) {
    if (!v.is_object()) fail(path, "expected an object of namespace name → options");
    out.clear();
    for (const auto& [name, options] : v.items()) {
        if (!isValidNamespaceName(name)) fail(join(path, name), "invalid namespace name");
        readValue(options, join(path, name), out[name]);
    }
}

void ObjectReader::readValue(const json& v, const std::string& path, WebhookEndpointConfig& out) {
    ObjectReader r(v, path);
    r.read("url", out.url);
    r.read("events", out.events);
    r.read("secret", out.secret);
    r.rejectUnknownKeys();
    if (!parseWebhookUrl(out.url))
        fail(join(path, "url"),
             "expected an http:// or https:// URL (e.g. https://backend.example.com/wspush), got \"" + out.url + "\"");
    if (out.events.empty()) fail(join(path, "events"), "must name at least one event");
    std::set<std::string> names;
    for (std::size_t i = 0; i < out.events.size(); ++i) {
        std::string where = join(path, "events") + "[" + std::to_string(i) + "]";
        bool known = std::find(std::begin(kWebhookEventNames), std::end(kWebhookEventNames), out.events[i]) !=
                     std::end(kWebhookEventNames);
        if (!known)
            fail(where, "unknown event \"" + out.events[i] +
                            "\"; expected user_online, user_offline, channel_occupied, channel_vacated, member_added, "
                            "member_removed or message_unacked");
        if (!names.insert(out.events[i]).second) fail(where, "names an event twice");
    }
    if (out.secret.empty()) fail(join(path, "secret"), "must not be empty");
}

void ObjectReader::readValue(const json& v, const std::string& path, std::vector<WebhookEndpointConfig>& out) {
    if (!v.is_array()) fail(path, "expected an array of {\"url\", \"events\", \"secret\"} objects");
    out.clear();
    for (std::size_t i = 0; i < v.size(); ++i)
        readValue(v[i], path + "[" + std::to_string(i) + "]", out.emplace_back());
}

void ObjectReader::readValue(const json& v, const std::string& path, WebhooksConfig& out) {
    ObjectReader r(v, path);
    r.read("endpoints", out.endpoints);
    r.read("timeout", out.timeout);
    r.read("retry_for", out.retry_for);
    r.read("offline_grace", out.offline_grace);
    r.read("unacked_after", out.unacked_after);
    r.read("max_queue", out.max_queue);
    r.read("max_batch", out.max_batch);
    r.read("tls_verify", out.tls_verify);
    r.rejectUnknownKeys();
    if (out.timeout.count() <= 0) fail(join(path, "timeout"), "must be positive");
    if (out.retry_for.count() <= 0) fail(join(path, "retry_for"), "must be positive");
    if (out.unacked_after.count() <= 0) fail(join(path, "unacked_after"), "must be positive");
    if (out.max_queue == 0) fail(join(path, "max_queue"), "must be positive");
    if (out.max_batch == 0 || out.max_batch > 10000) fail(join(path, "max_batch"), "must be 1 to 10000");
}

void ObjectReader::readValue(const json& v, const std::string& path, LimitsConfig& out) {
    ObjectReader r(v, path);
    r.read("connections_per_node", out.connections_per_node);
    r.read("connections_per_user", out.connections_per_user);
    r.read("connections_per_ip", out.connections_per_ip);
    r.read("connects_per_second_per_ip", out.connects_per_second_per_ip);
    r.read("commands_per_second", out.commands_per_second);
    r.read("commands_burst", out.commands_burst);
    r.read("history_reads_per_second", out.history_reads_per_second);
    r.read("presence_reads_per_second", out.presence_reads_per_second);
    r.read("max_header_bytes", out.max_header_bytes);
    r.read("max_url_bytes", out.max_url_bytes);
    r.rejectUnknownKeys();
    // A browser's upgrade request with its cookies needs a few KiB; below 1 KiB nothing real gets in.
    if (out.max_header_bytes < 1024 || out.max_header_bytes > 1024 * 1024)
        fail(join(path, "max_header_bytes"), "must be 1024 to 1048576");
    // Above max_header_bytes it changes nothing: the target is part of the header block.
    if (out.max_url_bytes < 256 || out.max_url_bytes > 1024 * 1024)
        fail(join(path, "max_url_bytes"), "must be 256 to 1048576");
}

void ObjectReader::readValue(const json& v, const std::string& path, ShutdownConfig& out) {
    ObjectReader r(v, path);
    r.read("timeout", out.timeout);
    r.read("drain_rate", out.drain_rate);
    r.rejectUnknownKeys();
}

void ObjectReader::readValue(const json& v, const std::string& path, TlsConfig& out) {
    ObjectReader r(v, path);
    r.read("cert", out.cert);
    r.read("key", out.key);
    r.read("min_version", out.min_version);
    r.rejectUnknownKeys();
    if (out.cert.empty() != out.key.empty())
        fail(join(path, out.cert.empty() ? "cert" : "key"), "tls.cert and tls.key go together: set both or neither");
    if (out.min_version != "1.2" && out.min_version != "1.3")
        fail(join(path, "min_version"), "must be \"1.2\" or \"1.3\"");
}

void ObjectReader::readValue(const json& v, const std::string& path, ProxyConfig& out) {
    ObjectReader r(v, path);
    std::vector<std::string> trusted;
    r.read("trusted", trusted);
    r.rejectUnknownKeys();
    out.trusted.clear();
    for (std::size_t i = 0; i < trusted.size(); ++i) {
        auto network = parseIpNetwork(trusted[i]);
        if (!network)
            fail(join(path, "trusted") + "[" + std::to_string(i) + "]",
                 "expected an IP address or a network in CIDR notation (e.g. \"127.0.0.1\", \"10.0.0.0/8\", "
                 "\"fd00::/8\"), got \"" +
                     trusted[i] + "\"");
        out.trusted.push_back(*network);
    }
}

Config readConfig(const json& document) {
    Config c;
    ObjectReader r(document, "");
    r.read("node_name", c.node_name);
    r.read("threads", c.threads);
    r.read("listen", c.listen);
    r.read("reuse_port", c.reuse_port);
    r.read("api", c.api);
    r.read("websocket", c.websocket);
    r.read("client", c.client);
    r.read("inbox", c.inbox);
    r.read("sessions", c.sessions);
    r.read("qos", c.qos);
    r.read("channel_defaults", c.channel_defaults);
    r.read("namespaces", c.namespaces);
    // The key before the drain had a rate: say where it went rather than only "unknown key".
    if (document.contains("shutdown_timeout")) fail("shutdown_timeout", "moved to shutdown.timeout");
    r.read("shutdown", c.shutdown);
    r.read("presence_ttl", c.presence_ttl);
    r.read("static_files", c.static_files);
    r.read("admin", c.admin);
    r.read("log", c.log);
    r.read("engine", c.engine);
    r.read("redis", c.redis);
    r.read("webhooks", c.webhooks);
    r.read("limits", c.limits);
    r.read("tls", c.tls);
    r.read("proxy", c.proxy);
    r.rejectUnknownKeys();
    if (c.engine != "memory" && c.engine != "redis") fail("engine", "must be \"memory\" or \"redis\"");
    if (c.engine == "redis" && !c.redis.sentinel && c.redis.addresses.empty())
        fail("redis.addresses", "must name at least one Redis (\"host:port\") when engine is \"redis\"");
    // Processes sharing a port are nodes of one cluster; on the memory engine each would deliver
    // only its own publications, and a client would see what reached the process it landed on.
    if (c.reuse_port && c.engine == "memory")
        fail("reuse_port",
             "needs engine \"redis\": processes sharing a port on the memory engine would not see each "
             "other's publications");
    // Entries are refreshed every third of it: a shorter one would be refreshed more than once a second.
    if (c.presence_ttl.count() < 3) fail("presence_ttl", "must be at least 3 seconds");
    // Subscription interest is a 64-bit mask of event loops (see ChannelRouter).
    if (c.threads > 64) fail("threads", "must be at most 64");
    if (c.websocket.path.size() > c.limits.max_url_bytes)
        fail("websocket.path", "must be at most limits.max_url_bytes long");
    return c;
}

// The leaves an environment variable may override. Objects that are maps (namespaces) and lists
// (api.keys) are leaves too: their variable holds JSON.
struct Overridable {
    const char* path;
    bool isString;
};
constexpr Overridable kOverridable[] = {
    {"node_name", true},
    {"threads", false},
    {"listen", true},
    {"reuse_port", false},
    {"api.listen", true},
    {"api.keys", false},
    {"api.max_body_size", false},
    {"api.idempotency_window", false},
    {"api.idempotency_max_entries", false},
    {"websocket.path", true},
    {"websocket.max_message_size", false},
    {"websocket.ping_interval", false},
    {"websocket.pong_timeout", false},
    {"websocket.connect_timeout", false},
    {"websocket.handshake_timeout", false},
    {"websocket.write_queue_max_bytes", false},
    {"websocket.write_queue_max_frames", false},
    {"websocket.max_subscriptions", false},
    {"websocket.allowed_origins", false},
    {"websocket.write_delay", false},
    {"websocket.compression.enabled", false},
    {"websocket.compression.level", false},
    {"websocket.compression.window_bits", false},
    {"websocket.compression.mem_level", false},
    {"websocket.compression.threshold", false},
    {"websocket.compression.context_takeover", false},
    {"client.allow_anonymous", false},
    {"client.trust_client_user", false},
    {"client.user_status", false},
    {"client.token.hmac_secrets", false},
    {"client.token.public_keys", false},
    {"client.token.jwks_file", true},
    {"client.token.audience", true},
    {"client.token.issuer", true},
    {"client.token.require_exp", false},
    {"client.token.leeway", false},
    {"inbox.max_messages", false},
    {"inbox.max_bytes", false},
    {"inbox.ttl", false},
    {"inbox.new_device_backlog", false},
    {"inbox.device_ttl", false},
    {"sessions.ttl", false},
    {"sessions.max_queued", false},
    {"qos.ack_timeout", false},
    {"qos.max_redeliveries", false},
    {"qos.max_inflight", false},
    {"channel_defaults", false},
    {"namespaces", false},
    {"shutdown.timeout", false},
    {"shutdown.drain_rate", false},
    {"presence_ttl", false},
    {"static_files.root", true},
    {"admin.console", false},
    {"log.level", true},
    {"log.format", true},
    {"engine", true},
    {"redis.addresses", false},
    {"redis.password", true},
    {"redis.db", false},
    {"redis.prefix", true},
    {"redis.connect_timeout", false},
    {"redis.command_timeout", false},
    {"redis.sentinel.addresses", false},
    {"redis.sentinel.master_names", false},
    {"webhooks.endpoints", false},
    {"webhooks.timeout", false},
    {"webhooks.retry_for", false},
    {"webhooks.offline_grace", false},
    {"webhooks.unacked_after", false},
    {"webhooks.max_queue", false},
    {"webhooks.max_batch", false},
    {"webhooks.tls_verify", false},
    {"limits.connections_per_node", false},
    {"limits.connections_per_user", false},
    {"limits.connections_per_ip", false},
    {"limits.connects_per_second_per_ip", false},
    {"limits.commands_per_second", false},
    {"limits.commands_burst", false},
    {"limits.history_reads_per_second", false},
    {"limits.presence_reads_per_second", false},
    {"limits.max_header_bytes", false},
    {"limits.max_url_bytes", false},
    {"tls.cert", true},
    {"tls.key", true},
    {"tls.min_version", true},
    {"proxy.trusted", false},
};

std::string environmentName(std::string_view path) {
    std::string name = "WSPUSH_";
    for (char ch : path) name += ch == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    return name;
}

void applyEnvironment(json& document, EnvLookup getenv) {
    for (const auto& leaf : kOverridable) {
        std::string variable = environmentName(leaf.path);
        const char* raw = getenv(variable.c_str());
        if (raw == nullptr) continue;
        json value;
        if (leaf.isString) {
            value = std::string(raw);
        } else {
            BoundedJson<json> parsed = parseBoundedJson<json>(raw);
            if (parsed.error == JsonParseError::TooDeep)
                fail(leaf.path, ("environment variable " + variable + ": ").append(kJsonTooDeep));
            if (parsed.error == JsonParseError::Malformed)
                fail(leaf.path, "environment variable " + variable + " is not valid JSON");
            value = std::move(parsed.value);
        }
        json* node = &document;
        std::string_view rest = leaf.path;
        for (auto dot = rest.find('.'); dot != std::string_view::npos; dot = rest.find('.')) {
            json& child = (*node)[std::string(rest.substr(0, dot))];
            if (child.is_null()) child = json::object();
            // Without this, operator[] below throws a type_error that names no path.
            if (!child.is_object()) fail(std::string(leaf.path, rest.data() + dot), "expected an object");
            node = &child;
            rest.remove_prefix(dot + 1);
        }
        (*node)[std::string(rest)] = std::move(value);
    }
}

}  // namespace

std::optional<Endpoint> parseEndpoint(std::string_view text, EndpointHost kind) {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) return std::nullopt;
    std::string_view host = text.substr(0, colon);
    std::string_view port = text.substr(colon + 1);
    if (host.front() == '[') {
        if (host.back() != ']' || host.size() < 3) return std::nullopt;
        host = host.substr(1, host.size() - 2);
    }
    if (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return std::nullopt;
    unsigned value = std::stoul(std::string(port));
    if (value > 65535) return std::nullopt;
    // An address to bind is not a name to resolve: "localhost" would only fail at startup.
    unsigned char address[sizeof(in6_addr)];
    std::string hostText(host);
    bool isAddress =
        inet_pton(AF_INET, hostText.c_str(), address) == 1 || inet_pton(AF_INET6, hostText.c_str(), address) == 1;
    bool isName =
        kind == EndpointHost::NameOrAddress && host.size() <= 253 && std::all_of(host.begin(), host.end(), [](char c) {
            return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
                   c == '_';
        });
    if (!isAddress && !isName) return std::nullopt;
    return Endpoint{std::string(host), static_cast<unsigned short>(value)};
}

std::optional<IpNetwork> parseIpNetwork(std::string_view text) {
    auto slash = text.find('/');
    std::string address(text.substr(0, slash));
    // inet_pton reads up to a NUL: "127.0.0.1\u0000junk" would pass as 127.0.0.1.
    if (address.find('\0') != std::string::npos) return std::nullopt;
    IpNetwork network;
    if (inet_pton(AF_INET, address.c_str(), network.bytes.data()) == 1) {
        network.prefix_length = 32;
    } else if (inet_pton(AF_INET6, address.c_str(), network.bytes.data()) == 1) {
        network.v6 = true;
        network.prefix_length = 128;
    } else {
        return std::nullopt;
    }
    if (slash != std::string_view::npos) {
        std::string_view length = text.substr(slash + 1);
        if (length.empty() || length.size() > 3 ||
            !std::all_of(length.begin(), length.end(), [](char c) { return c >= '0' && c <= '9'; }))
            return std::nullopt;
        unsigned value = std::stoul(std::string(length));
        if (value > network.prefix_length) return std::nullopt;
        network.prefix_length = value;
    }
    // Peers are compared as IPv4 once unmapped, so "::ffff:10.0.0.0/104" must be 10.0.0.0/8 to match them.
    static constexpr unsigned char kV4MappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (network.v6 && network.prefix_length >= 96 &&
        std::equal(std::begin(kV4MappedPrefix), std::end(kV4MappedPrefix), network.bytes.begin())) {
        std::copy(network.bytes.begin() + 12, network.bytes.end(), network.bytes.begin());
        std::fill(network.bytes.begin() + 4, network.bytes.end(), 0);
        network.v6 = false;
        network.prefix_length -= 96;
    }
    // Host bits are ignored: equal networks compare equal, and contains() masks only the address.
    for (unsigned bit = network.prefix_length; bit < network.bytes.size() * 8; ++bit)
        network.bytes[bit / 8] &= static_cast<unsigned char>(~(0x80u >> (bit % 8)));
    return network;
}

bool IpNetwork::contains(bool addressIsV6, const unsigned char* address) const {
    if (addressIsV6 != v6) return false;
    unsigned whole = prefix_length / 8;
    if (!std::equal(bytes.begin(), bytes.begin() + whole, address)) return false;
    unsigned rest = prefix_length % 8;
    if (rest == 0) return true;
    auto mask = static_cast<unsigned char>(0xff00u >> rest);
    return (address[whole] & mask) == bytes[whole];
}

std::optional<WebhookUrl> parseWebhookUrl(std::string_view text) {
    auto lowered = [](std::string_view s) {
        std::string out(s);
        for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return out;
    };
    WebhookUrl url;
    std::string_view rest;
    if (lowered(text.substr(0, 7)) == "http://") {
        rest = text.substr(7);
    } else if (lowered(text.substr(0, 8)) == "https://") {
        url.tls = true;
        url.port = 443;
        rest = text.substr(8);
    } else {
        return std::nullopt;
    }
    // What goes into the request line and Host header verbatim must not be able to split them.
    bool printable = std::all_of(rest.begin(), rest.end(), [](char c) {
        return static_cast<unsigned char>(c) > 0x20 && static_cast<unsigned char>(c) < 0x7f;
    });
    if (!printable || rest.find('#') != std::string_view::npos) return std::nullopt;
    auto pathStart = rest.find_first_of("/?");
    std::string_view authority = rest.substr(0, pathStart);
    if (pathStart != std::string_view::npos) {
        url.target = std::string(rest.substr(pathStart));
        if (url.target.front() == '?') url.target.insert(0, "/");
    }
    // Credentials belong in the signature's secret, not in a URL that ends up in logs.
    if (authority.empty() || authority.find('@') != std::string_view::npos) return std::nullopt;
    std::string_view host = authority;
    std::string_view port;
    if (authority.front() == '[') {
        auto close = authority.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        host = authority.substr(1, close - 1);
        std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return std::nullopt;
            port = after.substr(1);
            if (port.empty()) return std::nullopt;
        }
        unsigned char address[sizeof(in6_addr)];
        if (inet_pton(AF_INET6, std::string(host).c_str(), address) != 1) return std::nullopt;
    } else {
        auto colon = authority.find(':');
        if (colon != std::string_view::npos) {
            host = authority.substr(0, colon);
            port = authority.substr(colon + 1);
            if (port.empty()) return std::nullopt;
        }
        bool isName = !host.empty() && host.size() <= 253 && std::all_of(host.begin(), host.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
        });
        if (!isName) return std::nullopt;
    }
    if (!port.empty()) {
        if (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
            return std::nullopt;
        unsigned value = std::stoul(std::string(port));
        if (value == 0 || value > 65535) return std::nullopt;
        url.port = static_cast<unsigned short>(value);
    }
    url.host = std::string(host);
    return url;
}

std::string WebhookUrl::describe() const {
    std::string path = target.substr(0, target.find('?'));
    return (tls ? "https://" : "http://") + hostHeader() + path;
}

std::string WebhookUrl::hostHeader() const {
    std::string name = host.find(':') == std::string::npos ? host : "[" + host + "]";
    bool defaultPort = port == (tls ? 443 : 80);
    return defaultPort ? name : name + ":" + std::to_string(port);
}

std::optional<Origin> parseOrigin(std::string_view text, OriginSyntax syntax) {
    auto lower = [](std::string_view s) {
        std::string out(s);
        for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return out;
    };
    auto isDigit = [](char c) { return c >= '0' && c <= '9'; };
    auto schemeEnd = text.find("://");
    if (schemeEnd == std::string_view::npos || schemeEnd == 0) return std::nullopt;
    Origin origin;
    origin.scheme = lower(text.substr(0, schemeEnd));
    bool schemeOk = std::isalpha(static_cast<unsigned char>(origin.scheme[0])) &&
                    std::all_of(origin.scheme.begin(), origin.scheme.end(), [](char c) {
                        return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
                    });
    if (!schemeOk) return std::nullopt;
    std::string_view authority = text.substr(schemeEnd + 3);
    std::string_view host = authority;
    std::string_view port;
    if (!authority.empty() && authority.front() == '[') {
        auto close = authority.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        host = authority.substr(0, close + 1);
        std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return std::nullopt;
            port = after.substr(1);
            if (port.empty()) return std::nullopt;
        }
        unsigned char address[sizeof(in6_addr)];
        if (inet_pton(AF_INET6, std::string(host.substr(1, host.size() - 2)).c_str(), address) != 1)
            return std::nullopt;
    } else {
        auto colon = authority.find(':');
        if (colon != std::string_view::npos) {
            host = authority.substr(0, colon);
            port = authority.substr(colon + 1);
            if (port.empty()) return std::nullopt;
        }
        if (syntax == OriginSyntax::Pattern && host.starts_with("*.")) {
            origin.anySubdomain = true;
            host.remove_prefix(2);
            // "*.com" would let in every site under a public suffix: a pattern names a domain.
            if (host.find('.') == std::string_view::npos) return std::nullopt;
        }
        // No path, user info or query: an Origin header has none, and a pattern that had one
        // would never match.
        bool isName = !host.empty() && host.size() <= 253 && host.front() != '.' && host.back() != '.' &&
                      std::all_of(host.begin(), host.end(), [](char c) {
                          return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
                      });
        if (!isName) return std::nullopt;
    }
    origin.host = lower(host);
    if (!port.empty()) {
        if (port.size() > 5 || !std::all_of(port.begin(), port.end(), isDigit)) return std::nullopt;
        unsigned value = std::stoul(std::string(port));
        if (value == 0 || value > 65535) return std::nullopt;
        origin.port = static_cast<unsigned short>(value);
    } else if (origin.scheme == "http" || origin.scheme == "ws") {
        origin.port = 80;
    } else if (origin.scheme == "https" || origin.scheme == "wss") {
        origin.port = 443;
    }
    return origin;
}

const NamespaceConfig* Config::namespaceFor(std::string_view channel) const {
    auto ns = channelNamespace(channel);
    if (ns.empty()) return &channel_defaults;
    auto it = namespaces.find(std::string(ns));
    return it == namespaces.end() ? nullptr : &it->second;
}

ConfigResult parseConfig(const std::string& text, EnvLookup getenv) {
    try {
        json document = json::object();
        if (!text.empty()) {
            BoundedJson<json> parsed = parseBoundedJson<json>(text, /*ignoreComments=*/true);
            if (parsed.error == JsonParseError::TooDeep)
                return {std::nullopt, ConfigError{"", std::string(kJsonTooDeep)}};
            if (parsed.error == JsonParseError::Malformed)
                return {std::nullopt, ConfigError{"", "the file is not valid JSON"}};
            document = std::move(parsed.value);
        }
        if (!document.is_object()) return {std::nullopt, ConfigError{"", "the top level must be an object"}};
        applyEnvironment(document, getenv);
        return {readConfig(document), std::nullopt};
    } catch (const Invalid& invalid) {
        return {std::nullopt, invalid.error};
    } catch (const json::exception& e) {  // e.g. an integer too large for its field
        return {std::nullopt, ConfigError{"", e.what()}};
    }
}

std::vector<std::string> configEnvironmentVariables() {
    std::vector<std::string> names;
    for (const auto& leaf : kOverridable) names.push_back(environmentName(leaf.path));
    return names;
}

}  // namespace wspush
