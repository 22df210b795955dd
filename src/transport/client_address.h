// Where a client connects from, for the per-address limits (limits.connections_per_ip,
// limits.connects_per_second_per_ip) and the logs of their refusals.
#pragma once

#include <string>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace wspush {

// The TCP peer's address; an IPv4 client of a dual-stack listener ([::]) as its IPv4 address
// rather than ::ffff:a.b.c.d. Unspecified (0.0.0.0) when the peer is gone already.
boost::asio::ip::address peerAddressOf(const boost::asio::ip::tcp::socket& socket);

// The address the client of `request` is counted under. The TCP peer for now, so behind a proxy
// every client is the proxy. Trusting X-Forwarded-For from configured proxies is a later change
// of this function alone: it has the request's headers already.
boost::asio::ip::address clientAddressOf(const boost::asio::ip::address& peer,
                                         const boost::beast::http::request<boost::beast::http::string_body>& request);

// The key a client's per-address limits are counted under: an IPv4 address ("192.0.2.7"), or the
// /64 network of an IPv6 one ("2001:db8:1:2::/64"), since a single host commonly holds a whole
// /64 and counting its addresses one by one would limit nothing.
std::string addressLimitKey(const boost::asio::ip::address& address);

}  // namespace wspush
