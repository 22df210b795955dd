#include "node/address_table.h"

#include <string>

#include <gtest/gtest.h>

namespace wspush {
namespace {

using namespace std::chrono_literals;
using Verdict = AddressTable::Verdict;

class AddressTableTest : public ::testing::Test {
protected:
    AddressTable::TimePoint start = std::chrono::steady_clock::now();
};

TEST_F(AddressTableTest, CountsOpenConnectionsPerAddress) {
    AddressTable table({.connections = 2, .connectsPerSecond = 0});
    EXPECT_EQ(table.admit("192.0.2.1", start), Verdict::Admitted);
    EXPECT_EQ(table.admit("192.0.2.1", start), Verdict::Admitted);
    EXPECT_EQ(table.admit("192.0.2.1", start), Verdict::TooManyConnections);
    EXPECT_EQ(table.admit("192.0.2.2", start), Verdict::Admitted);  // another address has its own count
    EXPECT_EQ(table.openConnections("192.0.2.1"), 2u);

    table.release("192.0.2.1", start);
    EXPECT_EQ(table.admit("192.0.2.1", start), Verdict::Admitted);
    EXPECT_EQ(table.admit("192.0.2.1", start), Verdict::TooManyConnections);
}

TEST_F(AddressTableTest, WithoutARateAnAddressIsForgottenWithItsLastConnection) {
    AddressTable table({.connections = 5, .connectsPerSecond = 0});
    ASSERT_EQ(table.admit("192.0.2.1", start), Verdict::Admitted);
    ASSERT_EQ(table.admit("192.0.2.1", start), Verdict::Admitted);
    table.release("192.0.2.1", start);
    EXPECT_EQ(table.size(), 1u);
    table.release("192.0.2.1", start);
    EXPECT_EQ(table.size(), 0u);
    table.release("192.0.2.1", start);  // one release too many changes nothing
    EXPECT_EQ(table.size(), 0u);
}

TEST_F(AddressTableTest, LimitsNewConnectionsPerSecondWithABurstOfOneSecond) {
    AddressTable table({.connections = 0, .connectsPerSecond = 3});
    for (int i = 0; i < 3; ++i) EXPECT_EQ(table.admit("192.0.2.1", start), Verdict::Admitted) << i;
    EXPECT_EQ(table.admit("192.0.2.1", start), Verdict::TooFast);
    EXPECT_EQ(table.admit("192.0.2.1", start + 300ms), Verdict::TooFast);  // 0.9 of a token
    EXPECT_EQ(table.admit("192.0.2.1", start + 340ms), Verdict::Admitted);
    EXPECT_EQ(table.admit("192.0.2.2", start), Verdict::Admitted);
}

TEST_F(AddressTableTest, ARateBelowOneStillAdmitsOneConnection) {
    AddressTable table({.connections = 0, .connectsPerSecond = 0.5});
    EXPECT_EQ(table.admit("192.0.2.1", start), Verdict::Admitted);
    EXPECT_EQ(table.admit("192.0.2.1", start + 1s), Verdict::TooFast);
    EXPECT_EQ(table.admit("192.0.2.1", start + 2s), Verdict::Admitted);
}

TEST_F(AddressTableTest, TheConnectionLimitIsCheckedBeforeTheRateAndCostsNoToken) {
    AddressTable table({.connections = 1, .connectsPerSecond = 2});
    ASSERT_EQ(table.admit("192.0.2.1", start), Verdict::Admitted);
    EXPECT_EQ(table.admit("192.0.2.1", start), Verdict::TooManyConnections);
    EXPECT_EQ(table.admit("192.0.2.1", start), Verdict::TooManyConnections);
    table.release("192.0.2.1", start);
    EXPECT_EQ(table.admit("192.0.2.1", start), Verdict::Admitted);  // the second token was still there
}

TEST_F(AddressTableTest, AnIdleAddressIsKeptUntilItsBucketIsFullAgain) {
    AddressTable table({.connections = 0, .connectsPerSecond = 1});
    ASSERT_EQ(table.admit("192.0.2.1", start), Verdict::Admitted);
    table.release("192.0.2.1", start + 100ms);
    EXPECT_EQ(table.size(), 1u);  // forgetting it now would give it a fresh token
    EXPECT_EQ(table.idle(), 1u);
    EXPECT_EQ(table.admit("192.0.2.1", start + 500ms), Verdict::TooFast);

    // Seen again after its bucket filled: forgotten by the next call, which changes nothing for it.
    EXPECT_EQ(table.admit("192.0.2.2", start + 1s), Verdict::Admitted);
    EXPECT_EQ(table.size(), 1u);
    EXPECT_EQ(table.openConnections("192.0.2.2"), 1u);
    EXPECT_EQ(table.admit("192.0.2.1", start + 1s), Verdict::Admitted);
}

TEST_F(AddressTableTest, ManyAddressesCannotGrowTheTablePastItsBound) {
    auto addressOf = [](int i) {
        return "10." + std::to_string(i >> 16) + "." + std::to_string((i >> 8) & 255) + "." + std::to_string(i & 255);
    };
    // An attacker with 200,000 addresses, each connecting once and leaving at once.
    constexpr int kAddresses = 200'000;
    AddressTable table({.connections = 0, .connectsPerSecond = 1, .maxIdle = 1000});
    for (int i = 0; i < kAddresses; ++i) {
        ASSERT_EQ(table.admit(addressOf(i), start), Verdict::Admitted);
        table.release(addressOf(i), start);
        ASSERT_LE(table.size(), 1000u);
    }
    EXPECT_EQ(table.idle(), 1000u);
    // At the cap the least recently seen were forgotten first: the latest are still limited.
    EXPECT_EQ(table.admit(addressOf(kAddresses - 1), start), Verdict::TooFast);
    EXPECT_EQ(table.admit(addressOf(0), start), Verdict::Admitted);  // forgotten long ago: a fresh bucket
}

TEST_F(AddressTableTest, AddressesWithOpenConnectionsAreNeverForgotten) {
    AddressTable table({.connections = 1, .connectsPerSecond = 1, .maxIdle = 2});
    ASSERT_EQ(table.admit("192.0.2.1", start), Verdict::Admitted);  // stays open
    for (int i = 0; i < 10; ++i) {
        std::string address = "198.51.100." + std::to_string(i);
        ASSERT_EQ(table.admit(address, start), Verdict::Admitted);
        table.release(address, start);
    }
    EXPECT_EQ(table.idle(), 2u);
    EXPECT_EQ(table.size(), 3u);
    EXPECT_EQ(table.openConnections("192.0.2.1"), 1u);
    EXPECT_EQ(table.admit("192.0.2.1", start + 1h), Verdict::TooManyConnections);
}

TEST_F(AddressTableTest, ARefusedIdleAddressBecomesTheMostRecentlySeen) {
    AddressTable table({.connections = 0, .connectsPerSecond = 1, .maxIdle = 2});
    ASSERT_EQ(table.admit("192.0.2.1", start), Verdict::Admitted);
    table.release("192.0.2.1", start);
    ASSERT_EQ(table.admit("192.0.2.2", start), Verdict::Admitted);
    table.release("192.0.2.2", start);
    ASSERT_EQ(table.admit("192.0.2.1", start), Verdict::TooFast);  // .1 now seen after .2
    ASSERT_EQ(table.admit("192.0.2.3", start), Verdict::Admitted);
    table.release("192.0.2.3", start);  // past the cap: .2 goes, not .1
    EXPECT_EQ(table.admit("192.0.2.1", start), Verdict::TooFast);
    EXPECT_EQ(table.admit("192.0.2.2", start), Verdict::Admitted);
}

}  // namespace
}  // namespace wspush
