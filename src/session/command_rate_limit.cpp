#include "session/command_rate_limit.h"

#include <algorithm>
#include <cmath>

namespace wspush {

namespace {

// A second's worth of reads: enough for a page turn or a panel opening, not a scraper.
std::optional<TokenBucket> readBucket(double rate, CommandRateLimit::TimePoint now) {
    if (rate <= 0) return std::nullopt;
    return TokenBucket(rate, std::max(1.0, rate), now);
}

}  // namespace

double CommandRateLimit::commandsBurst(const LimitsConfig& limits) {
    double burst =
        limits.commands_burst > 0 ? static_cast<double>(limits.commands_burst) : 2 * limits.commands_per_second;
    return std::max(1.0, burst);
}

CommandRateLimit::CommandRateLimit(const LimitsConfig& limits, TimePoint now)
    : historyReads_(readBucket(limits.history_reads_per_second, now)),
      presenceReads_(readBucket(limits.presence_reads_per_second, now)) {
    if (limits.commands_per_second > 0) {
        double burst = commandsBurst(limits);
        commands_.emplace(limits.commands_per_second, burst, now);
        maxRefusedInRow_ = static_cast<std::size_t>(std::ceil(burst));
    }
}

CommandRateLimit::Verdict CommandRateLimit::check(std::optional<CommandType> type, TimePoint now) {
    if (type == CommandType::Ack || type == CommandType::Rec || type == CommandType::Comp ||
        type == CommandType::Pubrel)
        return Verdict::Allowed;
    if (commands_ && !commands_->take(now))
        return ++refusedInRow_ > maxRefusedInRow_ ? Verdict::Flooding : Verdict::TooFast;
    refusedInRow_ = 0;
    if (type == CommandType::History && historyReads_ && !historyReads_->take(now)) return Verdict::HistoryTooFast;
    if ((type == CommandType::Presence || type == CommandType::PresenceStats) && presenceReads_ &&
        !presenceReads_->take(now))
        return Verdict::PresenceTooFast;
    return Verdict::Allowed;
}

}  // namespace wspush
