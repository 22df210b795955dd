// Accepts TCP connections and hands each to an event loop, round robin, as an HttpSession: over
// TLS when the listener has a TlsContextStore, in plain TCP otherwise.
#pragma once

#include <memory>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "api/http_api.h"
#include "node/event_loop.h"
#include "node/node.h"
#include "transport/origin_policy.h"
#include "transport/tls_context.h"
#include "transport/websocket_session.h"
#include "wspush/config.h"

namespace wspush {

class Listener final : public std::enable_shared_from_this<Listener> {
public:
    // `origins` and `tls` (nullptr: plain TCP) outlive the listener and its connections (the Server's).
    Listener(Node& node, HttpApi& api, const OriginPolicy& origins, const TlsContextStore* tls, EventLoopPool& loops,
             EventLoop& acceptLoop, ListenerRoutes routes, SessionMode websocketMode);

    // Binds and listens; false with `error` set when the address cannot be used. `reusePort`:
    // share the port with other processes that set it too (SO_REUSEPORT, Config::reuse_port).
    bool open(const Endpoint& endpoint, bool reusePort, boost::system::error_code& error);
    unsigned short port() const;
    void start();
    void stop();  // stops accepting; existing connections are untouched

private:
    void doAccept();
    void onAccept(EventLoop& loop, boost::system::error_code ec, boost::asio::ip::tcp::socket socket);

    Node& node_;
    HttpApi& api_;
    const OriginPolicy& origins_;
    const TlsContextStore* tls_;
    EventLoopPool& loops_;
    EventLoop& acceptLoop_;
    ListenerRoutes routes_;
    SessionMode websocketMode_;
    boost::asio::ip::tcp::acceptor acceptor_;
    boost::asio::steady_timer backoff_;
};

}  // namespace wspush
