// Presence in Redis, beside the channel's other keys (redis_keys.h): per channel a hash client →
// entry, a zset client → expire-at and a hash user → connections. One script per call keeps the
// three in step and drops expired entries first (at most 1,000 per call), so a node that died
// leaves presence within the entries' ttl, and `stats` is two HLENs (docs/engines.md).
//
// It shares the Redis engine's connections and loop (RedisBroker::withShardOf): nothing here
// blocks, and completions run on that loop.
#pragma once

#include <functional>
#include <memory>

#include "engine/redis/redis_broker.h"
#include "engine/redis/redis_script.h"
#include "wspush/presence_store.h"

namespace wspush {

class RedisPresenceStore final : public PresenceStore {
public:
    using Clock = std::function<std::int64_t()>;  // Unix milliseconds

    // `engine` outlives this store, and is not started yet.
    RedisPresenceStore(RedisBroker& engine, Clock clock);

    void add(std::string_view channel, std::vector<PresenceEntry> entries, std::chrono::milliseconds ttl) override;
    void remove(std::string_view channel, std::vector<std::string> clients) override;
    void list(std::string_view channel, std::size_t limit, PresenceListCompletion done) override;
    void stats(std::string_view channel, PresenceStatsCompletion done) override;
    void hasUsers(std::string_view channel, std::vector<std::string> users, PresenceHasUsersCompletion done) override;
    void users(std::string_view channel, std::string cursor, std::size_t limit, PresenceUsersCompletion done) override;

private:
    // A refresh of thousands of entries in one script would hold Redis, and every command queued
    // behind it on the node's connection, for tens of milliseconds (31 ms for 10,000): it goes in
    // chunks of this many entries, each sent once the previous one is answered, so that other
    // commands get in between.
    static constexpr std::size_t kAddChunk = 256;

    std::vector<std::string> keysOf(std::string_view channel) const;
    void addChunks(std::string channel, std::shared_ptr<std::vector<std::vector<std::string>>> chunks,
                   std::size_t next);

    RedisBroker& engine_;
    Clock clock_;
    RedisScript addScript_;
    RedisScript removeScript_;
    RedisScript listScript_;
    RedisScript statsScript_;
    RedisScript hasUsersScript_;
    RedisScript usersScript_;
};

}  // namespace wspush
