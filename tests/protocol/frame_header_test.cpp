#include "protocol/frame_header.h"

#include <vector>

#include <gtest/gtest.h>

namespace wspush {
namespace {

std::vector<unsigned> encoded(std::uint64_t size, bool binary) {
    FrameHeader header{};
    std::size_t length = encodeFrameHeader(header, size, binary);
    return {header.begin(), header.begin() + static_cast<std::ptrdiff_t>(length)};
}

TEST(FrameHeader, SmallPayloadsTakeSevenBitsOfLength) {
    EXPECT_EQ(encoded(0, false), (std::vector<unsigned>{0x81, 0}));
    EXPECT_EQ(encoded(125, false), (std::vector<unsigned>{0x81, 125}));
    EXPECT_EQ(encoded(5, true), (std::vector<unsigned>{0x82, 5}));
}

TEST(FrameHeader, UpTo64KiBTakeSixteenBitsBigEndian) {
    EXPECT_EQ(encoded(126, false), (std::vector<unsigned>{0x81, 126, 0, 126}));
    EXPECT_EQ(encoded(1000, false), (std::vector<unsigned>{0x81, 126, 0x03, 0xe8}));
    EXPECT_EQ(encoded(65535, true), (std::vector<unsigned>{0x82, 126, 0xff, 0xff}));
}

TEST(FrameHeader, LargerPayloadsTakeSixtyFourBitsBigEndian) {
    EXPECT_EQ(encoded(65536, false), (std::vector<unsigned>{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}));
    EXPECT_EQ(encoded(0x0102030405060708ull, false), (std::vector<unsigned>{0x81, 127, 1, 2, 3, 4, 5, 6, 7, 8}));
}

}  // namespace
}  // namespace wspush
