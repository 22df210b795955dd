#include "server.h"

#include <unistd.h>

#include <csignal>
#include <fstream>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

#include "api/static_files.h"
#include "base/clock.h"
#include "base/random.h"
#include "engine/memory/memory_broker.h"
#include "engine/memory/memory_inbox_store.h"
#include "engine/memory/memory_presence_store.h"
#include "engine/memory/memory_webhook_stream.h"
#include "engine/redis/redis_broker.h"
#include "engine/redis/redis_inbox_store.h"
#include "engine/redis/redis_presence_store.h"
#include "engine/redis/redis_webhook_stream.h"

namespace wspush {

namespace net = boost::asio;

namespace {

std::string hostName() {
    char name[256] = {};
    if (gethostname(name, sizeof name - 1) != 0) return "wspush";
    return name;
}

// A node tells the others it is alive this often, and is forgotten this long after its last word.
constexpr std::chrono::seconds kHeartbeatInterval{5};
constexpr std::chrono::seconds kHeartbeatTtl{15};
constexpr std::chrono::milliseconds kHeartbeatRetry{200};

// "Address already in use" is what a second process on a port meets: say how processes share one.
std::string listenFailure(const boost::system::error_code& ec) {
    if (ec != net::error::address_in_use) return ec.message();
    return ec.message() + " (processes share a port only when each sets reuse_port and runs as the same user)";
}

std::chrono::milliseconds millis(Seconds seconds) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(seconds);
}

RedisAddress redisAddress(const Endpoint& endpoint) {
    return RedisAddress{endpoint.host, endpoint.port};
}

// The engine `engine` names: the one place that chooses (docs/engines.md).
NodeEngine makeEngine(const Config& config, const std::string& nodeName) {
    // A fresh instance id per run: a restarted node never reuses the mids and epochs it made.
    std::string instanceId = randomHex(4);
    auto clock = [] { return Clock::system().unixMillis(); };
    if (config.engine != "redis")
        return NodeEngine{std::make_unique<MemoryBroker>(instanceId, clock),
                          std::make_unique<MemoryPresenceStore>(clock), std::make_unique<MemoryInboxStore>(clock),
                          std::make_unique<MemoryWebhookStream>(config.webhooks.max_queue)};

    const RedisConfig& redis = config.redis;
    RedisBrokerOptions options;
    if (redis.sentinel) {
        std::vector<RedisAddress> sentinels;
        for (const Endpoint& sentinel : redis.sentinel->addresses) sentinels.push_back(redisAddress(sentinel));
        for (const std::string& master : redis.sentinel->master_names) {
            // Member by member: GCC 12 at -O3 takes the aggregate's `{}` address for uninitialized.
            RedisShardOptions& shard = options.shards.emplace_back();
            shard.name = master;
            shard.sentinel = RedisSentinelShard{sentinels, master};
        }
    } else {
        for (const Endpoint& address : redis.addresses)
            options.shards.push_back(
                RedisShardOptions{redisAddress(address).describe(), redisAddress(address), std::nullopt});
    }
    options.password = redis.password;
    options.db = static_cast<int>(redis.db);
    options.prefix = redis.prefix;
    options.connectTimeout = millis(redis.connect_timeout);
    options.commandTimeout = millis(redis.command_timeout);
    auto broker = std::make_unique<RedisBroker>(std::move(options), instanceId, clock);
    auto presence = std::make_unique<RedisPresenceStore>(*broker, clock);
    auto inbox = std::make_unique<RedisInboxStore>(*broker, clock);
    // The node's name is its reader's name in the stream: a node back under its name sends what it had taken.
    auto webhooks = std::make_unique<RedisWebhookStream>(*broker, nodeName, config.webhooks.max_queue);
    return NodeEngine{std::move(broker), std::move(presence), std::move(inbox), std::move(webhooks)};
}

std::string nodeNameOf(const Config& config) {
    return config.node_name.empty() ? hostName() : config.node_name;
}

unsigned loopCount(const Config& config) {
    if (config.threads != 0) return config.threads;
    return std::max(1u, std::min(64u, std::thread::hardware_concurrency()));
}

}  // namespace

Server::Server(Config config, ServerOptions options)
    : options_(std::move(options)),
      node_(config, nodeNameOf(config), makeEngine(config, nodeNameOf(config))),
      api_(node_),
      origins_(config.websocket.allowed_origins),
      loops_(loopCount(config)),
      signals_(loops_.at(0).context(), SIGTERM, SIGINT, SIGHUP),
      drainTimer_(loops_.at(0).context()),
      heartbeatTimer_(loops_.at(0).context()),
      presenceTimer_(loops_.at(0).context()) {
    node_.attach(loops_);
    if (!config.webhooks.endpoints.empty()) {
        webhooks_ = std::make_unique<WebhookPipeline>(node_, loops_.at(0).context());
        api_.addMetrics([webhooks = webhooks_.get()] { return webhooks->metrics(); });
    }
    auto window = std::chrono::duration_cast<std::chrono::steady_clock::duration>(config.websocket.write_delay);
    for (EventLoop* loop : loops_.all()) loop->setDeliveryWindow(window);
}

Server::~Server() {
    loops_.stop();
    loops_.join();
    node_.stopEngine();  // when run() did not: the loops are gone, it stops inline
    // Sessions own timers of the loops' io_contexts: they go while those still exist.
    node_.sessions().clear();
}

bool Server::open() {
    const Config& config = node_.config();
    auto credentials = loadCredentials(config);
    if (auto* problem = std::get_if<ConfigError>(&credentials)) {
        spdlog::critical("invalid config: {}", problem->describe());
        return false;
    }
    node_.credentials().replace(std::get<Credentials>(std::move(credentials)));
    SessionMode mode = options_.echo ? SessionMode::Echo : SessionMode::Protocol;
    if (!config.static_files.root.empty()) {
        auto files = StaticFiles::load(config.static_files.root);
        if (auto* problem = std::get_if<std::string>(&files)) {
            spdlog::critical("cannot serve static_files.root: {}", *problem);
            return false;
        }
        auto loaded = std::make_shared<const StaticFiles>(std::move(std::get<StaticFiles>(files)));
        spdlog::info("serving {} static files from {}", loaded->fileCount(), config.static_files.root);
        api_.serveStaticFiles(std::move(loaded));
    }
    if (config.tls.enabled()) {
        auto context = loadTlsContext(config.tls);
        if (auto* problem = std::get_if<std::string>(&context)) {
            spdlog::critical("cannot serve TLS: {}", *problem);
            return false;
        }
        tls_ = std::make_unique<TlsContextStore>(std::get<std::shared_ptr<TlsContext>>(std::move(context)));
    }
    bool separateApi = config.api.listen.has_value();
    publicListener_ = std::make_shared<Listener>(node_, api_, origins_, tls_.get(), loops_, loops_.at(0),
                                                 ListenerRoutes{true, !separateApi}, mode);
    boost::system::error_code ec;
    if (!publicListener_->open(config.listen, config.reuse_port, ec)) {
        spdlog::critical("cannot listen on {}:{}: {}", config.listen.host, config.listen.port, listenFailure(ec));
        return false;
    }
    if (separateApi) {
        // Plain: the API listens where only backends reach it (docs/security.md).
        apiListener_ = std::make_shared<Listener>(node_, api_, origins_, nullptr, loops_, loops_.at(0),
                                                  ListenerRoutes{false, true}, mode);
        if (!apiListener_->open(*config.api.listen, config.reuse_port, ec)) {
            spdlog::critical("cannot listen on {}:{} (api.listen): {}", config.api.listen->host,
                             config.api.listen->port, listenFailure(ec));
            return false;
        }
    }
    spdlog::info("wspush {} node \"{}\": {} event loops, engine {}", Node::version(), node_.name(), loops_.size(),
                 node_.engineName());
    spdlog::info("listening on {}:{}{}{} (WebSocket at {}{})", config.listen.host, publicListener_->port(),
                 tls_ ? " over TLS" : "", config.reuse_port ? ", port shared (reuse_port)" : "", config.websocket.path,
                 separateApi ? ", /healthz" : ", HTTP API");
    if (apiListener_) spdlog::info("HTTP API listening on {}:{}", config.api.listen->host, apiListener_->port());
    if (config.admin.console) {
        const Endpoint& where = apiListener_ ? *config.api.listen : config.listen;
        spdlog::info("admin console at /admin/ on {}:{}", where.host,
                     apiListener_ ? apiListener_->port() : publicListener_->port());
        // Its page is harmless without a key, but the API it drives should not face the internet.
        if (!apiListener_)
            spdlog::warn(
                "admin console on the public listener: set api.listen, or keep /admin from the internet "
                "at the proxy (docs/ops.md)");
    }
    if (config.api.keys.empty())
        spdlog::warn("no API key configured (api.keys): the HTTP API answers loopback clients only");
    if (options_.echo)
        spdlog::warn("ECHO MODE: {} echoes every message back and speaks no protocol; for conformance tests only",
                     config.websocket.path);
    return true;
}

int Server::run() {
    node_.startEngine();
    waitForSignal();
    publicListener_->start();
    if (apiListener_) apiListener_->start();
    net::post(loops_.at(0).context(), [this] {
        sendHeartbeat();
        refreshPresence();
        if (webhooks_) webhooks_->start();
    });
    writeReadyFile();  // the listeners are bound: clients wait in their backlogs for the loops
    loops_.run();      // until stop()
    loops_.join();
    node_.sessions().clear();
    spdlog::info("stopped");
    return 0;
}

void Server::reload() {
    if (!options_.reloadConfig) {
        spdlog::info("received SIGHUP: nothing to reload (no config file)");
        return;
    }
    spdlog::info("received SIGHUP: reloading API keys, token keys{}", tls_ ? " and the TLS certificate" : "");
    // A few small local files, read on loop 0: the pause is far below a Redis round trip.
    auto config = options_.reloadConfig();
    if (!config) return;  // reloadConfig logged why; everything current stays
    auto refuse = [](const std::string& why) {
        spdlog::error("reload refused, keeping the current keys and certificate: {}", why);
    };
    auto credentials = loadCredentials(*config);
    if (auto* problem = std::get_if<ConfigError>(&credentials)) return refuse(problem->describe());
    // The listener is plain or TLS for the process's life: the kind is chosen by the socket type.
    if (config->tls.enabled() != (tls_ != nullptr))
        return refuse(tls_ ? "tls.cert is gone: turning TLS off needs a restart"
                           : "tls.cert is set: turning TLS on needs a restart");
    std::shared_ptr<TlsContext> context;
    if (tls_) {
        auto loaded = loadTlsContext(config->tls);
        if (auto* problem = std::get_if<std::string>(&loaded)) return refuse(*problem);
        context = std::get<std::shared_ptr<TlsContext>>(std::move(loaded));
    }
    const auto& keys = std::get<Credentials>(credentials);
    spdlog::info("reloaded: {} API key(s), token verification {}{}", keys.apiKeys.size(), keys.tokens ? "on" : "off",
                 context ? ", TLS certificate " + config->tls.cert : "");
    node_.credentials().replace(std::get<Credentials>(std::move(credentials)));
    // New handshakes use it; connections made with the old certificate keep going.
    if (context) tls_->replace(std::move(context));
}

void Server::waitForSignal() {
    signals_.async_wait([this](boost::system::error_code ec, int signal) {
        if (ec) return;
        if (signal == SIGHUP) {
            reload();
        } else if (!shuttingDown_) {
            spdlog::info("received {}, draining connections (again to stop at once)",
                         signal == SIGTERM ? "SIGTERM" : "SIGINT");
            beginShutdown();
        } else {
            spdlog::warn("received {} while draining: stopping now", signal == SIGTERM ? "SIGTERM" : "SIGINT");
            return stop();
        }
        waitForSignal();
    });
}

void Server::beginShutdown() {
    if (shuttingDown_) return;
    shuttingDown_ = true;
    api_.beginDraining();  // load balancers stop sending clients here (/readyz)
    // The public listener stops: the load balancer sends new clients to the other nodes. A
    // separate API listener stays open until the process ends, so that probes see /readyz turn
    // false and backends' requests still succeed.
    publicListener_->stop();
    // Paced, so that a rolling restart does not send every client to the other nodes in the same
    // second; the last is told by half of the timeout, leaving the rest for close handshakes.
    const ShutdownConfig& shutdown = node_.config().shutdown;
    auto timeout = std::chrono::duration_cast<std::chrono::steady_clock::duration>(shutdown.timeout);
    auto now = std::chrono::steady_clock::now();
    auto closeBy = now + timeout / 2;
    double ratePerLoop = shutdown.drain_rate / static_cast<double>(loops_.size());
    NodeTotals totals = node_.totals();
    spdlog::info("draining {} WebSocket connections at {}", totals.websocketConnections,
                 shutdown.drain_rate > 0 ? fmt::format("{}/s or faster, all told within {:.1f} s", shutdown.drain_rate,
                                                       shutdown.timeout.count() / 2)
                                         : std::string("once"));
    for (std::size_t i = 0; i < loops_.size(); ++i) {
        EventLoop& loop = loops_.at(i);
        net::post(loop.context(), [&loop, ratePerLoop, closeBy] { loop.drainConnections(ratePerLoop, closeBy); });
    }
    checkDrained(now + timeout);
}

void Server::checkDrained(std::chrono::steady_clock::time_point deadline) {
    NodeTotals totals = node_.totals();
    std::uint64_t open = totals.websocketConnections + totals.httpConnections;
    if (open == 0 || std::chrono::steady_clock::now() >= deadline) {
        if (open > 0) spdlog::warn("shutdown.timeout reached with {} connections still open; closing them", open);
        return stop();
    }
    drainTimer_.expires_after(std::chrono::milliseconds(20));
    drainTimer_.async_wait([this, deadline](boost::system::error_code ec) {
        if (!ec) checkDrained(deadline);
    });
}

void Server::stop() {
    if (stopping_) return;  // the drain deadline and a second signal may both get here
    stopping_ = true;
    if (apiListener_) apiListener_->stop();
    drainTimer_.cancel();
    heartbeatTimer_.cancel();
    presenceTimer_.cancel();
    if (webhooks_) webhooks_->stop();
    // The engine lives on loop 0: it stops here, completing what is pending with errors, and
    // releases its connections in a handler it posts. The loops stop after that one: a post from
    // a loop's own thread to its own io_context keeps its order behind the earlier ones.
    node_.stopEngine();
    net::post(loops_.at(0).context(), [this] { loops_.stop(); });
}

void Server::sendHeartbeat() {
    const Config& config = node_.config();
    // Bound to every interface, the listener's own address reaches nothing: the host name does
    // (in a container, the name other containers resolve).
    const std::string& listen = config.listen.host;
    bool everywhere = listen == "0.0.0.0" || listen == "::" || listen.empty();
    bool v6 = !everywhere && listen.find(':') != std::string::npos;
    std::string host = everywhere ? hostName() : v6 ? "[" + listen + "]" : listen;
    NodeTotals totals = node_.totals();
    nlohmann::json info{{"address", host + ":" + std::to_string(publicListener_->port())},
                        {"version", Node::version()},
                        {"connections", totals.websocketConnections},
                        {"subscriptions", node_.subscriptions()},
                        {"uptime_s", std::chrono::duration_cast<std::chrono::seconds>(node_.uptime()).count()}};
    node_.heartbeat(NodeHeartbeat{node_.name(), info.dump()}, kHeartbeatTtl);
    // A heartbeat sent while a shard is unreachable is lost (the first one, sent before the engine
    // has connected, always is): until it lands the other nodes do not know this one, so retry soon.
    bool reachable = true;
    for (const EngineShardHealth& shard : node_.engineHealth()) reachable = reachable && shard.ok;
    heartbeatTimer_.expires_after(reachable ? kHeartbeatInterval : kHeartbeatRetry);
    heartbeatTimer_.async_wait([this](boost::system::error_code ec) {
        if (!ec && !stopping_) sendHeartbeat();
    });
}

void Server::refreshPresence() {
    for (std::size_t i = 0; i < loops_.size(); ++i)
        net::post(loops_.at(i).context(), [this, i] { node_.refreshPresence(static_cast<unsigned>(i)); });
    presenceTimer_.expires_after(
        std::chrono::duration_cast<std::chrono::milliseconds>(node_.config().presence_ttl / 3));
    presenceTimer_.async_wait([this](boost::system::error_code ec) {
        if (!ec && !stopping_) refreshPresence();
    });
}

void Server::writeReadyFile() const {
    if (options_.readyFile.empty()) return;
    nlohmann::json ready{{"pid", getpid()}, {"port", publicListener_->port()}};
    ready["api_port"] = apiListener_ ? apiListener_->port() : publicListener_->port();
    // Written under another name and renamed, so a reader never sees half a file.
    std::string temporary = options_.readyFile + ".tmp";
    std::ofstream(temporary) << ready.dump() << '\n';
    std::rename(temporary.c_str(), options_.readyFile.c_str());
}

}  // namespace wspush
