// The shared compression's deflate side, one per event loop (docs/performance.md, "Compression"):
// a publication's frame is compressed once and the result written to every connection of the
// loop that negotiated the same window, as JoinedFrameCache shares joined batches. Without
// context takeover nothing of one message is kept for the next, so a connection costs no zlib
// state at all, and one RawDeflater per window size serves the whole loop.
// Owned by an EventLoop and used on its thread only.
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <span>
#include <string_view>

#include "base/raw_deflate.h"
#include "node/metrics.h"
#include "protocol/frame.h"
#include "wspush/config.h"

namespace wspush {

class FrameCompressor {
public:
    // `compressions` counts every message actually compressed (wspush_deflate_compressions_total).
    FrameCompressor(const CompressionConfig& config, Counter& compressions)
        : config_(config), compressions_(compressions) {}

    // `message` compressed with a window of 2^windowBits (9..15). The same message (by identity)
    // with the same window is compressed once while it is among the last few asked for.
    SharedFrame compress(const SharedFrame& message, int windowBits);
    // A message of several parts (a payload and a session's suffix), compressed for one connection.
    SharedFrame compress(std::span<const std::string_view> parts, int windowBits);

private:
    // A turn of deliveries may mix a few publications (several channels, a QoS 1 burst): a
    // handful of entries keeps each one's compression until its last subscriber has it.
    static constexpr std::size_t kRemembered = 8;
    struct Remembered {
        SharedFrame message;  // held, so that its address cannot be reused by another
        int windowBits = 0;
        SharedFrame compressed;
    };

    RawDeflater& deflaterFor(int windowBits);

    CompressionConfig config_;
    Counter& compressions_;
    std::array<std::unique_ptr<RawDeflater>, 16> deflaters_;  // by window bits, made when first needed
    std::array<Remembered, kRemembered> remembered_;
    std::size_t next_ = 0;  // the entry replaced next: the oldest
};

}  // namespace wspush
