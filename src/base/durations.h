// Durations from the config (seconds, milliseconds, fractions of a second) as timer durations.
#pragma once

#include <chrono>

namespace wspush {

// `d` in steady_clock ticks, truncated toward zero: what timers and deadlines are armed with.
template <class Duration>
constexpr std::chrono::steady_clock::duration toClock(Duration d) {
    return std::chrono::duration_cast<std::chrono::steady_clock::duration>(d);
}

}  // namespace wspush
