// A TCP forwarder on 127.0.0.1 for chaos tests: every connection accepted on port() is paired with
// a new connection to 127.0.0.1:targetPort and bytes are pumped both ways. While cutting is on, a
// timer kills every current pair at random intervals (seeded, so a run can be repeated): both
// sockets are closed, with an RST or a FIN (randomly), and whatever was in flight is lost.
// Runs its own io_context on its own thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <set>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

namespace wspush::testing {

struct TcpForwarderOptions {
    std::chrono::milliseconds minCutInterval{100};
    std::chrono::milliseconds maxCutInterval{300};
    std::uint32_t seed = 20240611;
    bool cutting = true;  // start cutting at once
};

class TcpForwarder {
public:
    explicit TcpForwarder(unsigned short targetPort, TcpForwarderOptions options = {});
    ~TcpForwarder();
    TcpForwarder(const TcpForwarder&) = delete;
    TcpForwarder& operator=(const TcpForwarder&) = delete;

    unsigned short port() const { return port_; }
    void setCutting(bool on) { cutting_.store(on); }

    std::uint64_t accepted() const { return accepted_.load(); }
    std::uint64_t cutRounds() const { return cutRounds_.load(); }  // timer rounds that killed ≥ 1 pair
    std::uint64_t pairsCut() const { return pairsCut_.load(); }    // pairs killed by the timer
    std::uint64_t resetsSent() const { return resets_.load(); }    // of which closed with RST

private:
    struct Pair;
    void accept();
    void scheduleCut();
    void cutAll();

    boost::asio::io_context ioc_;
    boost::asio::ip::tcp::acceptor acceptor_;
    boost::asio::steady_timer cutTimer_;
    unsigned short targetPort_;
    unsigned short port_ = 0;
    TcpForwarderOptions options_;
    std::mt19937 random_;
    std::set<std::shared_ptr<Pair>> pairs_;  // touched on the forwarder's thread only
    std::atomic<bool> cutting_;
    std::atomic<std::uint64_t> accepted_{0};
    std::atomic<std::uint64_t> cutRounds_{0};
    std::atomic<std::uint64_t> pairsCut_{0};
    std::atomic<std::uint64_t> resets_{0};
    std::thread thread_;
};

}  // namespace wspush::testing
