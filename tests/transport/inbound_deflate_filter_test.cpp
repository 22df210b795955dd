#include "transport/inbound_deflate_filter.h"

#include <cstdint>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "support/client_frames.h"

namespace wspush {
namespace {

using testing::clientFrame;

constexpr std::size_t kMax = 65536;
// What the filter gives Beast for an inflated message: final, masked with a zero key.
std::string zeroMaskedFrame(unsigned char first, std::string_view payload) {
    std::string frame(1, static_cast<char>(first));
    if (payload.size() < 126) {
        frame += static_cast<char>(0x80 | payload.size());
    } else {
        frame += static_cast<char>(0x80 | 126);
        frame += static_cast<char>(payload.size() >> 8);
        frame += static_cast<char>(payload.size());
    }
    frame.append(4, '\0');
    frame += payload;
    return frame;
}

std::string compress(std::string_view message) {
    RawDeflater deflater(1, 15, 8);
    return deflater.compress(std::span<const std::string_view>(&message, 1));
}

std::string longText(std::size_t size) {
    std::string text;
    for (int i = 0; text.size() < size; ++i) text += "{\"type\":\"publish\",\"n\":" + std::to_string(i) + "}";
    text.resize(size);
    return text;
}

class InboundDeflateFilterTest : public ::testing::Test {
protected:
    // All of `in` at once, and again one byte at a time: both must give the same.
    std::string filtered(const std::string& in) {
        std::string whole, bytewise;
        InboundDeflateFilter(inflater_, kMax).filter(in, whole);
        InboundDeflateFilter bytes(inflater_, kMax);
        for (char c : in) bytes.filter(std::string_view(&c, 1), bytewise);
        EXPECT_EQ(whole, bytewise) << "the result does not depend on how the bytes arrive";
        return whole;
    }
    RawInflater inflater_;
};

TEST_F(InboundDeflateFilterTest, UncompressedFramesPassAsTheyAre) {
    std::string in = clientFrame(0x81, "{\"type\":\"ping\"}") + clientFrame(0x89, "ping") +
                     clientFrame(0x01, "part one, ") + clientFrame(0x80, "part two") +
                     clientFrame(0x82, longText(70000)) + clientFrame(0x88, "\x03\xe8");
    EXPECT_EQ(filtered(in), in);
}

TEST_F(InboundDeflateFilterTest, ACompressedMessageBecomesItsUncompressedFrame) {
    std::string small = "{\"type\":\"subscribe\",\"channel\":\"news\"}", large = longText(5000);
    std::string in =
        clientFrame(0xC1, compress(small)) + clientFrame(0xC2, compress(large)) + clientFrame(0x81, "plain");
    EXPECT_EQ(filtered(in), zeroMaskedFrame(0x81, small) + zeroMaskedFrame(0x82, large) + clientFrame(0x81, "plain"));
}

TEST_F(InboundDeflateFilterTest, AFragmentedCompressedMessageIsJoinedAndControlFramesKeepTheirPlace) {
    std::string message = longText(3000), packed = compress(message);
    std::size_t third = packed.size() / 3;
    std::string in = clientFrame(0x41, packed.substr(0, third)) + clientFrame(0x89, "are you there") +
                     clientFrame(0x00, packed.substr(third, third)) + clientFrame(0x8A, "") +
                     clientFrame(0x80, packed.substr(2 * third));
    EXPECT_EQ(filtered(in),
              clientFrame(0x89, "are you there") + clientFrame(0x8A, "") + zeroMaskedFrame(0x81, message));
}

TEST_F(InboundDeflateFilterTest, AnEmptyCompressedMessageIsAnEmptyMessage) {
    EXPECT_EQ(filtered(clientFrame(0xC1, compress("")) + clientFrame(0xC1, "")),
              zeroMaskedFrame(0x81, "") + zeroMaskedFrame(0x81, ""));
}

TEST_F(InboundDeflateFilterTest, AMessagePastTheLimitAnnouncesOneByteMoreAndEndsTheStream) {
    std::string bomb = compress(std::string(10 * kMax, 'a'));
    std::string out = filtered(clientFrame(0xC1, bomb) + clientFrame(0x81, "after"));
    std::string expected = {'\x81', '\xff', 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0};  // 65537, zero mask
    EXPECT_EQ(out, expected) << "Beast refuses the header with 1009; nothing after it reaches Beast";
    // So does a compressed frame that could not inflate to anything within the limit.
    std::string huge = clientFrame(0x42, std::string(kMax + kMax / 8, 'x'));
    EXPECT_EQ(filtered(huge).substr(0, 2), "\x82\xff");
}

TEST_F(InboundDeflateFilterTest, CorruptDataOrAMessageInsideAMessageIsAProtocolError) {
    const std::string refusal = {'\xA1', '\x80', 0, 0, 0, 0};  // FIN, RSV2, text; empty, zero mask
    EXPECT_EQ(filtered(clientFrame(0xC1, "\xff\xff\xff\xff") + clientFrame(0x81, "after")), refusal);
    std::string packed = compress("hello");
    EXPECT_EQ(filtered(clientFrame(0x41, packed) + clientFrame(0x81, "new message")), refusal);
}

TEST_F(InboundDeflateFilterTest, WhatBeastMustRefuseReachesItUntouched) {
    // Unmasked, RSV2, a compressed continuation of nothing: Beast closes with 1002 for each.
    for (const std::string& in :
         {clientFrame(0xC1, compress("x"), false), clientFrame(0xE1, "x"), clientFrame(0x40, "x")})
        EXPECT_EQ(filtered(in), in);
}

}  // namespace
}  // namespace wspush
