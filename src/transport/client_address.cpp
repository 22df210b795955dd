#include "transport/client_address.h"

#include <algorithm>

namespace wspush {

namespace net = boost::asio;

namespace {

net::ip::address unmapped(const net::ip::address& address) {
    if (address.is_v6() && address.to_v6().is_v4_mapped())
        return net::ip::make_address_v4(net::ip::v4_mapped, address.to_v6());
    return address;
}

std::string_view trimmed(std::string_view text) {
    auto isSpace = [](char c) { return c == ' ' || c == '\t'; };
    while (!text.empty() && isSpace(text.front())) text.remove_prefix(1);
    while (!text.empty() && isSpace(text.back())) text.remove_suffix(1);
    return text;
}

bool isPort(std::string_view text) {
    return !text.empty() && text.size() <= 5 &&
           std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

net::ip::address peerAddressOf(const net::ip::tcp::socket& socket) {
    boost::system::error_code ec;
    auto remote = socket.remote_endpoint(ec);
    if (ec) return net::ip::address_v4::any();
    return unmapped(remote.address());
}

bool isTrustedProxy(const net::ip::address& address, const std::vector<IpNetwork>& trusted) {
    if (address.is_v4()) {
        auto bytes = address.to_v4().to_bytes();
        return std::any_of(trusted.begin(), trusted.end(),
                           [&](const IpNetwork& network) { return network.contains(false, bytes.data()); });
    }
    auto bytes = address.to_v6().to_bytes();
    return std::any_of(trusted.begin(), trusted.end(),
                       [&](const IpNetwork& network) { return network.contains(true, bytes.data()); });
}

std::optional<net::ip::address> parseForwardedAddress(std::string_view entry) {
    entry = trimmed(entry);
    std::string_view host = entry;
    if (entry.starts_with('[')) {
        auto close = entry.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        host = entry.substr(1, close - 1);
        std::string_view after = entry.substr(close + 1);
        if (!after.empty() && !(after.front() == ':' && isPort(after.substr(1)))) return std::nullopt;
    } else if (auto colon = entry.find(':');
               colon != std::string_view::npos && entry.find(':', colon + 1) == std::string_view::npos) {
        // One colon: an IPv4 address with a port. Two or more: an IPv6 address, parsed whole.
        if (!isPort(entry.substr(colon + 1))) return std::nullopt;
        host = entry.substr(0, colon);
    }
    // Zone ids ("fe80::1%eth0") name an interface of the proxy's host, not a client anywhere.
    if (host.empty() || host.size() > 45 || host.find('%') != std::string_view::npos) return std::nullopt;
    boost::system::error_code ec;
    auto address = net::ip::make_address(std::string(host), ec);
    if (ec) return std::nullopt;
    if (address.is_v4() && entry.starts_with('[')) return std::nullopt;  // "[192.0.2.7]": brackets are for IPv6
    return unmapped(address);
}

net::ip::address clientAddressOf(const net::ip::address& peer, std::string_view forwardedFor,
                                 const std::vector<IpNetwork>& trusted) {
    if (trusted.empty() || !isTrustedProxy(peer, trusted)) return peer;
    std::optional<net::ip::address> leftmostTrusted;
    std::string_view rest = forwardedFor;
    for (std::size_t hops = 0; hops < kMaxForwardedHops; ++hops) {
        auto comma = rest.rfind(',');
        std::string_view entry = comma == std::string_view::npos ? rest : rest.substr(comma + 1);
        if (!trimmed(entry).empty()) {  // "a,,b" has an empty element: a list's syntax allows it
            auto address = parseForwardedAddress(entry);
            if (!address) return peer;
            if (!isTrustedProxy(*address, trusted)) return *address;
            leftmostTrusted = *address;
        }
        if (comma == std::string_view::npos) return leftmostTrusted.value_or(peer);
        rest = rest.substr(0, comma);
    }
    return peer;
}

net::ip::address clientAddressOf(const net::ip::address& peer,
                                 const boost::beast::http::request<boost::beast::http::string_body>& request,
                                 const std::vector<IpNetwork>& trusted) {
    if (trusted.empty() || !isTrustedProxy(peer, trusted)) return peer;
    // Several header lines are one list, in order (RFC 9110, 5.3); one line is the common case.
    std::string joined;
    std::size_t lines = 0;
    std::string_view only;
    for (auto [it, end] = request.equal_range("X-Forwarded-For"); it != end; ++it) {
        std::string_view value(it->value().data(), it->value().size());
        if (lines++ == 0) {
            only = value;
            continue;
        }
        if (lines == 2) joined = std::string(only);
        joined.append(", ").append(value);
    }
    return clientAddressOf(peer, lines > 1 ? std::string_view(joined) : only, trusted);
}

std::string addressLimitKey(const net::ip::address& address) {
    if (address.is_v4()) return address.to_string();
    auto bytes = address.to_v6().to_bytes();
    std::fill(bytes.begin() + 8, bytes.end(), 0);
    return net::ip::address_v6(bytes).to_string() + "/64";
}

}  // namespace wspush
