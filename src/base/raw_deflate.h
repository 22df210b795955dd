// zlib's raw deflate, one whole message at a time: the compression of permessage-deflate
// (RFC 7692) without context takeover. Nothing of one message is kept for the next, so one
// stream serves every connection of an event loop in turn, and no connection pays for a zlib
// state of its own (docs/performance.md, "Compression").
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

struct z_stream_s;

namespace wspush {

class RawDeflater {
public:
    // zlib's parameters: level 0..9, windowBits 9..15, memLevel 1..9. Throws std::runtime_error
    // when zlib refuses them.
    RawDeflater(int level, int windowBits, int memLevel);
    ~RawDeflater();
    RawDeflater(const RawDeflater&) = delete;
    RawDeflater& operator=(const RawDeflater&) = delete;

    // The message made of `parts`, compressed as permessage-deflate sends it: ended by a sync
    // flush, whose empty stored block (00 00 ff ff) is left out (RFC 7692 section 7.2.1).
    std::string compress(std::span<const std::string_view> parts);

private:
    std::unique_ptr<z_stream_s> stream_;
};

// What, appended to a message from RawDeflater::compress, adds `bytes` (at most 65,535) to it
// uncompressed, so that a payload compressed once can end differently for each recipient. That
// message ends on the header of the sync flush's empty stored block (its 00 00 ff ff left out):
// this gives that block a length and `bytes`, then opens the next stored block, whose length the
// receiver's 00 00 ff ff supplies (RFC 7692 section 7.2.2).
std::string storedDeflateBlock(std::string_view bytes);

class RawInflater {
public:
    enum class Result { Inflated, TooLarge, Corrupt };

    RawInflater();  // takes any window up to 2^15: the largest a peer may use
    ~RawInflater();
    RawInflater(const RawInflater&) = delete;
    RawInflater& operator=(const RawInflater&) = delete;

    // Appends to `out` the message that `compressed` (permessage-deflate's form, without the
    // 00 00 ff ff tail) stands for. TooLarge as soon as it would pass `limit` bytes: the rest is
    // not inflated, so a small bomb costs no more than `limit`. On failure `out` is as it was.
    Result inflate(std::string_view compressed, std::size_t limit, std::string& out);

private:
    std::unique_ptr<z_stream_s> stream_;
};

}  // namespace wspush
