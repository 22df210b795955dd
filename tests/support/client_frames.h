// What a WebSocket client puts on the wire, for tests that write raw bytes: frames as RFC 6455
// section 5.2 lays them out, and messages compressed as permessage-deflate sends them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace wspush::testing {

// A frame whose first byte is `first` (FIN, RSV1-3, opcode), masked with a fixed key unless
// `masked` is false.
inline std::string clientFrame(unsigned char first, std::string_view payload, bool masked = true) {
    const unsigned char mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    const unsigned char maskBit = masked ? 0x80 : 0;
    std::string frame(1, static_cast<char>(first));
    std::uint64_t size = payload.size();
    if (size < 126) {
        frame += static_cast<char>(maskBit | size);
    } else if (size <= 0xffff) {
        frame += static_cast<char>(maskBit | 126);
        frame += static_cast<char>(size >> 8);
        frame += static_cast<char>(size);
    } else {
        frame += static_cast<char>(maskBit | 127);
        for (int shift = 56; shift >= 0; shift -= 8) frame += static_cast<char>(size >> shift);
    }
    if (masked) frame.append(reinterpret_cast<const char*>(mask), 4);
    for (std::size_t i = 0; i < payload.size(); ++i)
        frame += static_cast<char>(static_cast<unsigned char>(payload[i]) ^ (masked ? mask[i % 4] : 0));
    return frame;
}

// `message` as permessage-deflate sends it (RFC 7692 section 7.2.1): raw deflate ended by a
// sync flush whose 00 00 ff ff is left out. Empty if zlib fails.
std::string deflatedMessage(std::string_view message, int level = 6, int windowBits = 15);

}  // namespace wspush::testing
