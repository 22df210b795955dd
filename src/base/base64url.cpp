#include "base/base64url.h"

#include <array>
#include <cstdint>

namespace wspush {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr std::uint8_t kNotInAlphabet = 0xff;

constexpr std::array<std::uint8_t, 256> sextetsByCharacter() {
    std::array<std::uint8_t, 256> sextets{};
    sextets.fill(kNotInAlphabet);
    for (std::uint8_t i = 0; i < 64; ++i) sextets[static_cast<unsigned char>(kAlphabet[i])] = i;
    return sextets;
}
constexpr std::array<std::uint8_t, 256> kSextets = sextetsByCharacter();

}  // namespace

std::string encodeBase64Url(std::string_view bytes) {
    std::string text;
    text.reserve((bytes.size() * 4 + 2) / 3);
    std::uint32_t bits = 0;
    int pending = 0;  // bits in `bits` not written yet
    for (unsigned char byte : bytes) {
        bits = (bits << 8) | byte;
        pending += 8;
        while (pending >= 6) {
            pending -= 6;
            text += kAlphabet[(bits >> pending) & 0x3f];
        }
    }
    if (pending > 0) text += kAlphabet[(bits << (6 - pending)) & 0x3f];
    return text;
}

std::optional<std::string> decodeBase64Url(std::string_view text) {
    // A single character left over holds 6 bits: not even one byte.
    if (text.size() % 4 == 1) return std::nullopt;
    std::string bytes;
    bytes.reserve(text.size() * 3 / 4);
    std::uint32_t bits = 0;
    int pending = 0;  // bits in `bits` not turned into a byte yet
    for (char character : text) {
        std::uint8_t sextet = kSextets[static_cast<unsigned char>(character)];
        if (sextet == kNotInAlphabet) return std::nullopt;
        bits = (bits << 6) | sextet;
        pending += 6;
        if (pending >= 8) {
            pending -= 8;
            bytes += static_cast<char>((bits >> pending) & 0xff);
        }
    }
    // The last character's bits beyond the last byte: zero in the one canonical encoding.
    if ((bits & ((1u << pending) - 1)) != 0) return std::nullopt;
    return bytes;
}

}  // namespace wspush
