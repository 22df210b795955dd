#include "node/connection_gate.h"

#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace wspush {
namespace {

using namespace std::chrono_literals;
using Refusal = ConnectionGate::Refusal;

bool admitted(const std::variant<ConnectionGate::Ticket, Refusal>& result) {
    return std::holds_alternative<ConnectionGate::Ticket>(result);
}
std::optional<Refusal> refusal(const std::variant<ConnectionGate::Ticket, Refusal>& result) {
    if (auto* r = std::get_if<Refusal>(&result)) return *r;
    return std::nullopt;
}

TEST(ConnectionGate, WithoutLimitsEveryoneGetsInAndIsCounted) {
    ManualClock clock;
    ConnectionGate gate(LimitsConfig{.connections_per_node = 0, .connections_per_ip = 0}, clock);
    std::vector<ConnectionGate::Ticket> tickets;
    for (int i = 0; i < 100; ++i) tickets.push_back(std::get<ConnectionGate::Ticket>(gate.admit("192.0.2.1")));
    EXPECT_EQ(gate.connections(), 100u);
    tickets.clear();
    EXPECT_EQ(gate.connections(), 0u);
}

TEST(ConnectionGate, TheNodeLimitComesFirst) {
    ManualClock clock;
    ConnectionGate gate(LimitsConfig{.connections_per_node = 2, .connections_per_ip = 1}, clock);
    auto first = gate.admit("192.0.2.1");
    auto second = gate.admit("192.0.2.2");
    ASSERT_TRUE(admitted(first));
    ASSERT_TRUE(admitted(second));
    EXPECT_EQ(refusal(gate.admit("192.0.2.1")), Refusal::NodeFull);  // full, whatever its address
    EXPECT_EQ(refusal(gate.admit("192.0.2.3")), Refusal::NodeFull);
    EXPECT_EQ(gate.connections(), 2u);

    std::get<ConnectionGate::Ticket>(second).reset();
    EXPECT_EQ(refusal(gate.admit("192.0.2.1")), Refusal::TooManyFromAddress);
    EXPECT_EQ(gate.connections(), 1u);  // a refusal by address gives the node's place back
    EXPECT_TRUE(admitted(gate.admit("192.0.2.3")));
}

TEST(ConnectionGate, TicketsMoveAndGiveTheirPlaceBackOnce) {
    ManualClock clock;
    ConnectionGate gate(LimitsConfig{.connections_per_node = 1, .connections_per_ip = 1}, clock);
    auto ticket = std::get<ConnectionGate::Ticket>(gate.admit("192.0.2.1"));
    ConnectionGate::Ticket moved = std::move(ticket);
    ticket.reset();  // the moved-from ticket holds nothing
    EXPECT_EQ(gate.connections(), 1u);
    moved.reset();
    moved.reset();
    EXPECT_EQ(gate.connections(), 0u);
    EXPECT_TRUE(admitted(gate.admit("192.0.2.1")));
}

TEST(ConnectionGate, RateLimitsAnAddressByTheClock) {
    ManualClock clock;
    ConnectionGate gate(LimitsConfig{.connects_per_second_per_ip = 2}, clock);
    EXPECT_TRUE(admitted(gate.admit("192.0.2.1")));  // the tickets end at once: only the rate counts
    EXPECT_TRUE(admitted(gate.admit("192.0.2.1")));
    EXPECT_EQ(refusal(gate.admit("192.0.2.1")), Refusal::TooFastFromAddress);
    clock.advance(500ms);
    EXPECT_TRUE(admitted(gate.admit("192.0.2.1")));
    EXPECT_EQ(gate.connections(), 0u);
}

TEST(ConnectionGate, RacingLoopsNeverPassTheNodeLimit) {
    ManualClock clock;
    ConnectionGate gate(LimitsConfig{.connections_per_node = 50, .connections_per_ip = 0}, clock);
    std::vector<std::vector<ConnectionGate::Ticket>> held(4);
    std::vector<std::thread> loops;
    for (std::size_t t = 0; t < held.size(); ++t)
        loops.emplace_back([&, t] {
            for (int i = 0; i < 1000; ++i) {
                auto result = gate.admit("192.0.2.1");
                if (auto* ticket = std::get_if<ConnectionGate::Ticket>(&result)) held[t].push_back(std::move(*ticket));
                if (i % 7 == 0 && !held[t].empty()) held[t].pop_back();
            }
        });
    for (auto& loop : loops) loop.join();
    std::size_t total = 0;
    for (const auto& tickets : held) total += tickets.size();
    EXPECT_EQ(gate.connections(), total);
    EXPECT_LE(total, 50u);
}

}  // namespace
}  // namespace wspush
