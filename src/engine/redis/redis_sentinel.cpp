#include "engine/redis/redis_sentinel.h"

#include <memory>

#include <boost/asio/steady_timer.hpp>

#include "engine/redis/publication_codec.h"

namespace wspush {

namespace {

using Found = std::function<void(std::variant<RedisAddress, RedisFailure>)>;

// One lookup: the Sentinels in turn, from `first`, each given one connection attempt and one
// command within the timeouts. Owns the connection of the Sentinel being asked.
class MasterLookup : public std::enable_shared_from_this<MasterLookup> {
public:
    MasterLookup(boost::asio::io_context& context, RedisSentinelShard shard, std::shared_ptr<std::size_t> preferred,
                 std::chrono::milliseconds connectTimeout, std::chrono::milliseconds commandTimeout, Found found)
        : context_(context),
          shard_(std::move(shard)),
          preferred_(std::move(preferred)),
          connectTimeout_(connectTimeout),
          commandTimeout_(commandTimeout),
          found_(std::move(found)),
          timer_(context) {}

    void start() { ask(0); }

private:
    void ask(std::size_t attempt) {
        if (attempt == shard_.sentinels.size())
            return finish(RedisFailure{"no Sentinel knows master \"" + shard_.masterName + "\"" +
                                       (lastError_.empty() ? "" : ": " + lastError_)});
        std::size_t index = (*preferred_ + attempt) % shard_.sentinels.size();
        RedisAddress sentinel = shard_.sentinels[index];
        RedisConnectionOptions options;
        options.name = "sentinel " + sentinel.describe();
        options.address = fixedRedisAddress(sentinel);
        options.connectTimeout = connectTimeout_;
        options.commandTimeout = commandTimeout_;
        std::weak_ptr<MasterLookup> weak = weak_from_this();
        answered_ = false;
        connection_ = RedisConnection::create(context_, options,
                                              RedisConnection::Events{[weak, attempt, index] {
                                                                          if (auto self = weak.lock())
                                                                              self->onSentinelReady(attempt, index);
                                                                      },
                                                                      [weak](const std::string& error) {
                                                                          if (auto self = weak.lock())
                                                                              self->lastError_ = error;
                                                                      }});
        connection_->start();
        timer_.expires_after(connectTimeout_ + commandTimeout_);
        // The pending wait owns the lookup: nothing else does once start() returned. finish()
        // cancels it, which releases the lookup.
        timer_.async_wait([self = shared_from_this(), attempt](boost::system::error_code ec) {
            if (ec || self->answered_) return;
            self->lastError_ = "timeout";
            self->next(attempt);
        });
    }

    void onSentinelReady(std::size_t attempt, std::size_t index) {
        if (answered_) return;
        std::weak_ptr<MasterLookup> weak = weak_from_this();
        connection_->command({"SENTINEL", "get-master-addr-by-name", shard_.masterName},
                             [weak, attempt, index](RedisResult result) {
                                 auto self = weak.lock();
                                 if (!self || self->answered_) return;
                                 self->onAnswer(attempt, index, result);
                             });
    }

    void onAnswer(std::size_t attempt, std::size_t index, const RedisResult& result) {
        const auto* reply = std::get_if<RedisReply>(&result);
        auto host =
            reply && reply->isArray() && reply->elements.size() == 2 ? reply->elements[0].asString() : std::nullopt;
        auto port = host ? reply->elements[1].asInteger() : std::nullopt;
        if (!port || *port <= 0 || *port > 65535 || host->empty()) {
            lastError_ = reply ? "unexpected answer " + reply->describe() : std::get<RedisFailure>(result).message;
            return next(attempt);
        }
        *preferred_ = index;
        finish(RedisAddress{std::string(*host), static_cast<unsigned short>(*port)});
    }

    void next(std::size_t attempt) {
        answered_ = true;
        closeConnection();
        ask(attempt + 1);
    }

    void finish(std::variant<RedisAddress, RedisFailure> outcome) {
        answered_ = true;
        timer_.cancel();
        closeConnection();
        auto found = std::move(found_);
        found(std::move(outcome));
    }

    void closeConnection() {
        if (!connection_) return;
        // Not inside the connection's own callback: RedisConnection defers its teardown.
        connection_->stop();
        connection_.reset();
    }

    boost::asio::io_context& context_;
    RedisSentinelShard shard_;
    std::shared_ptr<std::size_t> preferred_;
    std::chrono::milliseconds connectTimeout_;
    std::chrono::milliseconds commandTimeout_;
    Found found_;
    boost::asio::steady_timer timer_;
    std::shared_ptr<RedisConnection> connection_;
    std::string lastError_;
    bool answered_ = false;
};

}  // namespace

RedisAddressSource sentinelMasterAddress(boost::asio::io_context& context, RedisSentinelShard shard,
                                         std::chrono::milliseconds connectTimeout,
                                         std::chrono::milliseconds commandTimeout) {
    auto preferred = std::make_shared<std::size_t>(0);
    return [&context, shard = std::move(shard), preferred, connectTimeout, commandTimeout](Found found) {
        std::make_shared<MasterLookup>(context, shard, preferred, connectTimeout, commandTimeout, std::move(found))
            ->start();
    };
}

}  // namespace wspush
