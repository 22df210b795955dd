// Where this node's webhook events are made: from the presence store's transitions (users online
// and offline, channels occupied and vacated, members added and removed) and from
// UnackedMessageWatch (message_unacked). Each event is made once in the cluster, by the node whose
// store call or check saw it, and appended to the cluster's WebhookStream, from which one node
// sends it (WebhookPump).
//
// Thread model: any thread may hand events in. They are encoded there, and appended from the
// given io_context (loop 0), because they arrive in engine completions, which must not call the
// engine; posting keeps their order. The counters are relaxed atomics. Owned by a shared_ptr,
// which pending appends hold.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "webhooks/webhook_dispatcher.h"
#include "webhooks/webhook_event.h"
#include "wspush/presence_store.h"
#include "wspush/webhook_stream.h"

namespace boost::asio {
class io_context;
}

namespace wspush {

struct WebhookSourceStats {
    std::uint64_t appended = 0;
    std::uint64_t droppedStreamFull = 0;   // the stream held webhooks.max_queue events
    std::uint64_t droppedUnavailable = 0;  // the stream could not be reached
};

class WebhookEventSource : public std::enable_shared_from_this<WebhookEventSource> {
public:
    // `stream` outlives the source; `dispatcher` says which kinds are wanted.
    WebhookEventSource(boost::asio::io_context& context, WebhookStream& stream,
                       std::shared_ptr<const WebhookDispatcher> dispatcher);

    bool wants(WebhookEventKind kind) const { return dispatcher_->wants(kind); }
    // Whether the presence store should report `channel`'s transitions: the user status channel
    // ($online) when a user event is wanted, channels of presence namespaces when a channel or
    // member event is.
    bool wantsTransitionsOf(std::string_view channel, bool presenceNamespace) const;

    // Any thread. Transitions of $ channels other than $online, and unwanted kinds, are ignored.
    void presenceChanged(const std::vector<PresenceTransition>& transitions);
    // Any thread. Events of unwanted kinds are ignored.
    void add(std::vector<WebhookEvent> events);

    WebhookSourceStats stats() const;

private:
    boost::asio::io_context& context_;
    WebhookStream& stream_;
    std::shared_ptr<const WebhookDispatcher> dispatcher_;
    std::atomic<std::uint64_t> appended_{0};
    std::atomic<std::uint64_t> droppedStreamFull_{0};
    std::atomic<std::uint64_t> droppedUnavailable_{0};
    std::atomic<std::int64_t> lastDropLogMs_{0};
};

}  // namespace wspush
