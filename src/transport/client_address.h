// Where a client connects from, for the per-address limits (limits.connections_per_ip,
// limits.connects_per_second_per_ip), the API's loopback rule and the logs of both.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "wspush/config.h"

namespace wspush {

// The TCP peer's address; an IPv4 client of a dual-stack listener ([::]) as its IPv4 address
// rather than ::ffff:a.b.c.d. Unspecified (0.0.0.0) when the peer is gone already.
boost::asio::ip::address peerAddressOf(const boost::asio::ip::tcp::socket& socket);

// Whether `address` lies in one of `trusted` (proxy.trusted).
bool isTrustedProxy(const boost::asio::ip::address& address, const std::vector<IpNetwork>& trusted);

// One entry of X-Forwarded-For, surrounding spaces allowed: "192.0.2.7", "192.0.2.7:41234",
// "2001:db8::7", "[2001:db8::7]" or "[2001:db8::7]:41234"; ::ffff:a.b.c.d as its IPv4 address.
// nullopt for anything else ("unknown", an nginx obfuscated name, garbage).
std::optional<boost::asio::ip::address> parseForwardedAddress(std::string_view entry);

// The address the client is counted under. The TCP peer, unless the peer is a trusted proxy: then
// the right-most address of `forwardedFor` (X-Forwarded-For, its lines joined by ", " in order)
// that is not itself trusted, since every proxy appends the address it was connected from and
// only what trusted proxies appended can be believed; an address left of it may be anything the
// client wrote. When every entry is trusted, the left-most one. An entry that does not parse
// before an untrusted one is found, an absent or empty header, or more than
// kMaxForwardedHops entries to walk: the peer, so that a broken chain never lends a client
// someone else's address.
inline constexpr std::size_t kMaxForwardedHops = 64;
boost::asio::ip::address clientAddressOf(const boost::asio::ip::address& peer, std::string_view forwardedFor,
                                         const std::vector<IpNetwork>& trusted);
// The same with the request's X-Forwarded-For lines, read only when the peer is trusted.
boost::asio::ip::address clientAddressOf(const boost::asio::ip::address& peer,
                                         const boost::beast::http::request<boost::beast::http::string_body>& request,
                                         const std::vector<IpNetwork>& trusted);

// The key a client's per-address limits are counted under: an IPv4 address ("192.0.2.7"), or the
// /64 network of an IPv6 one ("2001:db8:1:2::/64"), since a single host commonly holds a whole
// /64 and counting its addresses one by one would limit nothing.
std::string addressLimitKey(const boost::asio::ip::address& address);

}  // namespace wspush
