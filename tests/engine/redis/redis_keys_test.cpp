#include "engine/redis/redis_keys.h"

#include <map>
#include <string>

#include <gtest/gtest.h>

namespace wspush {
namespace {

TEST(RedisKeys, EveryKeyOfAChannelCarriesItsHashTag) {
    RedisKeys keys("wsp");
    EXPECT_EQ(keys.stream("news"), "wsp:{c:news}:s");
    EXPECT_EQ(keys.meta("news"), "wsp:{c:news}:m");
    EXPECT_EQ(keys.pubsub("news"), "wsp:{c:news}:p");
    EXPECT_EQ(keys.idempotency("news", "k1"), "wsp:{c:news}:i:k1");
}

TEST(RedisKeys, APubSubChannelNamesItsChannel) {
    RedisKeys keys("wsp");
    EXPECT_EQ(keys.channelOf(keys.pubsub("ns:room-1")), "ns:room-1");
    EXPECT_EQ(keys.channelOf("wsp:ctl"), "");
    EXPECT_EQ(keys.channelOf("other:{c:news}:p"), "");
    EXPECT_EQ(keys.channelOf("wsp:{c:news}:s"), "");
}

TEST(RedisKeys, TheWebhookStreamHasAHashTagOfItsOwn) {
    EXPECT_EQ(RedisKeys("wsp").webhooks(), "wsp:{webhooks}");
}

TEST(ShardOf, IsStableAndSpreadsChannels) {
    std::map<std::size_t, int> counts;
    for (int i = 0; i < 10000; ++i) {
        std::string channel = "channel-" + std::to_string(i);
        std::size_t shard = shardOf(channel, 4);
        ASSERT_LT(shard, 4u);
        ASSERT_EQ(shard, shardOf(channel, 4));
        ++counts[shard];
    }
    for (auto [shard, count] : counts) EXPECT_NEAR(count, 2500, 250) << "shard " << shard;
    EXPECT_EQ(shardOf("anything", 1), 0u);
}

TEST(ShardOf, AppendingAShardMovesChannelsOnlyToTheNewShard) {
    int moved = 0;
    for (int i = 0; i < 10000; ++i) {
        std::string channel = "c" + std::to_string(i);
        std::size_t before = shardOf(channel, 3), after = shardOf(channel, 4);
        if (before != after) {
            EXPECT_EQ(after, 3u) << channel;
            ++moved;
        }
    }
    EXPECT_NEAR(moved, 2500, 300) << "about 1/N of the channels move";
}

}  // namespace
}  // namespace wspush
