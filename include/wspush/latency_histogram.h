// A latency histogram for /metrics: one thread observes, any thread reads a snapshot.
//
// In include/ because engines report their storage latency through EngineStats (broker.h).
// Every histogram of wspush has the same buckets, so that a dashboard can put the event loops'
// lag, the Redis command latency and the publish latency on one axis.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace wspush {

// Upper bounds, in seconds, of the buckets (+Inf is implied).
inline constexpr std::array<double, 12> kLatencyBuckets{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                        0.01,   0.025,   0.05,   0.1,   0.25,   1.0};

struct LatencySnapshot {
    std::array<std::uint64_t, kLatencyBuckets.size() + 1> buckets{};  // per bucket, not cumulative; +Inf last
    std::uint64_t count = 0;
    std::uint64_t sumMicros = 0;

    LatencySnapshot& operator+=(const LatencySnapshot& other) noexcept {
        for (std::size_t i = 0; i < buckets.size(); ++i) buckets[i] += other.buckets[i];
        count += other.count;
        sumMicros += other.sumMicros;
        return *this;
    }
};

class LatencyHistogram {
public:
    // From the one writer thread only: a relaxed load and store, no locked instruction.
    void observe(std::chrono::nanoseconds elapsed) noexcept {
        double seconds = std::chrono::duration<double>(elapsed).count();
        std::size_t bucket = 0;
        while (bucket < kLatencyBuckets.size() && seconds > kLatencyBuckets[bucket]) ++bucket;
        bump(buckets_[bucket], 1);
        bump(count_, 1);
        bump(sumMicros_, static_cast<std::uint64_t>(std::max<std::int64_t>(elapsed.count(), 0) / 1000));
    }

    LatencySnapshot snapshot() const noexcept {
        LatencySnapshot snapshot;
        for (std::size_t i = 0; i < buckets_.size(); ++i)
            snapshot.buckets[i] = buckets_[i].load(std::memory_order_relaxed);
        snapshot.count = count_.load(std::memory_order_relaxed);
        snapshot.sumMicros = sumMicros_.load(std::memory_order_relaxed);
        return snapshot;
    }

private:
    static void bump(std::atomic<std::uint64_t>& value, std::uint64_t n) noexcept {
        value.store(value.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }

    std::array<std::atomic<std::uint64_t>, kLatencyBuckets.size() + 1> buckets_{};
    std::atomic<std::uint64_t> count_{0};
    std::atomic<std::uint64_t> sumMicros_{0};
};

}  // namespace wspush
