#include "support/tcp_forwarder.h"

#include <array>
#include <functional>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

namespace wspush::testing {

namespace net = boost::asio;
using tcp = net::ip::tcp;

struct TcpForwarder::Pair : std::enable_shared_from_this<Pair> {
    explicit Pair(net::io_context& ioc) : client(ioc), server(ioc) {}

    tcp::socket client;
    tcp::socket server;
    std::array<char, 16384> toServer{};
    std::array<char, 16384> toClient{};
    bool dead = false;
    std::function<void(const std::shared_ptr<Pair>&)> onDead;

    void start() {
        pump(client, server, toServer);
        pump(server, client, toClient);
    }

    void pump(tcp::socket& from, tcp::socket& to, std::array<char, 16384>& buffer) {
        from.async_read_some(net::buffer(buffer), [self = shared_from_this(), &from, &to, &buffer](
                                                      boost::system::error_code ec, std::size_t n) {
            if (ec || self->dead) return self->kill(false);
            net::async_write(to, net::buffer(buffer.data(), n),
                             [self, &from, &to, &buffer](boost::system::error_code ec, std::size_t) {
                                 if (ec || self->dead) return self->kill(false);
                                 self->pump(from, to, buffer);
                             });
        });
    }

    // Closes both sides; with `reset` an RST instead of a FIN.
    void kill(bool reset) {
        if (dead) return;
        dead = true;
        boost::system::error_code ignored;
        for (tcp::socket* socket : {&client, &server}) {
            if (!socket->is_open()) continue;
            if (reset) socket->set_option(net::socket_base::linger(true, 0), ignored);
            socket->close(ignored);
        }
        if (onDead) {
            auto callback = std::move(onDead);
            callback(shared_from_this());
        }
    }
};

TcpForwarder::TcpForwarder(unsigned short targetPort, TcpForwarderOptions options)
    : acceptor_(ioc_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)),
      cutTimer_(ioc_),
      targetPort_(targetPort),
      options_(options),
      random_(options.seed),
      cutting_(options.cutting) {
    port_ = acceptor_.local_endpoint().port();
    accept();
    scheduleCut();
    thread_ = std::thread([this] { ioc_.run(); });
}

TcpForwarder::~TcpForwarder() {
    net::post(ioc_, [this] {
        boost::system::error_code ignored;
        acceptor_.close(ignored);
        cutTimer_.cancel();
        auto pairs = pairs_;
        for (const auto& pair : pairs) pair->kill(false);
        pairs_.clear();
        // The failed operations' handlers are queued by now: let them run, then stop.
        net::post(ioc_, [this] { ioc_.stop(); });
    });
    thread_.join();
}

void TcpForwarder::accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
        if (ec) return;  // closed
        accepted_.fetch_add(1);
        auto pair = std::make_shared<Pair>(ioc_);
        pair->client = std::move(socket);
        pair->onDead = [this](const std::shared_ptr<Pair>& dead) { pairs_.erase(dead); };
        pairs_.insert(pair);
        pair->server.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), targetPort_),
                                   [pair](boost::system::error_code ec) {
                                       if (ec || pair->dead) return pair->kill(false);
                                       boost::system::error_code ignored;
                                       pair->client.set_option(tcp::no_delay(true), ignored);
                                       pair->server.set_option(tcp::no_delay(true), ignored);
                                       pair->start();
                                   });
        accept();
    });
}

void TcpForwarder::scheduleCut() {
    std::uniform_int_distribution<long> interval(options_.minCutInterval.count(), options_.maxCutInterval.count());
    cutTimer_.expires_after(std::chrono::milliseconds(interval(random_)));
    cutTimer_.async_wait([this](boost::system::error_code ec) {
        if (ec) return;
        if (cutting_.load()) cutAll();
        scheduleCut();
    });
}

void TcpForwarder::cutAll() {
    if (pairs_.empty()) return;
    cutRounds_.fetch_add(1);
    auto pairs = pairs_;  // kill() erases from pairs_
    for (const auto& pair : pairs) {
        bool reset = std::bernoulli_distribution(0.5)(random_);
        if (reset) resets_.fetch_add(1);
        pairsCut_.fetch_add(1);
        pair->kill(reset);
    }
}

}  // namespace wspush::testing
