// The daemon's configuration: one aggregate with commented defaults, validated once at load.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wspush {

using Seconds = std::chrono::duration<double>;

// "host:port". Port 0 asks the kernel for an ephemeral port (tests).
struct Endpoint {
    std::string host = "0.0.0.0";
    unsigned short port = 8080;
};

inline constexpr std::size_t kMaxHistorySize = 100000;
inline constexpr std::size_t kMaxPresenceMembers = 100000;
inline constexpr Seconds kDefaultHistoryTtl{300};

// Who may subscribe to a namespace's channels (docs/security.md).
enum class SubscribePermission {
    Public,         // every connection, anonymous ones included
    Authenticated,  // connections with a user (from a token, or trusted)
    Token,          // connections presenting a subscription token for the channel
    UserLimited,    // channels named like "dialog:alice,bob": only the users listed after the ':'
};

// Per-namespace channel options (docs/configuration.md).
struct NamespaceConfig {
    SubscribePermission subscribe = SubscribePermission::Public;
    bool client_publish = false;      // may connected clients publish into these channels?
    std::size_t history_size = 0;     // publications kept per channel (0 = no history), at most kMaxHistorySize
    Seconds history_ttl{0};           // how long a publication stays in history; 0 with history: kDefaultHistoryTtl
    std::size_t recovery_max = 1000;  // most publications one subscribe with `since` may recover
    bool client_history = false;      // may clients read history (the `history` command)?
    bool presence = false;            // track who is subscribed (per connection)
    bool client_presence = false;     // may clients ask (the `presence` and `presence_stats` commands)?
    std::size_t presence_max_members = 1000;  // the most entries one presence list answers
    bool join_leave = false;                  // push join and leave to subscribers (needs presence)
    // Join and leave pushes stop while a channel has more members than this: each one reaches
    // every member, so their fan-out grows with the square of the members.
    std::size_t join_leave_max_members = 100;
    int default_qos = 0;  // QoS of a publication that names none (0, 1 or 2)
};

struct CompressionConfig {
    bool enabled = false;         // negotiate permessage-deflate when a client offers it
    int level = 1;                // zlib level 0..9: fast, push payloads are small
    int window_bits = 10;         // 9..15; 1 KiB windows keep per-connection memory low
    int mem_level = 4;            // 1..9; zlib's deflate state is ~2^(mem_level+9) bytes
    std::size_t threshold = 256;  // messages smaller than this are sent uncompressed
    // false: each message is compressed on its own, once for all its subscribers, and no
    // connection keeps a zlib state (plain connections); true: each connection compresses with
    // its own history, smaller for small alike messages, at a CPU and memory cost per connection.
    bool context_takeover = false;
};

struct WebSocketConfig {
    std::string path = "/ws";
    std::size_t max_message_size = 64 * 1024;         // larger incoming frames: close 1009
    Seconds ping_interval{25};                        // server ping frame period
    Seconds pong_timeout{10};                         // silence allowed past ping_interval before 4002
    Seconds connect_timeout{10};                      // time to send `connect` before 4003
    Seconds handshake_timeout{10};                    // HTTP upgrade + WebSocket handshake
    std::size_t write_queue_max_bytes = 1024 * 1024;  // past either bound: slow consumer, 4001
    std::size_t write_queue_max_frames = 4096;
    std::size_t max_subscriptions = 128;  // channels per connection
    // Browsers' `Origin` values allowed to upgrade, exact or with one leading wildcard label
    // ("https://*.example.com"); empty: every origin. A request without `Origin` (not a
    // browser) is always allowed.
    std::vector<std::string> allowed_origins;
    // Publications reaching a busy event loop (one that delivered less than this long ago) wait
    // this long for more to join them; each connection then writes everything it got in one
    // system call. An idle loop delivers at once; 0 never waits.
    Seconds write_delay{0.001};
    CompressionConfig compression;
};

// What an API key may do; a request needing a scope its key lacks gets 403 40302.
enum ApiScope : unsigned {
    kScopePublish = 1,  // publish, broadcast, send
    kScopeRead = 2,     // history, presence, users, inbox reads, /metrics
    kScopeAdmin = 4,    // disconnect, inbox deletion, the admin console
    kAllScopes = kScopePublish | kScopeRead | kScopeAdmin,
};

// One `api.keys` entry: `{"name","key","scopes":[…]}`, or a plain string (every scope, named by
// its position).
struct ApiKey {
    std::string name;  // for logs; never the key
    std::string key;   // at least 16 characters
    unsigned scopes = kAllScopes;
};

struct ApiConfig {
    // Empty: the HTTP API shares the public listener. Otherwise the API and /metrics listen here
    // only, and the public listener serves just the WebSocket path and /healthz.
    std::optional<Endpoint> listen;
    std::vector<ApiKey> keys;                 // accepted `Authorization: Bearer` keys; none: loopback only
    std::size_t max_body_size = 1024 * 1024;  // larger request bodies: 413
    // Idempotent publishing (docs/http-api.md): a keyed publish/broadcast response is remembered
    // this long after it was sent; a retry with the same key and body within it is answered with
    // the remembered response and publishes nothing.
    Seconds idempotency_window{600};
    // At most this many keys are remembered; past it the oldest completed one is forgotten first.
    // Requests still in flight are never forgotten (they may take the count past the cap).
    std::size_t idempotency_max_entries = 100000;
};

struct SessionConfig {
    Seconds ttl{120};                // how long a session outlives its connection, for resuming
    std::size_t max_queued = 10000;  // QoS ≥ 1 publications held beyond the inflight window
};

struct QosConfig {
    Seconds ack_timeout{10};        // first resend of an unacknowledged QoS ≥ 1 delivery
    unsigned max_redeliveries = 5;  // resends before the connection is closed as unhealthy (4005)
    std::size_t max_inflight = 64;  // unfinished QoS ≥ 1 deliveries per session
};

struct TokenHmacSecret {
    std::string kid;  // matched against the token's `kid`; "" for tokens without one
    std::string secret;
};

struct TokenPublicKey {
    std::string kid;  // matched against the token's `kid`; "" for tokens without one
    std::string pem_file;
};

// Connection and subscription tokens (JWT, docs/security.md). Keys and files are read again on
// SIGHUP, so keys rotate without a restart.
struct TokenConfig {
    std::vector<TokenHmacSecret> hmac_secrets;  // HS256/384/512
    std::vector<TokenPublicKey> public_keys;    // RS256/384/512, ES256/384 (PEM public keys)
    std::string jwks_file;                      // more public keys, as a JWK Set
    std::string audience;                       // set: `aud` must name it
    std::string issuer;                         // set: `iss` must equal it
    bool require_exp = true;                    // refuse tokens without `exp`
    Seconds leeway{5};                          // clock skew allowed on exp, nbf and iat
    bool enabled() const { return !hmac_secrets.empty() || !public_keys.empty() || !jwks_file.empty(); }
};

struct ClientConfig {
    bool allow_anonymous = false;    // accept `connect` without a token
    bool trust_client_user = false;  // accept the `user` a client names in `connect`
    bool user_status = false;        // may clients ask whether users are online (the `status` command)?
    TokenConfig token;
};

// What one client, one address or the whole node may use (docs/security.md, "Limits"). 0: no limit.
struct LimitsConfig {
    std::size_t connections_per_node = 0;    // past it: HTTP 503 before the upgrade
    std::size_t connections_per_user = 100;  // on this node; past it, `connect` gets error 106, close 4010
    // Off by default: behind a proxy every client has the proxy's address unless `proxy.trusted`
    // names the proxy (docs/security.md).
    std::size_t connections_per_ip = 0;     // past it: HTTP 429 42901 before the upgrade
    double connects_per_second_per_ip = 0;  // upgrades per second and address; past it: 429 42901
    double commands_per_second = 50;        // per connection (token bucket), QoS answers excluded
    std::size_t commands_burst = 200;       // the bucket's size; 0: 2 × commands_per_second
    double history_reads_per_second = 10;   // per connection
    double presence_reads_per_second = 10;  // per connection
    std::size_t max_header_bytes = 16384;   // of an HTTP request's headers (request line included): 431
    std::size_t max_url_bytes = 4096;       // of its target: 414
};

// Offline messages: the history of each user's personal channel, read per device
// (docs/protocol.md, "Offline messages").
struct InboxConfig {
    std::size_t max_messages = 1000;      // kept per user, the oldest dropped past it; 0: no inbox
    std::size_t max_bytes = 1024 * 1024;  // of message data kept per user, the oldest dropped past it
    Seconds ttl{7 * 24 * 3600};           // a message older than this expires
    std::size_t new_device_backlog = 0;   // how many of the latest messages a device never seen gets
    Seconds device_ttl{30 * 24 * 3600};   // a device not seen for this long is forgotten
};

// TLS on the public listener (wss:// and https://), for deployments without a proxy in front;
// nginx in front stays the recommended setup (docs/security.md). Both files are read again on
// SIGHUP, so a renewed certificate is served without a restart. api.listen stays plain.
// What SIGTERM/SIGINT does (docs/configuration.md, "Graceful shutdown").
struct ShutdownConfig {
    Seconds timeout{10};  // the longest drain; 0: exit as soon as the signal is handled
    // WebSocket connections told to go (and reconnect elsewhere) per second, faster when needed to
    // tell the last one by half of `timeout`; 0: all at once. Spreads the reconnects of a rolling
    // restart over time instead of sending every client to the other nodes in the same second.
    double drain_rate = 1000;
};

struct TlsConfig {
    std::string cert;                 // PEM: the certificate chain, leaf first; empty with `key`: no TLS
    std::string key;                  // PEM: the certificate's private key, unencrypted
    std::string min_version = "1.2";  // "1.2" or "1.3"
    bool enabled() const { return !cert.empty(); }
};

// An IP network in CIDR notation ("10.0.0.0/8", "2001:db8::/32"), or one address ("127.0.0.1",
// "::1"): one entry of proxy.trusted. Host bits below the prefix are ignored ("10.1.2.3/8" is
// 10.0.0.0/8), as nginx's set_real_ip_from does.
struct IpNetwork {
    bool v6 = false;
    std::array<unsigned char, 16> bytes{};  // network byte order; IPv4 in the first 4
    unsigned prefix_length = 0;             // 0–32 (IPv4), 0–128 (IPv6)

    // `address`: 4 bytes (IPv4) or 16 (IPv6), network byte order. An IPv4 network never contains
    // an IPv6 address, nor the other way round: callers unmap ::ffff:a.b.c.d first.
    bool contains(bool addressIsV6, const unsigned char* address) const;
};
std::optional<IpNetwork> parseIpNetwork(std::string_view text);

// The reverse proxies (nginx, a load balancer) whose X-Forwarded-For the daemon believes: from
// them, a client's address for the per-address limits, the API's loopback rule and the logs is
// the right-most forwarded address that is not itself a trusted proxy (docs/security.md, "Limits").
struct ProxyConfig {
    std::vector<IpNetwork> trusted;  // empty: trust nobody, every client is its TCP peer
};

// Files served over plain HTTP on the public listener, e.g. the SDK's demo page. Off when `root`
// is empty. The folder is read once at startup (so serving never blocks an event loop); restart
// to pick up changes.
struct StaticFilesConfig {
    std::string root;
};

// The admin console (docs/ops.md): static pages at /admin/ on the listener that serves the HTTP
// API, driving that API with an `admin`-scope key typed into the page. Off by default: it is one
// more surface to expose, and most deployments never need it.
struct AdminConfig {
    bool console = false;
};

struct LogConfig {
    std::string level = "info";   // trace, debug, info, warn, error, critical, off
    std::string format = "text";  // text or json (one object per line)
};

// Redis Sentinel (redis.sentinel): the shards are the masters Sentinel names, one name per shard.
struct RedisSentinelConfig {
    std::vector<Endpoint> addresses;        // Sentinel instances; at least one
    std::vector<std::string> master_names;  // one per shard, in shard order; at least one
};

// The Redis engine (engine "redis"), through which several nodes share channels, history and
// the cluster's view (docs/configuration.md).
struct RedisConfig {
    // One Redis per shard, "host:port" (a host name or an IP address); channels are spread over them by hash.
    // At least one when the engine is "redis" and there is no `sentinel`.
    std::vector<Endpoint> addresses;
    std::string password;                         // AUTH with it; empty: no AUTH
    unsigned db = 0;                              // SELECT this database
    std::string prefix = "wsp";                   // of every key and channel in Redis: 1 to 64 of [A-Za-z0-9_.-]
    Seconds connect_timeout{1};                   // to connect (and authenticate) to one Redis, then retry
    Seconds command_timeout{2};                   // a command unanswered this long fails (engine unavailable)
    std::optional<RedisSentinelConfig> sentinel;  // set: shards from Sentinel; `addresses` unused
};

// The events a backend may subscribe to (docs/webhooks.md). The order is WebhookEventKind's.
inline constexpr std::string_view kWebhookEventNames[] = {
    "user_online",  "user_offline",   "channel_occupied", "channel_vacated",
    "member_added", "member_removed", "message_unacked",
};

// One backend URL that receives signed batches of the events it names.
struct WebhookEndpointConfig {
    std::string url;                  // http:// or https://, see parseWebhookUrl
    std::vector<std::string> events;  // names from kWebhookEventNames; at least one, no repeats
    std::string secret;               // the HMAC-SHA256 key of X-Wspush-Signature; not empty
};

struct WebhooksConfig {
    // None: webhooks are off.
    std::vector<WebhookEndpointConfig> endpoints;
    Seconds timeout{5};              // one POST, from resolving the host to reading the answer
    Seconds retry_for{300};          // a batch whose oldest event waited this long is dropped after a failed attempt
    Seconds offline_grace{5};        // a user is offline when their last connection has been gone this long
    Seconds unacked_after{30};       // a QoS delivery unacknowledged this long is reported as message_unacked
    std::size_t max_queue = 100000;  // events waiting per endpoint; past it the newest are dropped
    std::size_t max_batch = 100;     // events per POST
    bool tls_verify = true;          // https: verify the receiver's certificate and host name (system CA store)
};

struct Config {
    std::string node_name;  // empty: the host name; unique among the nodes sharing an engine
    unsigned threads = 0;   // event loops; 0: one per core. At most 64.
    Endpoint listen;
    // SO_REUSEPORT on every listener (`listen`, and `api.listen` when set): several processes on
    // one host, nodes of one cluster, then share a port and the kernel spreads connections over
    // them. Only with the Redis engine: on the memory engine they would not see each other's
    // publications.
    bool reuse_port = false;
    ApiConfig api;
    WebSocketConfig websocket;
    ClientConfig client;
    InboxConfig inbox;
    SessionConfig sessions;
    QosConfig qos;
    NamespaceConfig channel_defaults;  // channels without a "ns:" prefix
    std::map<std::string, NamespaceConfig> namespaces;
    ShutdownConfig shutdown;
    Seconds presence_ttl{60};  // a presence entry its node stopped refreshing is gone after this; at least 3
    StaticFilesConfig static_files;
    AdminConfig admin;
    LogConfig log;
    std::string engine = "memory";  // "memory" (one node) or "redis" (several nodes, `redis`)
    RedisConfig redis;
    WebhooksConfig webhooks;
    LimitsConfig limits;
    TlsConfig tls;
    ProxyConfig proxy;

    // The options of `channel`'s namespace, or nullptr when its namespace is not configured.
    const NamespaceConfig* namespaceFor(std::string_view channel) const;
};

struct ConfigError {
    std::string path;  // JSON path of the offending key, e.g. "websocket.ping_interval"
    std::string message;
    std::string describe() const { return path.empty() ? message : path + ": " + message; }
};

// Parses `text` (a JSON document; may be empty for all defaults), applies overrides from the
// environment (`WSPUSH_<PATH>`, path upper-cased with '.' as '_', e.g. WSPUSH_WEBSOCKET_PING_INTERVAL)
// and validates. Unknown keys and wrong types are errors naming the key's path.
// `getenv` is injected so tests control the environment.
using EnvLookup = const char* (*)(const char*);
struct ConfigResult {
    std::optional<Config> config;
    std::optional<ConfigError> error;
};
ConfigResult parseConfig(const std::string& text, EnvLookup getenv);

// Every environment variable parseConfig consults, for documentation and --help.
std::vector<std::string> configEnvironmentVariables();

// "host:port" or "[v6]:port"; nullopt when malformed. An address to listen on must be an IP
// address; a server to connect to may be named (resolved when connecting).
enum class EndpointHost { Address, NameOrAddress };
std::optional<Endpoint> parseEndpoint(std::string_view text, EndpointHost kind = EndpointHost::Address);

// A webhook URL: "http://" or "https://", a host name, an IPv4 address or a bracketed IPv6
// address, an optional port and an optional path and query. No user info, no fragment, no spaces.
struct WebhookUrl {
    bool tls = false;
    std::string host;  // without brackets
    unsigned short port = 80;
    std::string target = "/";  // path and query, as sent in the request line
    // "https://host:port/path" without the query, which may hold a token: for logs.
    std::string describe() const;
    // The Host header: the port only when it is not the scheme's default.
    std::string hostHeader() const;
};
std::optional<WebhookUrl> parseWebhookUrl(std::string_view text);

// A browser origin (RFC 6454), "scheme://host[:port]": what an `Origin` header holds. As an
// OriginSyntax::Pattern the host may begin with the label "*" (websocket.allowed_origins: "https://*.example.com"
// stands for every name below example.com, at any depth, but not example.com itself). The scheme
// and host are lower-cased, the port is the scheme's default when absent (http, ws: 80; https,
// wss: 443; other schemes: 0, and then it must be written out to be matched).
struct Origin {
    std::string scheme;
    std::string host;  // a wildcard pattern: the part after "*."; an IPv6 address: with its brackets
    unsigned short port = 0;
    bool anySubdomain = false;
};
enum class OriginSyntax { Header, Pattern };
std::optional<Origin> parseOrigin(std::string_view text, OriginSyntax syntax = OriginSyntax::Header);

}  // namespace wspush
