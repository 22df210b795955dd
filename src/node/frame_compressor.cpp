#include "node/frame_compressor.h"

#include <memory>
#include <string>

namespace wspush {

SharedFrame FrameCompressor::compress(const SharedFrame& message, int windowBits) {
    for (const Remembered& entry : remembered_)
        if (entry.message == message && entry.windowBits == windowBits) return entry.compressed;
    std::string_view whole(*message);
    SharedFrame compressed = compress(std::span<const std::string_view>(&whole, 1), windowBits);
    remembered_[next_] = Remembered{message, windowBits, compressed};
    next_ = (next_ + 1) % kRemembered;
    return compressed;
}

SharedFrame FrameCompressor::compress(std::span<const std::string_view> parts, int windowBits) {
    compressions_.add();
    return std::make_shared<const std::string>(deflaterFor(windowBits).compress(parts));
}

RawDeflater& FrameCompressor::deflaterFor(int windowBits) {
    auto& deflater = deflaters_.at(static_cast<std::size_t>(windowBits));
    if (!deflater) deflater = std::make_unique<RawDeflater>(config_.level, windowBits, config_.mem_level);
    return *deflater;
}

}  // namespace wspush
