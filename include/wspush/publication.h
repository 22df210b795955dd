// A publication as the engine hands it to the node: immutable once made.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace wspush {

// Where a channel's stream stands: the offset of its latest publication (0 before the first one)
// within an epoch. A new epoch means the sequence restarted (the stream was lost and recreated),
// so offsets of different epochs are not comparable.
struct StreamPosition {
    std::uint64_t offset = 0;
    std::string epoch;

    // The same position of the same stream (InboxDevice's defaulted == compares cursors). No
    // ordering: offsets of different epochs are not comparable.
    bool operator==(const StreamPosition&) const = default;
};

// Counts what became of one publication, for a backend that asked to wait for acknowledgements
// (`"wait":{"acks":N,"timeout_ms":T}`) or for the number of connections reached (/api/send).
// Shared by the loops that deliver it, the nodes that report to it and the API request that
// waits; thread-safe.
//
// The report is made of parts: the event loops of this node that deliver the publication (the
// router adds them), or, on an engine of several nodes, the nodes that received it (Node adds
// Published::nodes). It starts held: the publish has not completed, so more parts may come.
// It is done, once, when
//   - it was released (the publish completed) and no part is pending, and either no acks are
//     wanted or nobody was reached (nobody is left who could ack);
//   - or `wantedAcks` acks arrived;
//   - or expire() (the caller's timeout) is called.
// Parts may be done before they are added (a remote node can report before the publish
// completes here), so the pending count may be transiently negative; it is final at release().
class DeliveryReport {
public:
    using Done = std::function<void(std::uint64_t reached, std::uint64_t acked)>;
    // Called on every ack, also after the report is done: a node's part report forwards its
    // acks to the publishing node.
    using AckForward = std::function<void()>;

    // `wantedAcks` 0: done once released and every part delivered. Otherwise done at that many
    // acks (or by expire()).
    DeliveryReport(std::uint64_t wantedAcks, Done done, AckForward onAck = {})
        : wantedAcks_(wantedAcks), done_(std::move(done)), onAck_(std::move(onAck)) {}

    // `parts` more parts will report with partDone().
    void addParts(std::uint64_t parts) {
        std::unique_lock lock(mutex_);
        pendingParts_ += static_cast<std::int64_t>(parts);
        settle(lock);
    }
    // One part delivered, reaching `reached` connections besides those counted with reached().
    void partDone(std::uint64_t reached = 0) {
        reached_.fetch_add(reached, std::memory_order_relaxed);
        std::unique_lock lock(mutex_);
        --pendingParts_;
        settle(lock);
    }
    // The publish completed: every part is added.
    void release() {
        std::unique_lock lock(mutex_);
        held_ = false;
        settle(lock);
    }
    // Per connection, on the delivery path: no lock.
    void reached() { reached_.fetch_add(1, std::memory_order_relaxed); }
    void acked() {
        if (onAck_) onAck_();
        if (acked_.fetch_add(1, std::memory_order_acq_rel) + 1 == wantedAcks_) finish();
    }
    void expire() { finish(); }
    bool finished() const { return finished_.load(std::memory_order_acquire); }

    // Runs `hook` once the report is done (at once if it is already): for whoever keeps an index
    // of reports. At most one hook.
    void whenFinished(std::function<void()> hook) {
        {
            std::lock_guard lock(mutex_);
            if (!finished()) {
                finishedHook_ = std::move(hook);
                return;
            }
        }
        hook();
    }

private:
    void settle(std::unique_lock<std::mutex>& lock) {
        if (held_ || pendingParts_ > 0) return;
        lock.unlock();
        // Every recipient has it queued; without acks to wait for, or with nobody left who
        // could ack, the answer is known.
        if (wantedAcks_ == 0 || reached_.load(std::memory_order_relaxed) == 0) finish();
    }
    void finish() {
        if (finished_.exchange(true, std::memory_order_acq_rel)) return;
        done_(reached_.load(std::memory_order_relaxed), acked_.load(std::memory_order_relaxed));
        done_ = nullptr;
        std::function<void()> hook;
        {
            std::lock_guard lock(mutex_);
            hook.swap(finishedHook_);
        }
        if (hook) hook();
    }

    std::uint64_t wantedAcks_;
    Done done_;
    AckForward onAck_;
    std::atomic<std::uint64_t> reached_{0};
    std::atomic<std::uint64_t> acked_{0};
    std::atomic<bool> finished_{false};
    // Parts are counted under a lock: they change once per loop or node, never per connection.
    std::mutex mutex_;
    std::int64_t pendingParts_ = 0;
    bool held_ = true;
    std::function<void()> finishedHook_;
};

// Where a publication's delivery report lives, for engines of several nodes: the publishing node's
// name and its id for the report. Each node that delivers the publication tells that node how many
// connections it reached and every ack it got (Broker::publishControl).
struct ReportOrigin {
    std::string node;
    std::uint64_t id = 0;
};

struct Publication {
    std::string channel;
    std::uint64_t offset = 0;  // gap-free and increasing per channel within `epoch`
    std::string epoch;
    std::string mid;               // unique message id
    std::int64_t timestampMs = 0;  // Unix milliseconds when the engine accepted it
    std::string data;              // compact JSON text of the payload, never containing a raw newline
    int qos = 0;                   // 0 at most once, 1 at least once, 2 exactly once
    // Not a publication but a channel event (a join or leave push, Broker::publishEvent): `data`
    // is the frame to send as it is, at most once, to the channel's live subscribers. It has no
    // offset or epoch and is not part of the stream (no history, no gap).
    bool event = false;
    // Set only when the publisher waits for a report; null otherwise, so unused reports cost nothing.
    std::shared_ptr<DeliveryReport> report;
    // Engines of several nodes: set when the publisher (on whichever node) waits for a report.
    std::shared_ptr<const ReportOrigin> reportOrigin;
};

using PublicationPtr = std::shared_ptr<const Publication>;

}  // namespace wspush
