// The daemon assembled: event loops, the node and its engine, the listeners, signal handling
// and graceful shutdown. main.cpp builds one and runs it.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "api/http_api.h"
#include "node/event_loop.h"
#include "node/node.h"
#include "transport/listener.h"
#include "transport/origin_policy.h"
#include "transport/tls_context.h"
#include "webhooks/webhook_pipeline.h"
#include "wspush/config.h"

namespace wspush {

struct ServerOptions {
    bool echo = false;      // conformance mode (docs/protocol.md)
    std::string readyFile;  // written with the bound ports once listening (tests, scripts)
    // On SIGHUP: reads the configuration again (file and environment), or logs why it cannot and
    // returns nullopt. Unset: SIGHUP reloads nothing.
    std::function<std::optional<Config>()> reloadConfig;
};

class Server {
public:
    Server(Config config, ServerOptions options);
    ~Server();

    // Binds the listeners; false (after logging why) when one cannot be bound.
    bool open();
    // Serves until SIGTERM or SIGINT, drains, and returns the process's exit code.
    int run();

private:
    void waitForSignal();
    void stop();  // on loop 0: stops the engine, then the loops, and so lets run() return
    void beginShutdown();
    void checkDrained(std::chrono::steady_clock::time_point deadline);
    void writeReadyFile() const;
    // Every kHeartbeatInterval on loop 0: tells the cluster about this node (/api/nodes).
    void sendHeartbeat();
    // Every third of presence_ttl on loop 0: each loop adds its presence entries again.
    void refreshPresence();
    // SIGHUP: API keys, token keys and the TLS certificate from the configuration read again, all
    // or nothing (one that does not load keeps every current one); nothing else changes.
    void reload();

    ServerOptions options_;
    // Declaration order is destruction order reversed: the loops (and the connections their
    // handlers own) go before the node those connections use.
    Node node_;
    HttpApi api_;
    OriginPolicy origins_;                  // websocket.allowed_origins, read by every loop's upgrades
    std::unique_ptr<TlsContextStore> tls_;  // the public listener's, when tls.cert is set
    EventLoopPool loops_;
    std::shared_ptr<Listener> publicListener_;
    std::shared_ptr<Listener> apiListener_;
    std::unique_ptr<WebhookPipeline> webhooks_;  // when webhooks.endpoints is set
    boost::asio::signal_set signals_;
    boost::asio::steady_timer drainTimer_;
    boost::asio::steady_timer heartbeatTimer_;
    boost::asio::steady_timer presenceTimer_;
    bool shuttingDown_ = false;
    bool stopping_ = false;
};

}  // namespace wspush
