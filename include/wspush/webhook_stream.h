// The cluster's queue of webhook events (docs/webhooks.md), between the nodes that see them and
// the node that sends them: whichever node sees an event appends it, and every node reads, each
// event going to one reader, which acknowledges it once it is final (delivered or given up). What
// a reader took and never acknowledged (it died, or stopped first) is read again: by the same node
// when it comes back under its name, or by another once the reader has no heartbeat. So one node
// sends each event, and a node's death loses none it had taken: at least once, receivers
// deduplicate by the event's id.
//
// The memory engine keeps it in memory (MemoryWebhookStream, one node: append and read meet in
// one process), the Redis engine in a Redis stream with a consumer group (RedisWebhookStream);
// both pass tests/engine/webhook_stream_contract_test.cpp.
//
// Completions run exactly once, on any thread (memory: before the call returns; Redis: on the
// engine's loop), like the Broker's.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <variant>
#include <vector>

#include "wspush/broker.h"

namespace wspush {

// An event as the stream keeps it: its kind's name (webhook_event.h) and its encoded JSON.
struct WebhookStreamEvent {
    std::string name;
    std::string json;

    bool operator==(const WebhookStreamEvent&) const = default;
};

// An event read, with the id acknowledge() takes.
struct WebhookStreamEntry {
    std::string entryId;
    WebhookStreamEvent event;
};

// How many of the appended events were dropped because the stream held `maxLength` unread or
// unacknowledged ones; or why none could be appended.
using WebhookAppendCompletion = std::function<void(std::variant<std::size_t, BrokerError>)>;
using WebhookReadCompletion = std::function<void(std::variant<std::vector<WebhookStreamEntry>, BrokerError>)>;

class WebhookStream {
public:
    virtual ~WebhookStream() = default;

    // Appends `events` in order, while the stream holds fewer than its bound (the rest are
    // dropped, newest first, and counted in the answer). Any thread.
    virtual void append(std::vector<WebhookStreamEvent> events, WebhookAppendCompletion done) = 0;

    // At most `max` events for this node to send: first those it had taken before and not
    // acknowledged (a restart under the same name), then those of readers that are gone
    // (Redis: no heartbeat; checked every few seconds), then new ones in append order. An event
    // is not given again to anyone while its reader lives, unless that reader reads again after
    // a restart. Any thread; one read at a time.
    virtual void read(std::size_t max, WebhookReadCompletion done) = 0;

    // These events are final: they are never read again, and leave the stream. Any thread.
    virtual void acknowledge(std::vector<std::string> entryIds) = 0;
};

}  // namespace wspush
