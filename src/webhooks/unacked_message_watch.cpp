#include "webhooks/unacked_message_watch.h"

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include "base/clock.h"

namespace wspush {

namespace net = boost::asio;
using std::chrono::steady_clock;

UnackedMessageWatch::UnackedMessageWatch(net::io_context& context, std::shared_ptr<WebhookEventSource> source,
                                         DeviceLookup devices, std::string nodeName, steady_clock::duration after,
                                         std::size_t maxWatched)
    : context_(context),
      source_(std::move(source)),
      devices_(std::move(devices)),
      nodeName_(std::move(nodeName)),
      after_(after),
      maxWatched_(maxWatched),
      timer_(context) {}

void UnackedMessageWatch::watch(std::string user, std::string channel, StreamPosition position, std::string mid) {
    Watched watched{steady_clock::now() + after_, std::move(user), std::move(channel), std::move(position),
                    std::move(mid)};
    net::post(context_, [self = shared_from_this(), watched = std::move(watched)]() mutable {
        self->enqueue(std::move(watched));
    });
}

void UnackedMessageWatch::stop() {
    stopped_ = true;
    timer_.cancel();
    queue_.clear();
}

void UnackedMessageWatch::enqueue(Watched watched) {
    if (stopped_) return;
    if (queue_.size() >= maxWatched_) {
        if (dropped_.fetch_add(1, std::memory_order_relaxed) % 10000 == 0)
            spdlog::warn("webhooks: {} message(s) not watched for message_unacked: {} are already (webhooks.max_queue)",
                         dropped(), maxWatched_);
        return;
    }
    queue_.push_back(std::move(watched));
    arm();
}

void UnackedMessageWatch::arm() {
    if (armed_ || queue_.empty() || stopped_) return;
    armed_ = true;
    timer_.expires_at(queue_.front().due);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        self->armed_ = false;
        if (!ec) self->checkDue();
    });
}

void UnackedMessageWatch::checkDue() {
    steady_clock::time_point now = steady_clock::now();
    while (!queue_.empty() && queue_.front().due <= now && !stopped_) {
        auto watched = std::make_shared<Watched>(std::move(queue_.front()));
        queue_.pop_front();
        const std::string& user = watched->user;
        devices_(user,
                 [self = shared_from_this(), watched](std::variant<std::vector<InboxDevice>, BrokerError> result) {
                     std::vector<InboxDevice> devices;
                     if (auto* found = std::get_if<std::vector<InboxDevice>>(&result)) devices = std::move(*found);
                     // Not knowing the cursors, the backend hears of it: a needless push notification
                     // beats a message nobody sees.
                     self->check(std::move(*watched), std::move(devices));
                 });
    }
    arm();
}

void UnackedMessageWatch::check(Watched watched, std::vector<InboxDevice> devices) {
    for (const InboxDevice& device : devices)
        if (device.cursor.epoch == watched.position.epoch && device.cursor.offset >= watched.position.offset) return;
    WebhookEvent event;
    event.kind = WebhookEventKind::MessageUnacked;
    event.timeMs = Clock::system().unixMillis();
    event.user = std::move(watched.user);
    event.channel = std::move(watched.channel);
    event.node = nodeName_;
    event.offset = watched.position.offset;
    event.mid = std::move(watched.mid);
    source_->add({std::move(event)});
}

}  // namespace wspush
