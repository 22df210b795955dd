#include "transport/inbound_deflate_filter.h"

#include <algorithm>

namespace wspush {
namespace {

constexpr unsigned char kFin = 0x80;
constexpr unsigned char kRsv1 = 0x40;
constexpr unsigned char kRsv2And3 = 0x30;
constexpr unsigned char kMasked = 0x80;
constexpr unsigned char kContinuation = 0x0;
constexpr unsigned char kText = 0x1;
constexpr unsigned char kBinary = 0x2;

// The header of a final, masked frame with a zero mask key, as a client would send it.
void appendClientHeader(std::string& out, unsigned char first, std::uint64_t length) {
    out += static_cast<char>(first);
    if (length < 126) {
        out += static_cast<char>(kMasked | length);
    } else if (length <= 0xffff) {
        out += static_cast<char>(kMasked | 126);
        out += static_cast<char>(length >> 8);
        out += static_cast<char>(length);
    } else {
        out += static_cast<char>(kMasked | 127);
        for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>(length >> shift);
    }
    out.append(4, '\0');
}

}  // namespace

std::size_t InboundDeflateFilter::headerBytesWanted() const {
    if (headerLength_ < 2) return 2;
    unsigned char length = header_[1] & 0x7f;
    std::size_t extended = length == 126 ? 2 : length == 127 ? 8 : 0;
    return 2 + extended + ((header_[1] & kMasked) ? 4 : 0);
}

void InboundDeflateFilter::filter(std::string_view in, std::string& out) {
    while (!in.empty()) {
        switch (stage_) {
            case Stage::Refused: return;  // Beast has been handed a frame it refuses: nothing after it matters
            case Stage::Header: {
                std::size_t wanted = headerBytesWanted();
                while (headerLength_ < wanted && !in.empty()) {
                    header_[headerLength_++] = static_cast<unsigned char>(in.front());
                    in.remove_prefix(1);
                    wanted = headerBytesWanted();
                }
                if (headerLength_ == wanted) onHeader(out);
                break;
            }
            case Stage::Pass: {
                std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, in.size()));
                out.append(in.data(), n);
                in.remove_prefix(n);
                remaining_ -= n;
                if (remaining_ == 0) stage_ = Stage::Header;
                break;
            }
            case Stage::Capture: {
                std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, in.size()));
                std::size_t at = compressed_.size();
                compressed_.append(in.data(), n);
                for (std::size_t i = 0; i < n; ++i, maskOffset_ = (maskOffset_ + 1) & 3)
                    compressed_[at + i] =
                        static_cast<char>(static_cast<unsigned char>(compressed_[at + i]) ^ mask_[maskOffset_]);
                in.remove_prefix(n);
                remaining_ -= n;
                if (remaining_ == 0) onCapturedFrame(out);
                break;
            }
        }
    }
}

void InboundDeflateFilter::onHeader(std::string& out) {
    const unsigned char first = header_[0];
    const unsigned char opcode = first & 0x0f;
    const bool masked = (header_[1] & kMasked) != 0;
    std::uint64_t length = header_[1] & 0x7f;
    std::size_t at = 2;
    if (length == 126 || length == 127) {
        std::size_t bytes = length == 126 ? 2 : 8;
        length = 0;
        for (std::size_t i = 0; i < bytes; ++i) length = (length << 8) | header_[at++];
    }
    const std::size_t headerLength = headerLength_;
    headerLength_ = 0;

    // Only a well-formed frame of a compressed message is taken out of the stream. Anything
    // else passes as it is, and Beast judges it: it refuses unmasked frames, reserved bits
    // (RSV1 included: it knows of no extension) and continuations of nothing.
    const bool wellFormed = masked && (first & kRsv2And3) == 0;
    const bool data = opcode == kText || opcode == kBinary;
    bool capture = false;
    if (wellFormed && data && inMessage_) return refuse(out, false);  // a message inside a message
    if (wellFormed && data && (first & kRsv1)) {
        inMessage_ = true;
        opcode_ = opcode;
        capture = true;
    } else if (wellFormed && opcode == kContinuation && inMessage_ && !(first & kRsv1)) {
        capture = true;
    }

    if (!capture) {
        out.append(reinterpret_cast<const char*>(header_.data()), headerLength);
        remaining_ = length;
        stage_ = length > 0 ? Stage::Pass : Stage::Header;
        return;
    }
    // Deflate never makes data much larger (stored blocks cost 5 bytes per 64 KiB), so more
    // compressed bytes than this cannot inflate to an acceptable message.
    const std::uint64_t compressedLimit = maxMessageSize_ + maxMessageSize_ / 16 + 1024;
    if (length > compressedLimit - compressed_.size()) return refuse(out, true);
    std::copy(header_.begin() + at, header_.begin() + at + 4, mask_.begin());
    maskOffset_ = 0;
    lastFrame_ = (first & kFin) != 0;
    remaining_ = length;
    stage_ = Stage::Capture;
    if (remaining_ == 0) onCapturedFrame(out);
}

void InboundDeflateFilter::onCapturedFrame(std::string& out) {
    stage_ = Stage::Header;
    if (!lastFrame_) return;
    std::string message;
    auto result = inflater_.inflate(compressed_, maxMessageSize_, message);
    inMessage_ = false;
    std::string().swap(compressed_);  // an idle connection keeps no buffer
    if (result != RawInflater::Result::Inflated) return refuse(out, result == RawInflater::Result::TooLarge);
    appendClientHeader(out, kFin | opcode_, message.size());
    out += message;
}

void InboundDeflateFilter::refuse(std::string& out, bool tooLarge) {
    unsigned char opcode = opcode_ != 0 ? opcode_ : kText;
    if (tooLarge)
        appendClientHeader(out, kFin | opcode, static_cast<std::uint64_t>(maxMessageSize_) + 1);
    else
        appendClientHeader(out, kFin | 0x20 | opcode, 0);  // RSV2: no extension of ours defines it
    inMessage_ = false;
    std::string().swap(compressed_);
    stage_ = Stage::Refused;
}

}  // namespace wspush
