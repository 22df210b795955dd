#include "transport/client_address.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/beast/http/field.hpp>

namespace wspush {
namespace {

namespace net = boost::asio;
namespace http = boost::beast::http;

net::ip::address address(const char* text) {
    return net::ip::make_address(text);
}

std::vector<IpNetwork> networks(std::initializer_list<const char*> texts) {
    std::vector<IpNetwork> out;
    for (const char* text : texts) {
        auto network = parseIpNetwork(text);
        EXPECT_TRUE(network.has_value()) << text;
        if (network) out.push_back(*network);
    }
    return out;
}

// The address clientAddressOf picks, as text, so that failures print readably.
std::string clientOf(const char* peer, std::string_view forwardedFor, const std::vector<IpNetwork>& trusted) {
    return clientAddressOf(address(peer), forwardedFor, trusted).to_string();
}

TEST(ForwardedAddress, ParsesAddressesWithAndWithoutPorts) {
    EXPECT_EQ(parseForwardedAddress("192.0.2.7"), address("192.0.2.7"));
    EXPECT_EQ(parseForwardedAddress("  192.0.2.7\t"), address("192.0.2.7"));
    EXPECT_EQ(parseForwardedAddress("192.0.2.7:41234"), address("192.0.2.7"));
    EXPECT_EQ(parseForwardedAddress("2001:db8::7"), address("2001:db8::7"));
    EXPECT_EQ(parseForwardedAddress("[2001:db8::7]"), address("2001:db8::7"));
    EXPECT_EQ(parseForwardedAddress("[2001:db8::7]:41234"), address("2001:db8::7"));
    // As a dual-stack listener's peers are: IPv4, so that the limits count one client once.
    EXPECT_EQ(parseForwardedAddress("::ffff:192.0.2.7"), address("192.0.2.7"));
}

TEST(ForwardedAddress, RefusesWhatIsNoAddress) {
    for (const char* bad :
         {"", " ", "unknown", "_hidden", "example.com", "192.0.2", "192.0.2.256", "192.0.2.7:", "192.0.2.7:http",
          "192.0.2.7:123456", "[2001:db8::7", "[2001:db8::7]x", "[2001:db8::7]:", "[192.0.2.7]", "fe80::1%eth0",
          "2001:db8::7:99999", "192.0.2.7 198.51.100.1", "\"192.0.2.7\"", "for=192.0.2.7"}) {
        EXPECT_FALSE(parseForwardedAddress(bad).has_value()) << '"' << bad << '"';
    }
}

TEST(ClientAddress, WithoutTrustedProxiesTheHeaderIsIgnored) {
    EXPECT_EQ(clientOf("127.0.0.1", "192.0.2.7", {}), "127.0.0.1");
}

TEST(ClientAddress, FromAnUntrustedPeerTheHeaderIsIgnored) {
    auto trusted = networks({"10.0.0.0/8"});
    EXPECT_EQ(clientOf("192.0.2.50", "192.0.2.7", trusted), "192.0.2.50");
    EXPECT_EQ(clientOf("11.0.0.1", "192.0.2.7", trusted), "11.0.0.1");
}

TEST(ClientAddress, FromATrustedPeerTheRightMostUntrustedEntryIsTheClient) {
    auto trusted = networks({"127.0.0.1", "10.0.0.0/8"});
    EXPECT_EQ(clientOf("127.0.0.1", "192.0.2.7", trusted), "192.0.2.7");
    // nginx appends the address it was connected from: what the client wrote stays to its left.
    EXPECT_EQ(clientOf("127.0.0.1", "203.0.113.9, 192.0.2.7", trusted), "192.0.2.7");
    // A load balancer in front of nginx, both trusted: walk past them.
    EXPECT_EQ(clientOf("127.0.0.1", "203.0.113.9, 192.0.2.7, 10.1.2.3", trusted), "192.0.2.7");
    EXPECT_EQ(clientOf("10.9.9.9", "192.0.2.7,10.1.2.3,10.4.5.6", trusted), "192.0.2.7");
    EXPECT_EQ(clientOf("127.0.0.1", "[2001:db8::7]:5000", trusted), "2001:db8::7");
}

TEST(ClientAddress, ASpoofedTrustedAddressLeftOfTheClientChangesNothing) {
    auto trusted = networks({"127.0.0.1"});
    EXPECT_EQ(clientOf("127.0.0.1", "127.0.0.1, 192.0.2.7", trusted), "192.0.2.7");
}

TEST(ClientAddress, WhenEveryEntryIsTrustedTheLeftMostIsTheClient) {
    auto trusted = networks({"10.0.0.0/8"});
    EXPECT_EQ(clientOf("10.0.0.1", "10.0.0.3, 10.0.0.2", trusted), "10.0.0.3");
}

TEST(ClientAddress, AMissingOrEmptyHeaderLeavesThePeer) {
    auto trusted = networks({"127.0.0.1"});
    EXPECT_EQ(clientOf("127.0.0.1", "", trusted), "127.0.0.1");
    EXPECT_EQ(clientOf("127.0.0.1", " , ,", trusted), "127.0.0.1");
}

TEST(ClientAddress, EmptyListElementsAreSkipped) {
    auto trusted = networks({"127.0.0.1"});
    EXPECT_EQ(clientOf("127.0.0.1", "192.0.2.7,,  ,", trusted), "192.0.2.7");
}

TEST(ClientAddress, AMalformedEntryBeforeTheClientFallsBackToThePeer) {
    auto trusted = networks({"127.0.0.1", "10.0.0.0/8"});
    EXPECT_EQ(clientOf("127.0.0.1", "unknown", trusted), "127.0.0.1");
    EXPECT_EQ(clientOf("127.0.0.1", "192.0.2.7, garbage", trusted), "127.0.0.1");
    EXPECT_EQ(clientOf("127.0.0.1", "192.0.2.7, garbage, 10.0.0.5", trusted), "127.0.0.1");
    // Garbage left of the client is the client's own writing and never looked at.
    EXPECT_EQ(clientOf("127.0.0.1", "garbage, 192.0.2.7", trusted), "192.0.2.7");
}

TEST(ClientAddress, AChainLongerThanTheBoundFallsBackToThePeer) {
    auto trusted = networks({"10.0.0.0/8"});
    std::string chain = "192.0.2.7";
    for (std::size_t i = 0; i < kMaxForwardedHops; ++i) chain += ", 10.0.0.1";
    EXPECT_EQ(clientOf("10.0.0.2", chain, trusted), "10.0.0.2");
    std::string commas(100000, ',');
    EXPECT_EQ(clientOf("10.0.0.2", "192.0.2.7" + commas, trusted), "10.0.0.2");
    // Within the bound the walk reaches the client.
    std::string shorter = "192.0.2.7";
    for (std::size_t i = 0; i + 1 < kMaxForwardedHops; ++i) shorter += ", 10.0.0.1";
    EXPECT_EQ(clientOf("10.0.0.2", shorter, trusted), "192.0.2.7");
}

TEST(ClientAddress, IPv6PeersAndNetworks) {
    auto trusted = networks({"fd00::/8", "::1"});
    EXPECT_EQ(clientOf("::1", "2001:db8::7", trusted), "2001:db8::7");
    EXPECT_EQ(clientOf("fd12:3456::1", "192.0.2.7, fd00::9", trusted), "192.0.2.7");
    EXPECT_EQ(clientOf("fe00::1", "192.0.2.7", trusted), "fe00::1");
    // An IPv4 network does not contain IPv6 addresses, nor the other way round.
    EXPECT_EQ(clientOf("127.0.0.1", "192.0.2.7", trusted), "127.0.0.1");
}

TEST(ClientAddress, EveryHeaderLineIsOneListInOrder) {
    auto trusted = networks({"127.0.0.1", "10.0.0.0/8"});
    http::request<http::string_body> request{http::verb::get, "/ws", 11};
    EXPECT_EQ(clientAddressOf(address("127.0.0.1"), request, trusted), address("127.0.0.1"));
    request.insert("X-Forwarded-For", "203.0.113.9, 192.0.2.7");
    EXPECT_EQ(clientAddressOf(address("127.0.0.1"), request, trusted), address("192.0.2.7"));
    request.insert("X-Forwarded-For", "198.51.100.4, 10.0.0.8");
    EXPECT_EQ(clientAddressOf(address("127.0.0.1"), request, trusted), address("198.51.100.4"));
    request.insert("x-forwarded-for", "10.0.0.9");  // names are case-insensitive
    EXPECT_EQ(clientAddressOf(address("127.0.0.1"), request, trusted), address("198.51.100.4"));
    // From a peer nobody trusts, none of it.
    EXPECT_EQ(clientAddressOf(address("192.0.2.1"), request, trusted), address("192.0.2.1"));
}

TEST(TrustedProxy, NetworksMatchTheirPrefixOnly) {
    auto trusted = networks({"10.0.0.0/8", "192.168.1.0/25", "172.16.0.0/12", "2001:db8:ab00::/40"});
    EXPECT_TRUE(isTrustedProxy(address("10.255.255.255"), trusted));
    EXPECT_FALSE(isTrustedProxy(address("11.0.0.0"), trusted));
    EXPECT_TRUE(isTrustedProxy(address("192.168.1.127"), trusted));
    EXPECT_FALSE(isTrustedProxy(address("192.168.1.128"), trusted));
    EXPECT_TRUE(isTrustedProxy(address("172.31.255.255"), trusted));
    EXPECT_FALSE(isTrustedProxy(address("172.32.0.0"), trusted));
    EXPECT_TRUE(isTrustedProxy(address("2001:db8:abff::1"), trusted));
    EXPECT_FALSE(isTrustedProxy(address("2001:db8:ac00::1"), trusted));
    EXPECT_FALSE(isTrustedProxy(address("::ffff:10.0.0.1"), trusted));  // callers unmap first
    EXPECT_TRUE(isTrustedProxy(address("1.2.3.4"), networks({"0.0.0.0/0"})));
    EXPECT_FALSE(isTrustedProxy(address("::1"), networks({"0.0.0.0/0"})));
    EXPECT_FALSE(isTrustedProxy(address("1.2.3.4"), {}));
}

}  // namespace
}  // namespace wspush
