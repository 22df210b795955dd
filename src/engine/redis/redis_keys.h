// Where the Redis engine keeps each thing (docs/engines.md lists every key, its type and TTL).
// Every key of a channel carries the hash tag {c:<channel>}, so that the keys a script touches
// always live in one slot and Redis Cluster needs no new layout.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace wspush {

class RedisKeys {
public:
    explicit RedisKeys(std::string prefix) : prefix_(std::move(prefix)) {}

    const std::string& prefix() const { return prefix_; }

    // The channel's history: a stream whose entry ids are `<offset>-0`.
    std::string stream(std::string_view channel) const { return tagged(channel, ":s"); }
    // The channel's position: a hash of `e` (epoch), `s` (top offset), `t` (history TTL, ms).
    std::string meta(std::string_view channel) const { return tagged(channel, ":m"); }
    // The result of an idempotent publish of the channel with `key`.
    std::string idempotency(std::string_view channel, std::string_view key) const {
        return tagged(channel, ":i:") + std::string(key);
    }
    // Who is subscribed (presence): a hash client → entry (JSON), a zset client → expire-at (Unix
    // ms), and a hash user → connections, whose length is the number of users.
    std::string presence(std::string_view channel) const { return tagged(channel, ":pe"); }
    std::string presenceExpiry(std::string_view channel) const { return tagged(channel, ":px"); }
    std::string presenceUsers(std::string_view channel) const { return tagged(channel, ":pu"); }
    // The same users by name (a sorted set, all scores 0), for paging through them in order.
    std::string presenceUserNames(std::string_view channel) const { return tagged(channel, ":pn"); }
    // The users of the user status channel whose last entry went, waiting out the offline grace:
    // a zset user → when it ends (Unix ms), and a hash user → "<reason length>:<reason><entry>"
    // (the last entry that went, and why).
    std::string presenceOfflineDue(std::string_view channel) const { return tagged(channel, ":pg"); }
    std::string presenceOfflineEntries(std::string_view channel) const { return tagged(channel, ":pf"); }
    // The inbox devices of a user's personal channel: a hash device → "<epoch>\n<offset>\n<last seen ms>".
    std::string inboxDevices(std::string_view channel) const { return tagged(channel, ":id"); }
    // The pub/sub channel its publications travel on.
    std::string pubsub(std::string_view channel) const { return tagged(channel, ":p"); }
    // The channel named by a pub/sub channel of ours; empty when it is not one.
    std::string_view channelOf(std::string_view pubsubChannel) const {
        constexpr std::string_view kOpen = ":{c:", kClose = "}:p";
        std::size_t head = prefix_.size() + kOpen.size();
        if (pubsubChannel.size() < head + kClose.size() || !pubsubChannel.starts_with(prefix_) ||
            pubsubChannel.substr(prefix_.size(), kOpen.size()) != kOpen || !pubsubChannel.ends_with(kClose))
            return {};
        return pubsubChannel.substr(head, pubsubChannel.size() - head - kClose.size());
    }

    // Control messages for every node, and for one node (also its pub/sub liveness probe).
    std::string controlAll() const { return prefix_ + ":ctl"; }
    std::string controlNode(std::string_view node) const { return prefix_ + ":node:" + std::string(node); }
    // Per shard, the channels of that shard whose presence transitions are reported, by the latest
    // expire-at of their entries (a zset): those due have expired whole, and a sweep reports them.
    // A key without a hash tag, beside keys of any slot: Redis Cluster would need one per slot.
    std::string presenceLive() const { return prefix_ + ":presence:live"; }
    // Node heartbeats: a hash node → info, and a zset node → expire-at (Unix ms).
    std::string nodes() const { return prefix_ + ":nodes"; }
    std::string nodesExpiry() const { return prefix_ + ":nodes:z"; }
    // The cluster's webhook events (webhook_stream.h): a stream of entries `n` (the event's name)
    // and `j` (its JSON), read through the consumer group `wspushd`, on the shard of
    // kWebhookShard. Its hash tag is its own, so that it could live in any slot of a Cluster.
    std::string webhooks() const { return prefix_ + ":{webhooks}"; }

private:
    std::string tagged(std::string_view channel, std::string_view suffix) const {
        std::string key;
        key.reserve(prefix_.size() + channel.size() + suffix.size() + 5);
        key.append(prefix_).append(":{c:").append(channel).append("}").append(suffix);
        return key;
    }

    std::string prefix_;
};

// The name whose shard (shardOf) keeps the webhook stream. No channel can have it: '$' is not
// allowed in their names.
inline constexpr std::string_view kWebhookShard = "$webhooks";

// Which shard keeps a channel: Lamping and Veach's jump consistent hash of the 64-bit FNV-1a of
// its name. Appending a shard moves about 1/N of the channels (to the new one) and no other:
// the moved channels start a new epoch there, and their subscribers are told (recovered:false).
inline std::size_t shardOf(std::string_view channel, std::size_t shards) {
    std::uint64_t key = 14695981039346656037ull;
    for (unsigned char c : channel) key = (key ^ c) * 1099511628211ull;
    std::int64_t bucket = -1, next = 0;
    while (next < static_cast<std::int64_t>(shards)) {
        bucket = next;
        key = key * 2862933555777941757ull + 1;
        next = static_cast<std::int64_t>(static_cast<double>(bucket + 1) * (static_cast<double>(std::int64_t{1} << 31) /
                                                                            static_cast<double>((key >> 33) + 1)));
    }
    return static_cast<std::size_t>(bucket);
}

}  // namespace wspush
