// The webhook stream of one node (webhook_stream.h): the node that appends is the node that reads,
// so the queue is a deque of unread events and the ids of those read and not yet acknowledged,
// under one mutex (an append per event seen, a read and an acknowledgement per batch sent). The
// reader is this process: nothing it took is ever read again, since nobody survives it to do so.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <unordered_set>

#include "wspush/webhook_stream.h"

namespace wspush {

class MemoryWebhookStream final : public WebhookStream {
public:
    // `maxLength`: the most events held, unread and unacknowledged together.
    explicit MemoryWebhookStream(std::size_t maxLength) : maxLength_(maxLength) {}

    void append(std::vector<WebhookStreamEvent> events, WebhookAppendCompletion done) override;
    void read(std::size_t max, WebhookReadCompletion done) override;
    void acknowledge(std::vector<std::string> entryIds) override;

private:
    const std::size_t maxLength_;
    std::mutex mutex_;
    std::uint64_t nextId_ = 1;
    std::deque<WebhookStreamEntry> unread_;
    // Only counted (they are never read again): their ids, until acknowledged.
    std::unordered_set<std::string> unacknowledged_;
};

}  // namespace wspush
