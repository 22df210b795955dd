// Runs a test's io_context on the test thread until a condition holds, bounded in time.
#pragma once

#include <chrono>
#include <functional>

#include <boost/asio/io_context.hpp>

#include "engine/redis/redis_connection.h"

namespace wspush::testing {

// Runs `context` until `condition` holds or `timeout` passes; returns the condition's last value.
inline bool runUntil(boost::asio::io_context& context, const std::function<bool()>& condition,
                     std::chrono::milliseconds timeout = std::chrono::milliseconds(3000)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!condition()) {
        if (std::chrono::steady_clock::now() >= deadline) return condition();
        context.run_for(std::chrono::milliseconds(5));
        if (context.stopped()) context.restart();
    }
    return true;
}

// Runs `context` for `duration`, whatever happens.
inline void runFor(boost::asio::io_context& context, std::chrono::milliseconds duration) {
    runUntil(
        context, [] { return false; }, duration);
}

// A fixed address as the connection's address source.
inline RedisAddressSource fixedAddress(RedisAddress address) {
    return [address](auto found) { found(address); };
}

}  // namespace wspush::testing
