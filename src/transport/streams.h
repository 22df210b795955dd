// The two kinds of connection the public listener serves, and what each becomes after the
// WebSocket upgrade. A plain connection sheds beast::tcp_stream at the upgrade: its timer and
// per-operation state would cost every idle connection memory, and WebSocketSession keeps its
// own deadlines. Its socket becomes a DirectWriteSocket, which lets the session write frames
// without Beast. A TLS connection cannot shed its stream (its TLS state lives on top of it), and
// every byte it sends goes through TLS: Beast writes all of it.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "transport/direct_write_socket.h"

namespace wspush {

using PlainStream = boost::beast::tcp_stream;
using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

template <class HttpStream>
struct UpgradedStream;

template <>
struct UpgradedStream<PlainStream> {
    using type = DirectWriteSocket;
    static type from(PlainStream& stream) { return DirectWriteSocket(stream.release_socket()); }
};

template <>
struct UpgradedStream<TlsStream> {
    using type = TlsStream;
    static type from(TlsStream& stream) { return std::move(stream); }
};

// The TCP socket under either kind, for addresses, options and the final close.
inline boost::asio::ip::tcp::socket& tcpSocketOf(boost::asio::ip::tcp::socket& socket) {
    return socket;
}
inline boost::asio::ip::tcp::socket& tcpSocketOf(PlainStream& stream) {
    return stream.socket();
}
inline boost::asio::ip::tcp::socket& tcpSocketOf(TlsStream& stream) {
    return stream.next_layer().socket();
}
inline const boost::asio::ip::tcp::socket& tcpSocketOf(const boost::asio::ip::tcp::socket& socket) {
    return socket;
}
inline const boost::asio::ip::tcp::socket& tcpSocketOf(const PlainStream& stream) {
    return stream.socket();
}

}  // namespace wspush
