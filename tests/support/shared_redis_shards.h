// Redis servers shared by the engine contract suites: `Shards` real redis-server processes,
// started once for the whole test binary. Each engine made on them gets a key prefix of its own,
// so that tests never see each other's keys.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "engine/redis/redis_broker.h"
#include "support/redis_server_process.h"

namespace wspush::testing {

// Options for an engine on the shared shards, with a fresh prefix (`<what><n>`), which is also a
// good instance id.
template <std::size_t Shards>
RedisBrokerOptions sharedRedisShards(const std::string& what) {
    static std::vector<std::unique_ptr<RedisServerProcess>> servers = [] {
        std::vector<std::unique_ptr<RedisServerProcess>> started;
        for (std::size_t i = 0; i < Shards; ++i) started.push_back(std::make_unique<RedisServerProcess>());
        return started;
    }();
    static std::atomic<int> instances{0};
    RedisBrokerOptions options;
    for (const auto& server : servers)
        options.shards.push_back(RedisShardOptions{server->address(), server->redisAddress(), std::nullopt});
    options.prefix = what + std::to_string(++instances);
    return options;
}

}  // namespace wspush::testing
