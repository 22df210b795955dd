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
};

// Counts what became of one publication, for a backend that asked to wait for acknowledgements
// (`"wait":{"acks":N,"timeout_ms":T}`) or for the number of connections reached (/api/send).
// Shared by the loops that deliver it and the API request that waits; thread-safe.
class DeliveryReport {
public:
    using Done = std::function<void(std::uint64_t reached, std::uint64_t acked)>;

    // `wantedAcks` 0: done once every loop has delivered. Otherwise done at that many acks
    // (or by expire(), the caller's timeout).
    DeliveryReport(std::uint64_t wantedAcks, Done done) : wantedAcks_(wantedAcks), done_(std::move(done)) {}

    void expectLoops(std::uint64_t loops) {
        pendingLoops_.store(loops, std::memory_order_relaxed);
        if (loops == 0) loopsDone();
    }
    void reached() { reached_.fetch_add(1, std::memory_order_relaxed); }
    void loopDelivered() {
        if (pendingLoops_.fetch_sub(1, std::memory_order_acq_rel) == 1) loopsDone();
    }
    void acked() {
        if (acked_.fetch_add(1, std::memory_order_acq_rel) + 1 == wantedAcks_) finish();
    }
    void expire() { finish(); }
    bool finished() const { return finished_.load(std::memory_order_acquire); }

private:
    void loopsDone() {
        // Every recipient has it queued; without acks to wait for, or with nobody left who
        // could ack, the answer is known.
        if (wantedAcks_ == 0 || reached_.load(std::memory_order_relaxed) == 0) finish();
    }
    void finish() {
        if (finished_.exchange(true, std::memory_order_acq_rel)) return;
        done_(reached_.load(std::memory_order_relaxed), acked_.load(std::memory_order_relaxed));
        done_ = nullptr;
    }

    std::uint64_t wantedAcks_;
    Done done_;
    std::atomic<std::uint64_t> pendingLoops_{0};
    std::atomic<std::uint64_t> reached_{0};
    std::atomic<std::uint64_t> acked_{0};
    std::atomic<bool> finished_{false};
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
    // Set only when the publisher waits for a report; null otherwise, so unused reports cost nothing.
    std::shared_ptr<DeliveryReport> report;
    // Engines of several nodes: set when the publisher (on whichever node) waits for a report.
    std::shared_ptr<const ReportOrigin> reportOrigin;
};

using PublicationPtr = std::shared_ptr<const Publication>;

}  // namespace wspush
