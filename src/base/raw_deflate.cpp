#include "base/raw_deflate.h"

#include <algorithm>
#include <cstdint>
#include <stdexcept>

#include <zlib.h>

namespace wspush {
namespace {

constexpr std::string_view kFlushTail("\x00\x00\xff\xff", 4);  // the empty stored block of a sync flush

Bytef* bytes(std::string_view text) {
    // zlib's next_in is not const, though deflate and inflate only read through it.
    return reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
}

}  // namespace

RawDeflater::RawDeflater(int level, int windowBits, int memLevel) : stream_(std::make_unique<z_stream>()) {
    // A negative windowBits asks for raw deflate: no zlib header or checksum.
    if (deflateInit2(stream_.get(), level, Z_DEFLATED, -windowBits, memLevel, Z_DEFAULT_STRATEGY) != Z_OK)
        throw std::runtime_error("zlib refused deflate parameters");
}

RawDeflater::~RawDeflater() {
    deflateEnd(stream_.get());
}

std::string RawDeflater::compress(std::span<const std::string_view> parts) {
    z_stream& z = *stream_;
    deflateReset(&z);
    std::size_t total = 0;
    for (std::string_view part : parts) total += part.size();
    // deflateBound covers the data; a sync flush adds at most a few bytes more per call.
    std::string out(deflateBound(&z, static_cast<uLong>(total)) + 16 + 8 * parts.size(), '\0');
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    for (std::size_t i = 0; i < parts.size(); ++i) {
        z.next_in = bytes(parts[i]);
        z.avail_in = static_cast<uInt>(parts[i].size());
        int flush = i + 1 == parts.size() ? Z_SYNC_FLUSH : Z_NO_FLUSH;
        while (true) {
            if (z.avail_out == 0) {
                std::size_t used = out.size();
                out.resize(used * 2);
                z.next_out = reinterpret_cast<Bytef*>(out.data() + used);
                z.avail_out = static_cast<uInt>(out.size() - used);
            }
            deflate(&z, flush);
            // Done with this part once zlib has taken it all and, after the flush, had room to spare.
            if (z.avail_in == 0 && z.avail_out > 0) break;
        }
    }
    if (parts.empty()) deflate(&z, Z_SYNC_FLUSH);
    out.resize(out.size() - z.avail_out);
    if (out.ends_with(kFlushTail)) out.resize(out.size() - kFlushTail.size());
    return out;
}

std::string storedDeflateBlock(std::string_view bytes) {
    const auto length = static_cast<std::uint16_t>(bytes.size());
    std::string block;
    block.reserve(bytes.size() + 5);
    block += static_cast<char>(length & 0xff);  // LEN and its complement NLEN, little-endian
    block += static_cast<char>(length >> 8);
    block += static_cast<char>(~length & 0xff);
    block += static_cast<char>((~length >> 8) & 0xff);
    block += bytes.substr(0, length);
    block += '\0';  // BFINAL 0, BTYPE 00 (stored), padding to the byte boundary
    return block;
}

RawInflater::RawInflater() : stream_(std::make_unique<z_stream>()) {
    if (inflateInit2(stream_.get(), -MAX_WBITS) != Z_OK) throw std::runtime_error("zlib refused to inflate");
}

RawInflater::~RawInflater() {
    inflateEnd(stream_.get());
}

RawInflater::Result RawInflater::inflate(std::string_view compressed, std::size_t limit, std::string& out) {
    z_stream& z = *stream_;
    inflateReset(&z);
    const std::size_t base = out.size();
    std::size_t produced = 0;
    bool ended = false;  // the stream's final block was read: what follows is not deflate

    // Inflates `input` after what came before; false when the message cannot be had.
    auto run = [&](std::string_view input, Result& failure) {
        z.next_in = bytes(input);
        z.avail_in = static_cast<uInt>(input.size());
        while (!ended) {
            if (base + produced == out.size()) {
                // One byte past the limit is room enough to tell that it was passed.
                if (produced > limit) return failure = Result::TooLarge, false;
                std::size_t room = std::min(limit + 1, std::max<std::size_t>(2 * produced, 4096));
                out.resize(base + room);
            }
            z.next_out = reinterpret_cast<Bytef*>(out.data() + base + produced);
            z.avail_out = static_cast<uInt>(out.size() - base - produced);
            int rc = ::inflate(&z, Z_SYNC_FLUSH);
            produced = out.size() - base - z.avail_out;
            if (rc == Z_STREAM_END) {
                ended = true;
            } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
                return failure = Result::Corrupt, false;
            }
            if (produced > limit) return failure = Result::TooLarge, false;
            if (z.avail_in == 0 && z.avail_out > 0) break;
        }
        return true;
    };

    Result failure = Result::Inflated;
    bool inflated = run(compressed, failure);
    // A final block ends the message; anything after it is not deflate data.
    if (inflated && ended && z.avail_in > 0) inflated = false, failure = Result::Corrupt;
    if (inflated && !ended) inflated = run(kFlushTail, failure);
    if (!inflated) {
        out.resize(base);
        return failure;
    }
    out.resize(base + produced);
    return Result::Inflated;
}

}  // namespace wspush
