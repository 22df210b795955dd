// Presence in Redis, beside the channel's other keys (redis_keys.h): per channel a hash client →
// entry, a zset client → expire-at and a hash user → connections. One script per call keeps the
// three in step and drops expired entries first (at most 1,000 per call), so a node that died
// leaves presence within the entries' ttl, and `stats` is two HLENs (docs/engines.md).
//
// Transitions are made and returned by the same scripts, so that of several nodes exactly one
// sees each: every reply is {payload, {kind, entry, reason, …}}, the list empty unless the
// channel is reported. A reported channel is also in its shard's live index (RedisKeys::
// presenceLive), which sweep() reads to find the channels that expired whole.
//
// It shares the Redis engine's connections and loop (RedisBroker::withShardOf): nothing here
// blocks, and completions run on that loop.
#pragma once

#include <functional>
#include <memory>
#include <optional>

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
    void remove(std::string_view channel, std::vector<std::string> clients, std::string reason) override;
    void list(std::string_view channel, std::size_t limit, PresenceListCompletion done) override;
    void stats(std::string_view channel, PresenceStatsCompletion done) override;
    void hasUsers(std::string_view channel, std::vector<std::string> users, PresenceHasUsersCompletion done) override;
    void users(std::string_view channel, std::string cursor, std::size_t limit, PresenceUsersCompletion done) override;
    void reportTransitions(PresenceTransitionOptions options) override;
    void sweep() override;

private:
    // A refresh of thousands of entries in one script would hold Redis, and every command queued
    // behind it on the node's connection, for tens of milliseconds (31 ms for 10,000): it goes in
    // chunks of this many entries, each sent once the previous one is answered, so that other
    // commands get in between. 64 rather than 256: a refresh round of 10,000 entries costs the
    // same Redis time (44.6 ms against 44.7), and a command waits behind a chunk of 0.3 ms
    // instead of 1.2 (bench/RESULTS.md).
    static constexpr std::size_t kAddChunk = 64;

    // A sweep takes at most this many channels of each shard's live index, the rest the next one:
    // a sweep's work stays bounded after a node with many channels died.
    static constexpr std::size_t kSweepChannels = 100;

    struct Adding {
        std::string channel;
        std::int64_t nowMs;
        bool reported;
        std::string expiresAt;
        std::vector<std::string> head;  // the ARGV every chunk starts with
        // Encoded a chunk at a time, as it is sent: encoding 10,000 entries at once held the loop
        // (and the presence_stats behind it) for milliseconds.
        std::vector<PresenceEntry> entries;
        std::size_t chunks() const { return (entries.size() + kAddChunk - 1) / kAddChunk; }
    };

    bool isReported(std::string_view channel) const;
    std::vector<std::string> keysOf(std::string_view channel) const;
    // ARGV[1..3] of every script: now, what the call reports ("0" nothing, "1" the channel's
    // transitions, "2" those and the users' status), the offline grace (ms).
    std::vector<std::string> argsOf(std::string_view channel, std::int64_t now) const;
    void addChunks(std::shared_ptr<Adding> adding, std::size_t next);
    // Runs the sweep script on `channel`, on the shard connection whose keys hold it.
    void sweepChannel(RedisConnection& commands, std::string channel, std::int64_t now);
    // Reports the transitions of a script's reply and returns its payload; nullptr, reporting
    // nothing, when the result is not such a reply (an error, a failure).
    const RedisReply* reportAndUnwrap(const RedisResult& result, std::string_view channel, std::int64_t now) const;

    RedisBroker& engine_;
    Clock clock_;
    // Set once by reportTransitions(), before any other call.
    std::optional<PresenceTransitionOptions> reporting_;
    RedisScript addScript_;
    RedisScript removeScript_;
    RedisScript listScript_;
    RedisScript statsScript_;
    RedisScript hasUsersScript_;
    RedisScript usersScript_;
    RedisScript sweepScript_;
};

}  // namespace wspush
