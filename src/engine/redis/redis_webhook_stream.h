// The cluster's webhook stream in Redis (webhook_stream.h): one Redis stream (redis_keys.h,
// webhooks()) read through the consumer group `wspushd`, each node a consumer under its name.
// Redis remembers what each consumer took and has not acknowledged (its pending entries): a node
// that comes back under its name reads its own first, and a live node claims those of a consumer
// whose node has no heartbeat (RedisBroker::nodes()). An acknowledged entry is deleted, so the
// stream's length counts exactly what is unread or unacknowledged: the bound appends check.
// docs/engines.md lists the commands of each call.
//
// It shares the Redis engine's connections and loop (RedisBroker::withShardOf): nothing here
// blocks (no XREADGROUP BLOCK: the connection carries every other command of the node), and
// completions run on that loop. What reads remember between calls is under a mutex, because
// acknowledge() may come from any thread while a read is under way.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>

#include "engine/redis/redis_broker.h"
#include "engine/redis/redis_script.h"
#include "wspush/webhook_stream.h"

namespace wspush {

struct RedisWebhookStreamOptions {
    // How often a read looks for consumers that are gone: the node list and XINFO CONSUMERS, a
    // round trip each, which a read every few milliseconds under load need not repeat. The first
    // read looks at once, so a starting node picks up what a dead one left.
    std::chrono::milliseconds takeOverInterval{std::chrono::seconds(5)};
    // A consumer is gone when its node has no heartbeat *and* it has not read for this long (XINFO
    // CONSUMERS' idle): the heartbeat alone would hand a live node's entries to another in the
    // seconds before its first heartbeat lands (a node starting) or after one was lost. A live
    // reader polls every 100 ms; the default is the daemon's heartbeat ttl.
    std::chrono::milliseconds takeOverIdle{std::chrono::seconds(15)};
};

class RedisWebhookStream final : public WebhookStream {
public:
    // `engine` outlives this stream, is not started yet, and is stopped before this stream goes
    // (what it completes then names this stream). `consumer` is this node's name, the one its
    // heartbeats carry; `maxLength` the most entries the stream holds, unread and unacknowledged.
    RedisWebhookStream(RedisBroker& engine, std::string consumer, std::size_t maxLength,
                       RedisWebhookStreamOptions options = {});

    void append(std::vector<WebhookStreamEvent> events, WebhookAppendCompletion done) override;
    void read(std::size_t max, WebhookReadCompletion done) override;
    void acknowledge(std::vector<std::string> entryIds) override;

private:
    // One read, through its steps: own pending entries, those of gone consumers, new ones.
    struct Read {
        std::size_t max = 0;
        WebhookReadCompletion done;
        std::vector<WebhookStreamEntry> entries;

        std::size_t room() const { return max - entries.size(); }
    };
    using ReadPtr = std::shared_ptr<Read>;
    // Sends one command (or script) on the stream's shard and hands its reply to the handler.
    using Request = std::function<void(RedisConnection&, RedisReplyHandler)>;
    // A reply that is not an error reply, or why there is none.
    using Answer = std::function<void(std::variant<RedisReply, BrokerError>)>;

    void send(Request request, Answer answer, bool mayCreateGroupAgain = true);
    void createGroup(RedisConnection& connection);
    void readOwnPending(ReadPtr read, std::string after);
    void takeOver(ReadPtr read);
    void readNew(ReadPtr read);
    void finish(const ReadPtr& read, std::optional<BrokerError> error = std::nullopt);
    void take(Read& read, const std::vector<RedisReply>& entries);
    void deleteEntries(std::vector<std::string> ids);

    RedisBroker& engine_;
    const std::string consumer_;
    const std::size_t maxLength_;
    const RedisWebhookStreamOptions options_;
    const std::string key_;
    RedisScript appendScript_;
    RedisScript takeOverScript_;

    // On the loop only. False until XGROUP CREATE answered, and again after a NOGROUP: the next
    // command goes behind a new XGROUP CREATE.
    bool groupExists_ = false;

    std::mutex mutex_;
    // Where the read of this consumer's own pending entries goes on (after which id); nullopt
    // once it read them all: they are only ever read once, on the first reads after a start.
    std::optional<std::string> ownPendingAfter_{"0"};
    std::chrono::steady_clock::time_point nextTakeOver_{};
    // Read and not yet acknowledged. A consumer that seemed gone may have had some of them taken
    // over; claimed back from that one later, they are still this node's to send, not new ones.
    std::unordered_set<std::string> handedOut_;
};

}  // namespace wspush
