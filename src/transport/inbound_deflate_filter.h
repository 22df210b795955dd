// What a client sends on a connection with the shared compression (deflate_offer.h), rewritten
// for Beast, which has permessage-deflate off on those connections: frames pass as they are,
// and a compressed message (RSV1), once all of its frames are in, becomes one uncompressed
// frame (masked with a zero key, which leaves its bytes as they are). Beast then reads, checks
// and limits every message as on any other connection, and its control frames, interleaved
// with a compressed message's fragments, still reach it in order.
//
// Only what cannot become a frame is decided here, as a frame Beast refuses: a message that
// would pass max_message_size becomes a header announcing one byte more (Beast closes with
// 1009, and the rest is not inflated), corrupt deflate data or a new message before a
// compressed one ended becomes a frame with the reserved bit RSV2 (1002).
//
// Pure bookkeeping: bytes in, bytes out. Unit-tested and fuzzed on its own (tests/fuzz).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/raw_deflate.h"

namespace wspush {

class InboundDeflateFilter {
public:
    // `inflater` is the event loop's, shared by its connections: a message is inflated at once
    // when its last frame is in, so nothing of it is left in the inflater between calls.
    InboundDeflateFilter(RawInflater& inflater, std::size_t maxMessageSize)
        : inflater_(inflater), maxMessageSize_(maxMessageSize) {}

    // Appends to `out` what Beast is to read for the client's next bytes `in`. A frame header
    // split across calls is held until it is whole.
    void filter(std::string_view in, std::string& out);

private:
    enum class Stage : std::uint8_t { Header, Pass, Capture, Refused };

    std::size_t headerBytesWanted() const;
    void onHeader(std::string& out);
    void onCapturedFrame(std::string& out);
    void refuse(std::string& out, bool tooLarge);

    RawInflater& inflater_;
    std::size_t maxMessageSize_;
    Stage stage_ = Stage::Header;
    std::array<unsigned char, 14> header_{};  // the longest: 2 + 8 bytes of length + 4 of mask
    std::uint8_t headerLength_ = 0;
    std::uint64_t remaining_ = 0;  // of the current frame's payload, not yet seen
    std::array<unsigned char, 4> mask_{};
    std::uint8_t maskOffset_ = 0;
    bool lastFrame_ = false;   // the frame being captured ends its message
    bool inMessage_ = false;   // a compressed message has begun and not ended
    std::uint8_t opcode_ = 0;  // that message's: text or binary
    std::string compressed_;   // that message's payload so far, unmasked
};

}  // namespace wspush
