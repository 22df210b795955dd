#include "engine/memory/memory_webhook_stream.h"

#include <algorithm>

namespace wspush {

void MemoryWebhookStream::append(std::vector<WebhookStreamEvent> events, WebhookAppendCompletion done) {
    std::size_t appended = 0;
    {
        std::lock_guard lock(mutex_);
        for (; appended < events.size() && unread_.size() + unacknowledged_.size() < maxLength_; ++appended)
            unread_.push_back(WebhookStreamEntry{std::to_string(nextId_++), std::move(events[appended])});
    }
    done(events.size() - appended);
}

void MemoryWebhookStream::read(std::size_t max, WebhookReadCompletion done) {
    std::vector<WebhookStreamEntry> entries;
    {
        std::lock_guard lock(mutex_);
        entries.reserve(std::min(max, unread_.size()));
        while (entries.size() < max && !unread_.empty()) {
            WebhookStreamEntry& entry = entries.emplace_back(std::move(unread_.front()));
            unread_.pop_front();
            unacknowledged_.insert(entry.entryId);
        }
    }
    done(std::move(entries));
}

void MemoryWebhookStream::acknowledge(std::vector<std::string> entryIds) {
    std::lock_guard lock(mutex_);
    for (const std::string& id : entryIds) unacknowledged_.erase(id);
}

}  // namespace wspush
