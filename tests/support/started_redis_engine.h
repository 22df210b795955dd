// A Redis engine on its own loop, against the shared test redis-servers (shared_redis_shards.h),
// for the contract suites of the stores that live in it (presence, inbox, webhook stream): build
// the store on `engine`, then start() — a store loads its scripts before the engine starts.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "engine/redis/redis_broker.h"
#include "support/engine_loop.h"
#include "support/shared_redis_shards.h"

namespace wspush::testing {

template <std::size_t Shards>
struct StartedRedisEngine {
    StartedRedisEngine(const char* name, std::function<std::int64_t()> clock)
        : StartedRedisEngine(sharedRedisShards<Shards>(name), std::string(name), std::move(clock)) {}
    // Another node of `cluster`'s cluster: an engine of its own on the same shards and keys.
    StartedRedisEngine(const StartedRedisEngine& cluster, const std::string& node, std::function<std::int64_t()> clock)
        : StartedRedisEngine(cluster.options, node, std::move(clock)) {}

    // One node of a cluster: `shards` from sharedRedisShards, shared by its nodes (the same
    // shards and prefix), and the node's name. A node started again under its name is a new
    // instance: its mids and epochs differ from the previous one's.
    StartedRedisEngine(RedisBrokerOptions shards, const std::string& nodeName, std::function<std::int64_t()> clock)
        : options(std::move(shards)) {
        static std::atomic<int> instances{0};
        std::string id = options.prefix + "-" + nodeName + "-" + std::to_string(++instances);
        engine = std::make_unique<RedisBroker>(options, id, std::move(clock));
        engine->setEventHandler(&handler, nodeName);
    }

    // Starts the engine and waits (5 s at most) until it reached every shard.
    void start() {
        using namespace std::chrono_literals;
        engine->start(loop.context());
        auto deadline = std::chrono::steady_clock::now() + 5s;
        auto ready = [&] {
            for (const auto& shard : engine->health())
                if (!shard.ok) return false;
            return true;
        };
        while (!ready() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
        EXPECT_TRUE(ready());
    }

    struct NoHandler : BrokerEventHandler {
        void onPublication(const PublicationPtr&) override {}
        void onControl(std::string_view) override {}
    } handler;
    RedisBrokerOptions options;
    EngineLoop loop;
    std::unique_ptr<RedisBroker> engine;
};

}  // namespace wspush::testing
