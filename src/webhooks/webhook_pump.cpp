#include "webhooks/webhook_pump.h"

#include <algorithm>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

namespace wspush {

namespace net = boost::asio;

WebhookPump::WebhookPump(net::io_context& context, WebhookStream& stream, std::shared_ptr<WebhookDispatcher> dispatcher,
                         Options options)
    : context_(context), stream_(stream), dispatcher_(std::move(dispatcher)), options_(options), timer_(context) {}

void WebhookPump::start() {
    read();
}

void WebhookPump::stop() {
    stopped_ = true;
    timer_.cancel();
}

void WebhookPump::read() {
    if (stopped_ || reading_) return;
    std::size_t room = options_.maxInFlight - std::min(inFlight_, options_.maxInFlight);
    if (room == 0) return later();
    std::size_t asked = std::min(room, options_.maxRead);
    reading_ = true;
    stream_.read(asked, [self = shared_from_this(), asked](auto result) {
        // A completion must not call the engine: the next read, and the acknowledgements, go
        // from the loop.
        net::post(self->context_,
                  [self, asked, result = std::move(result)]() mutable { self->onRead(std::move(result), asked); });
    });
}

void WebhookPump::onRead(std::variant<std::vector<WebhookStreamEntry>, BrokerError> result, std::size_t asked) {
    reading_ = false;
    if (stopped_) return;
    auto* entries = std::get_if<std::vector<WebhookStreamEntry>>(&result);
    if (entries == nullptr) {
        spdlog::debug("webhooks: cannot read the event stream: {}", std::get<BrokerError>(result).message);
        return later();
    }
    if (entries->empty()) return later();
    std::vector<std::string> ids;
    std::vector<WebhookStreamEvent> events;
    ids.reserve(entries->size());
    events.reserve(entries->size());
    for (auto& entry : *entries) {
        ids.push_back(std::move(entry.entryId));
        events.push_back(std::move(entry.event));
    }
    std::size_t count = ids.size();
    inFlight_ += count;
    dispatcher_->enqueueEncoded(events, [self = shared_from_this(), ids = std::move(ids), count](bool) mutable {
        // On the dispatcher's loop, which is ours.
        self->inFlight_ -= count;
        self->stream_.acknowledge(std::move(ids));
        if (!self->reading_) self->read();
    });
    if (count >= asked) return read();
    later();
}

void WebhookPump::later() {
    if (stopped_) return;
    timer_.expires_after(options_.pollInterval);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (!ec) self->read();
    });
}

}  // namespace wspush
