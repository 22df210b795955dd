// Where the daemon reads the time: one seam, so that tests move time by hand instead of waiting.
#pragma once

#include <chrono>
#include <cstdint>

namespace wspush {

class Clock {
public:
    using TimePoint = std::chrono::steady_clock::time_point;

    virtual ~Clock() = default;
    // Monotonic time, for deadlines and timeouts.
    virtual TimePoint now() const = 0;
    // Wall-clock Unix milliseconds, for the timestamps clients see (a publication's `ts`).
    virtual std::int64_t unixMillis() const = 0;

    // The real clocks: std::chrono::steady_clock and system_clock. Lives for the whole process.
    static const Clock& system();
};

// A clock that moves only when told to; for tests. Starts at the real time of its creation.
class ManualClock final : public Clock {
public:
    TimePoint now() const override { return now_; }
    std::int64_t unixMillis() const override { return unixMillis_; }
    void advance(std::chrono::steady_clock::duration by) {
        now_ += by;
        unixMillis_ += std::chrono::duration_cast<std::chrono::milliseconds>(by).count();
    }

private:
    TimePoint now_ = std::chrono::steady_clock::now();
    std::int64_t unixMillis_ =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
};

}  // namespace wspush
