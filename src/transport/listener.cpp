#include "transport/listener.h"

#include <sys/socket.h>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include "transport/http_session.h"

namespace wspush {

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// Asio has no name for it: Linux's SO_REUSEPORT lets several sockets, of processes of the same
// user that all set it, bind one address and port; the kernel spreads incoming connections over
// them by a hash of the connection's addresses and ports.
using ReusePort = net::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

}  // namespace

Listener::Listener(Node& node, HttpApi& api, const OriginPolicy& origins, const TlsContextStore* tls,
                   EventLoopPool& loops, EventLoop& acceptLoop, ListenerRoutes routes, SessionMode websocketMode)
    : node_(node),
      api_(api),
      origins_(origins),
      tls_(tls),
      loops_(loops),
      acceptLoop_(acceptLoop),
      routes_(routes),
      websocketMode_(websocketMode),
      acceptor_(acceptLoop.context()),
      backoff_(acceptLoop.context()) {}

bool Listener::open(const Endpoint& endpoint, bool reusePort, boost::system::error_code& error) {
    auto address = net::ip::make_address(endpoint.host, error);
    if (error) return false;
    tcp::endpoint local(address, endpoint.port);
    acceptor_.open(local.protocol(), error);
    if (!error) acceptor_.set_option(net::socket_base::reuse_address(true), error);
    // Before bind: the kernel lets a socket join a port only if it and every holder set it then.
    if (!error && reusePort) acceptor_.set_option(ReusePort(true), error);
    if (!error) acceptor_.bind(local, error);
    if (!error) acceptor_.listen(net::socket_base::max_listen_connections, error);
    return !error;
}

unsigned short Listener::port() const {
    boost::system::error_code ec;
    return acceptor_.local_endpoint(ec).port();
}

void Listener::start() {
    net::post(acceptLoop_.context(), [self = shared_from_this()] { self->doAccept(); });
}

void Listener::stop() {
    net::post(acceptLoop_.context(), [self = shared_from_this()] {
        boost::system::error_code ignored;
        self->acceptor_.close(ignored);
        self->backoff_.cancel();
    });
}

void Listener::doAccept() {
    // The socket is created on the loop that will own the connection for its whole life.
    EventLoop& loop = loops_.next();
    acceptor_.async_accept(loop.context(),
                           [self = shared_from_this(), &loop](boost::system::error_code ec, tcp::socket socket) {
                               self->onAccept(loop, ec, std::move(socket));
                           });
}

void Listener::onAccept(EventLoop& loop, boost::system::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
        // Typically out of descriptors: back off instead of spinning on the same error.
        spdlog::warn("accept failed: {}; retrying in 100 ms", ec.message());
        backoff_.expires_after(std::chrono::milliseconds(100));
        backoff_.async_wait([self = shared_from_this()](boost::system::error_code waitError) {
            if (!waitError) self->doAccept();
        });
        return;
    }
    socket.set_option(tcp::no_delay(true), ec);
    net::post(loop.context(), [self = shared_from_this(), &loop, socket = std::move(socket)]() mutable {
        if (self->tls_) {
            // The context current now: a reload while the handshake runs does not touch it.
            TlsStream stream(std::move(socket), *self->tls_->current());
            std::make_shared<HttpSession<TlsStream>>(self->node_, self->api_, self->origins_, loop, std::move(stream),
                                                     self->routes_, self->websocketMode_)
                ->start();
        } else {
            std::make_shared<HttpSession<PlainStream>>(self->node_, self->api_, self->origins_, loop,
                                                       PlainStream(std::move(socket)), self->routes_,
                                                       self->websocketMode_)
                ->start();
        }
    });
    doAccept();
}

}  // namespace wspush
