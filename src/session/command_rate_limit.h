// How fast one connection may send commands (docs/security.md, "Limits"): every command takes a
// token of limits.commands_per_second (bucket: commands_burst), `history` one of
// history_reads_per_second too, `presence` and `presence_stats` one of presence_reads_per_second.
//
// The QoS answers (ack, rec, comp, pubrel) take nothing: they are bounded by the inflight window
// already, and refusing one would stall the client's deliveries. A piece that does not parse
// takes a token like any command, so garbage cannot flood either.
//
// A client refused more than commands_burst times in a row (no command let through in between:
// it is not slowing down, it is flooding) is to be disconnected.
//
// Pure: the time is a parameter, so every rule is unit-tested without waiting.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>

#include "base/token_bucket.h"
#include "protocol/client_command.h"
#include "wspush/config.h"

namespace wspush {

class CommandRateLimit {
public:
    using TimePoint = TokenBucket::TimePoint;

    enum class Verdict {
        Allowed,
        TooFast,          // commands_per_second: error 116
        HistoryTooFast,   // history_reads_per_second: error 116
        PresenceTooFast,  // presence_reads_per_second: error 116
        Flooding,         // past commands_burst refusals in a row: close 4009
    };

    CommandRateLimit(const LimitsConfig& limits, TimePoint now);

    // False when no limit is set: check() would always allow, and the clock need not be read.
    bool active() const { return commands_ || historyReads_ || presenceReads_; }

    // `type`: nullopt for a piece that did not parse.
    Verdict check(std::optional<CommandType> type, TimePoint now);

    // The bucket size commands_burst stands for (0: twice the rate, at least 1).
    static double commandsBurst(const LimitsConfig& limits);

private:
    std::optional<TokenBucket> commands_;
    std::optional<TokenBucket> historyReads_;
    std::optional<TokenBucket> presenceReads_;
    std::size_t refusedInRow_ = 0;
    std::size_t maxRefusedInRow_ = 0;
};

}  // namespace wspush
