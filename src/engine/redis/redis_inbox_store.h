// Inbox devices in Redis, beside the user's personal channel (redis_keys.h: one hash per user,
// device → "<epoch>\n<offset>\n<last seen>"). A user has a few devices, so each script reads the
// whole hash, drops the devices not seen within the ttl, and answers (docs/engines.md).
//
// It shares the Redis engine's connections and loop (RedisBroker::withShardOf): nothing here
// blocks, and completions run on that loop.
#pragma once

#include <functional>

#include "engine/redis/redis_broker.h"
#include "engine/redis/redis_script.h"
#include "wspush/inbox_store.h"

namespace wspush {

class RedisInboxStore final : public InboxStore {
public:
    using Clock = std::function<std::int64_t()>;  // Unix milliseconds

    // `engine` outlives this store, and is not started yet.
    RedisInboxStore(RedisBroker& engine, Clock clock);

    void touch(std::string_view user, std::string_view device, std::chrono::milliseconds deviceTtl,
               InboxDeviceCompletion done) override;
    void advance(std::string_view user, std::string_view device, StreamPosition cursor,
                 std::chrono::milliseconds deviceTtl, InboxLowestCompletion done) override;
    void devices(std::string_view user, std::chrono::milliseconds deviceTtl, InboxDevicesCompletion done) override;

private:
    RedisBroker& engine_;
    Clock clock_;
    RedisScript touchScript_;
    RedisScript advanceScript_;
    RedisScript devicesScript_;
};

}  // namespace wspush
