// A token bucket: `rate` tokens a second, at most `burst` of them saved up. Every rate limit of the
// daemon is one. The time is a parameter, never read here, so tests move it by hand.
#pragma once

#include <algorithm>
#include <chrono>

namespace wspush {

class TokenBucket {
public:
    using TimePoint = std::chrono::steady_clock::time_point;

    // Starts full: a newcomer may use its whole burst at once. `rate` > 0, `burst` ≥ 1.
    TokenBucket(double rate, double burst, TimePoint now) : rate_(rate), burst_(burst), tokens_(burst), last_(now) {}

    // Takes one token if there is one. A refusal takes nothing, so a client that keeps asking
    // gets through again as soon as a token has come back.
    bool take(TimePoint now) {
        // The state only changes when a token is taken, so refusals add no rounding error; the
        // slack forgives what the additions of fractions of a token leave (0.1 × 10 < 1).
        double available = tokens(now);
        if (available < 1 - kSlack) return false;
        tokens_ = std::max(0.0, available - 1);
        last_ = std::max(last_, now);
        return true;
    }

    double tokens(TimePoint now) const { return std::min(burst_, tokens_ + rate_ * secondsSince(now)); }
    // Full again: forgetting the bucket and starting a new one would change nothing.
    bool full(TimePoint now) const { return tokens(now) >= burst_ - kSlack; }
    double rate() const { return rate_; }
    double burst() const { return burst_; }

private:
    static constexpr double kSlack = 1e-9;

    double secondsSince(TimePoint now) const {
        // A clock that went back (it cannot, steady) or the same instant adds nothing.
        return now > last_ ? std::chrono::duration<double>(now - last_).count() : 0.0;
    }
    double rate_;
    double burst_;
    double tokens_;
    TimePoint last_;
};

}  // namespace wspush
