// A message every subscriber of a publication is given (a lone publication, a joined burst, or
// their shared compression) goes out as the same bytes on every connection, header included:
// server frames are not masked. Built once per loop, each connection writes it with one plain
// send() instead of a gather of header and payload, which the kernel takes apart per call.
// Owned by an EventLoop and used on its thread only.
#pragma once

#include <array>
#include <cstddef>

#include "protocol/frame.h"

namespace wspush {

class WireFrameCache {
public:
    // Larger messages are written as header + payload: the copy would cost more than it saves.
    static constexpr std::size_t kMaxPayloadBytes = 8 * 1024;

    // The whole frame (header and `payload`) of a final text or binary message, compressed or
    // not; null when `payload` is larger than kMaxPayloadBytes. The same payload (by identity)
    // with the same flags is framed once while it is among the last few asked for.
    SharedFrame frame(const SharedFrame& payload, bool binary, bool compressed);

private:
    // A turn may mix a few publications (several channels, a burst per channel): a handful of
    // entries keeps each one's frame until its last subscriber has it.
    static constexpr std::size_t kRemembered = 8;
    struct Remembered {
        SharedFrame payload;      // held, so that its address cannot be reused by another
        unsigned char first = 0;  // the header's first byte: the flags
        SharedFrame frame;
    };
    std::array<Remembered, kRemembered> remembered_;
    std::size_t next_ = 0;
};

}  // namespace wspush
