// The HTTP API (docs/http-api.md): publish, broadcast, send, batch, history, disconnect, channels,
// info, nodes, health, readiness and metrics.
// Socket-free: HttpSession turns Beast requests into ApiRequest and writes the ApiResponse back.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "node/idempotency_cache.h"
#include "node/node.h"

namespace wspush {

// Which routes a listener serves (see ApiConfig::listen).
struct ListenerRoutes {
    bool websocket = true;  // the WebSocket path
    bool api = true;        // /api/* and /metrics
};

struct ApiRequest {
    std::string method;         // "GET", "POST", …
    std::string path;           // without the query string
    std::string query;          // after the '?', still percent-encoded; "" when none
    std::string authorization;  // the Authorization header, or ""
    std::string contentType;    // the Content-Type header, or ""
    std::string body;
    bool fromLoopback = false;
    // The Idempotency-Key header; nullopt when absent (then the body's "mid" is the key, if any).
    std::optional<std::string> idempotencyKey;
    // Runs `task` after `delay` on the connection's loop: the timeout of `"wait"`. Without it a
    // wait ends only when its acks arrive.
    std::function<void(std::chrono::milliseconds delay, std::function<void()> task)> after;
};

struct ApiResponse {
    unsigned status = 200;
    std::string body;
    std::string contentType = "application/json";
    std::string allow;         // for 405: the methods the path accepts
    std::string location;      // for redirects
    std::string cacheControl;  // static files
    bool wasPublish = false;   // the caller records publish latency for these
    bool replayed = false;     // another request's response, repeated: send Idempotency-Replayed: true
    // Any other header, name then value: the admin console's Content-Security-Policy and the like.
    std::vector<std::pair<std::string, std::string>> headers;
};

// Called exactly once, on any thread (engines may complete elsewhere); the caller dispatches.
using ApiRespond = std::function<void(ApiResponse)>;

class StaticFiles;

class HttpApi {
public:
    // `clock` drives the idempotency window (tests); default std::chrono::steady_clock::now.
    explicit HttpApi(Node& node, IdempotencyCache::Clock clock = {});

    void handle(const ApiRequest& request, const ListenerRoutes& routes, ApiRespond respond);

    // A JSON error body {"error":{"code":…,"message":…}}; the status is the code's first three digits.
    static ApiResponse error(ApiErrorCode code, std::string_view message);

    // Serves `files` on the public listener for GET/HEAD paths no route owns. Call before the
    // listeners start: handle() reads it from every loop without a lock.
    void serveStaticFiles(std::shared_ptr<const StaticFiles> files);
    // More of /metrics, in Prometheus's text format, from parts outside the node (webhooks).
    // Before serving; `render` runs on any thread.
    void addMetrics(std::function<std::string()> render) { extraMetrics_.push_back(std::move(render)); }

    // The server is shutting down: /readyz answers 503 "draining" from now on. Any thread.
    void beginDraining() { draining_.store(true, std::memory_order_relaxed); }
    // Since beginDraining: every response closes its connection. Any thread.
    bool draining() const { return draining_.load(std::memory_order_relaxed); }

private:
    // Checks the request's API key and that it has `scope` (an ApiScope): nullopt, or the refusal.
    std::optional<ApiResponse> authorize(const ApiRequest& request, unsigned scope) const;
    ApiResponse staticFile(const ApiRequest& request, const ListenerRoutes& routes) const;
    ApiResponse adminConsole(const ApiRequest& request) const;
    void publish(const ApiRequest& request, ApiRespond respond);
    void broadcast(const ApiRequest& request, ApiRespond respond);
    void send(const ApiRequest& request, ApiRespond respond);
    void batch(const ApiRequest& request, ApiRespond respond);
    void history(const ApiRequest& request, ApiRespond respond);
    // GET /api/presence and GET /api/presence/stats (`stats`).
    void presence(const ApiRequest& request, bool stats, ApiRespond respond);
    void disconnect(const ApiRequest& request, ApiRespond respond);
    // GET /api/users/{id}, GET and DELETE /api/users/{id}/inbox, POST /api/users/status.
    void userRoute(const ApiRequest& request, ApiRespond respond);
    void userStatus(const std::string& user, ApiRespond respond);
    void usersStatus(const ApiRequest& request, ApiRespond respond);
    void inbox(const std::string& user, ApiRespond respond);
    void clearInbox(const std::string& user, ApiRespond respond);
    void onlineUsers(const ApiRequest& request, ApiRespond respond);
    void nodes(ApiRespond respond);
    // Runs `perform` (which publishes and responds exactly once) unless the request's key makes it
    // a replay, a conflict or a wait for the same request in flight (docs/http-api.md).
    void runIdempotent(const ApiRequest& request, const std::optional<std::string>& key, ApiRespond respond,
                       const std::function<void(ApiRespond)>& perform);
    ApiResponse health() const;
    ApiResponse readiness() const;
    ApiResponse channels() const;
    ApiResponse info() const;
    ApiResponse metrics() const;

    Node& node_;
    std::shared_ptr<const StaticFiles> staticFiles_;
    std::vector<std::function<std::string()>> extraMetrics_;
    // Shared with the completions of requests in flight, which may outlive a call to handle().
    std::shared_ptr<IdempotencyCache> idempotency_;
    std::atomic<bool> draining_{false};
};

}  // namespace wspush
