// What the generator's WebSocket clients share (ws_clients.cpp, recovery_clients.cpp): the
// socket type, how a client stream is set up, and the byte scanners for server frames. Beast
// stays out of the controller: only those two files include this.
#pragma once

#include <algorithm>
#include <cstring>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>

#include "common.h"

namespace bench {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
// A socket bound to the concrete io_context executor: no type-erased any_io_executor copies
// on every read.
using Socket = net::basic_stream_socket<tcp, net::io_context::executor_type>;

inline constexpr std::size_t kErrorSampleBytes = 200;

// `host` as an address, else its first resolved address, else 127.0.0.1.
inline tcp::endpoint resolveEndpoint(const std::string& host, unsigned port) {
    error_code ec;
    auto address = net::ip::make_address(host, ec);
    if (!ec) return tcp::endpoint(address, static_cast<unsigned short>(port));
    net::io_context ctx;
    tcp::resolver resolver(ctx);
    auto results = resolver.resolve(host, std::to_string(port), ec);
    if (ec || results.empty())
        return tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port));
    return *results.begin();
}

inline bool contains(const char* p, std::size_t n, std::string_view needle) {
    return memmem(p, n, needle.data(), needle.size()) != nullptr;
}

// The start of a server frame, for an error message.
inline std::string sample(const char* p, std::size_t n) {
    return std::string(p, std::min(n, kErrorSampleBytes));
}

// Several server messages may share a frame, separated by '\n' (docs/protocol.md, Framing):
// calls onLine(begin, end) for each non-empty one, for as long as it returns true. A template so
// that the per-message receive paths pay no call through a pointer.
template <class OnLine>
void forEachLine(const char* p, const char* end, OnLine&& onLine) {
    while (p < end) {
        auto* newline = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
        const char* lineEnd = newline != nullptr ? newline : end;
        if (lineEnd > p && !onLine(p, lineEnd)) return;
        p = lineEnd + 1;
    }
}

// The client side of every bench WebSocket: small write buffer (we send only tiny commands),
// whole messages, permessage-deflate offered when asked.
template <class Stream>
void configure(Stream& ws, const Options& options) {
    if (options.deflate) {
        websocket::permessage_deflate pmd;
        pmd.client_enable = true;
        ws.set_option(pmd);
    }
    ws.write_buffer_bytes(512);
    ws.auto_fragment(false);
    ws.set_option(websocket::stream_base::decorator(
        [](websocket::request_type& request) { request.set(beast::http::field::user_agent, "wspush-bench"); }));
}

}  // namespace bench
