// Finds a shard's master through Redis Sentinel: before every connection attempt, the Sentinels
// are asked in turn (`SENTINEL get-master-addr-by-name`), the first answer wins, and a Sentinel
// that answered is asked first next time. Non-blocking, on the engine's io_context.
#pragma once

#include <chrono>

#include <boost/asio/io_context.hpp>

#include "engine/redis/redis_broker.h"

namespace wspush {

RedisAddressSource sentinelMasterAddress(boost::asio::io_context& context, RedisSentinelShard shard,
                                         std::chrono::milliseconds connectTimeout,
                                         std::chrono::milliseconds commandTimeout);

}  // namespace wspush
