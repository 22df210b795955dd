#include "transport/client_address.h"

#include <algorithm>

namespace wspush {

namespace net = boost::asio;

net::ip::address peerAddressOf(const net::ip::tcp::socket& socket) {
    boost::system::error_code ec;
    auto remote = socket.remote_endpoint(ec);
    if (ec) return net::ip::address_v4::any();
    auto address = remote.address();
    if (address.is_v6() && address.to_v6().is_v4_mapped())
        return net::ip::make_address_v4(net::ip::v4_mapped, address.to_v6());
    return address;
}

net::ip::address clientAddressOf(const net::ip::address& peer,
                                 const boost::beast::http::request<boost::beast::http::string_body>&) {
    return peer;
}

std::string addressLimitKey(const net::ip::address& address) {
    if (address.is_v4()) return address.to_string();
    auto bytes = address.to_v6().to_bytes();
    std::fill(bytes.begin() + 8, bytes.end(), 0);
    return net::ip::address_v6(bytes).to_string() + "/64";
}

}  // namespace wspush
