// The header of an unfragmented, unmasked WebSocket frame (RFC 6455 section 5.2): what a server
// puts before a message it writes itself (DirectWriteSocket) instead of through Beast.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace wspush {

// 2 bytes for payloads under 126 bytes, 4 under 64 KiB, 10 above.
using FrameHeader = std::array<unsigned char, 10>;

// Writes the header of a final text (or binary) frame of `payloadSize` bytes into `header` and
// returns its length. `compressed`: the payload is a permessage-deflate message (RSV1).
inline std::size_t encodeFrameHeader(FrameHeader& header, std::uint64_t payloadSize, bool binary,
                                     bool compressed = false) {
    header[0] = 0x80 | (compressed ? 0x40 : 0) | (binary ? 0x2 : 0x1);  // FIN, RSV1, opcode
    if (payloadSize < 126) {
        header[1] = static_cast<unsigned char>(payloadSize);
        return 2;
    }
    if (payloadSize <= 0xffff) {
        header[1] = 126;
        header[2] = static_cast<unsigned char>(payloadSize >> 8);
        header[3] = static_cast<unsigned char>(payloadSize);
        return 4;
    }
    header[1] = 127;
    for (int i = 0; i < 8; ++i) header[2 + i] = static_cast<unsigned char>(payloadSize >> (56 - 8 * i));
    return 10;
}

}  // namespace wspush
