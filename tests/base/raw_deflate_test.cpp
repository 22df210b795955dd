#include "base/raw_deflate.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <zlib.h>

namespace wspush {
namespace {

std::string sample(std::size_t size) {
    std::string text;
    for (int i = 0; text.size() < size; ++i)
        text += "{\"channel\":\"news\",\"data\":{\"n\":" + std::to_string(i) + "}} ";
    text.resize(size);
    return text;
}

std::string compressed(RawDeflater& deflater, std::string_view message) {
    return deflater.compress(std::span<const std::string_view>(&message, 1));
}

// What zlib's own inflate makes of a whole permessage-deflate message, its 00 00 ff ff put back:
// none unless it took every byte without an error.
std::optional<std::string> inflatedByZlib(std::string message) {
    message += std::string("\x00\x00\xff\xff", 4);
    z_stream z{};
    if (inflateInit2(&z, -15) != Z_OK) return std::nullopt;
    std::string out(64 * 1024, '\0');
    z.next_in = reinterpret_cast<Bytef*>(message.data());
    z.avail_in = static_cast<uInt>(message.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    int rc = inflate(&z, Z_SYNC_FLUSH);
    bool whole = rc == Z_OK && z.avail_in == 0;
    out.resize(out.size() - z.avail_out);
    inflateEnd(&z);
    if (!whole) return std::nullopt;
    return out;
}

TEST(RawDeflate, AMessageComesBackAsItWas) {
    RawDeflater deflater(1, 10, 4);
    RawInflater inflater;
    for (std::size_t size : {0, 1, 100, 1024, 70000}) {
        std::string message = sample(size);
        std::string packed = compressed(deflater, message);
        std::string out = "kept:";
        ASSERT_EQ(inflater.inflate(packed, 1 << 20, out), RawInflater::Result::Inflated) << size;
        EXPECT_EQ(out, "kept:" + message) << "appended to what was there, size " << size;
        if (size >= 1024) {
            EXPECT_LT(packed.size(), size / 2) << "it compresses";
        }
    }
}

TEST(RawDeflate, EveryMessageStandsAlone) {
    // No context takeover: the second message is the same bytes as when compressed first, and
    // inflates without the first.
    RawDeflater deflater(6, 15, 8);
    std::string message = sample(2000);
    std::string first = compressed(deflater, message);
    EXPECT_EQ(compressed(deflater, message), first);
    RawInflater fresh;
    std::string out;
    ASSERT_EQ(fresh.inflate(first, 1 << 20, out), RawInflater::Result::Inflated);
    EXPECT_EQ(out, message);
}

TEST(RawDeflate, PartsCompressAsTheirConcatenation) {
    RawDeflater deflater(1, 10, 4);
    RawInflater inflater;
    std::string payload = sample(900);
    std::vector<std::string_view> parts{payload, ",\"did\":17}"};
    std::string out;
    ASSERT_EQ(inflater.inflate(deflater.compress(parts), 1 << 20, out), RawInflater::Result::Inflated);
    EXPECT_EQ(out, payload + ",\"did\":17}");
}

TEST(RawDeflate, TheSyncFlushTailIsLeftOut) {
    // RFC 7692 7.2.1: the sender removes the 00 00 ff ff its sync flush ends with. Put back, the
    // data ends exactly at a block boundary that zlib's inflate accepts as a whole stream.
    RawDeflater deflater(1, 10, 4);
    std::string message = sample(500);
    EXPECT_EQ(inflatedByZlib(compressed(deflater, message)), message);
}

TEST(RawDeflate, AMessagePastTheLimitIsRefusedAndLeavesNothing) {
    RawDeflater deflater(9, 15, 9);
    RawInflater inflater;
    std::string zeros(10 << 20, '\0');
    std::string packed = compressed(deflater, zeros);
    ASSERT_LT(packed.size(), 20000u);
    std::string out = "before";
    EXPECT_EQ(inflater.inflate(packed, 65536, out), RawInflater::Result::TooLarge);
    EXPECT_EQ(out, "before");
    EXPECT_LE(out.capacity(), 65536u + 4096u + 16u) << "it stopped at the limit instead of inflating it all";
    // Exactly at the limit is fine; the inflater is ready for the next message.
    std::string exact(4096, 'x'), out2;
    EXPECT_EQ(inflater.inflate(compressed(deflater, exact), 4096, out2), RawInflater::Result::Inflated);
    EXPECT_EQ(out2, exact);
    EXPECT_EQ(inflater.inflate(compressed(deflater, exact), 4095, out2), RawInflater::Result::TooLarge);
}

TEST(RawDeflate, CorruptDataIsRefused) {
    RawInflater inflater;
    std::string out;
    EXPECT_EQ(inflater.inflate(std::string("\xff\xff\xff\xff\xff", 5), 1000, out), RawInflater::Result::Corrupt);
    EXPECT_TRUE(out.empty());
    // A stream whose final block is followed by more bytes.
    z_stream z{};
    ASSERT_EQ(deflateInit2(&z, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    std::string message = "hello", packed(100, '\0');
    z.next_in = reinterpret_cast<Bytef*>(message.data());
    z.avail_in = static_cast<uInt>(message.size());
    z.next_out = reinterpret_cast<Bytef*>(packed.data());
    z.avail_out = static_cast<uInt>(packed.size());
    ASSERT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
    packed.resize(packed.size() - z.avail_out);
    deflateEnd(&z);
    EXPECT_EQ(inflater.inflate(packed, 1000, out), RawInflater::Result::Inflated) << "a final block ends a message";
    EXPECT_EQ(out, "hello");
    out.clear();
    EXPECT_EQ(inflater.inflate(packed + "junk", 1000, out), RawInflater::Result::Corrupt);
    EXPECT_TRUE(out.empty());
}

TEST(RawDeflate, AnyWindowInflates) {
    RawInflater inflater;
    for (int bits = 9; bits <= 15; ++bits) {
        RawDeflater deflater(6, bits, 8);
        std::string message = sample(40000), out;
        ASSERT_EQ(inflater.inflate(compressed(deflater, message), 1 << 20, out), RawInflater::Result::Inflated) << bits;
        EXPECT_EQ(out, message) << bits;
    }
}

}  // namespace
}  // namespace wspush

namespace wspush {
namespace {

TEST(RawDeflate, AStoredBlockEndsASharedPayloadDifferentlyForEachRecipient) {
    RawDeflater deflater(1, 10, 4);
    RawInflater inflater;
    for (std::size_t size : {0, 1, 300, 5000}) {
        std::string payload = sample(size);
        std::string shared = compressed(deflater, payload);
        for (std::string_view suffix : {std::string_view(""), std::string_view(",\"did\":7}"),
                                        std::string_view("0123456789012345678901234567890123456789")}) {
            std::string out;
            ASSERT_EQ(inflater.inflate(shared + storedDeflateBlock(suffix), 1 << 20, out),
                      RawInflater::Result::Inflated)
                << size << " " << suffix;
            EXPECT_EQ(out, payload + std::string(suffix)) << size;
        }
    }
    // The receiver's 00 00 ff ff is what ends it: zlib on its own agrees.
    EXPECT_EQ(inflatedByZlib(compressed(deflater, "{\"n\":1") + storedDeflateBlock("}")), "{\"n\":1}");
}

}  // namespace
}  // namespace wspush
