#include "node/wire_frame_cache.h"

#include <memory>
#include <string>

#include "protocol/frame_header.h"

namespace wspush {

SharedFrame WireFrameCache::frame(const SharedFrame& payload, bool binary, bool compressed) {
    if (payload->size() > kMaxPayloadBytes) return nullptr;
    FrameHeader header;
    std::size_t headerSize = encodeFrameHeader(header, payload->size(), binary, compressed);
    for (const Remembered& entry : remembered_)
        if (entry.payload == payload && entry.first == header[0]) return entry.frame;
    auto frame = std::make_shared<std::string>();
    frame->reserve(headerSize + payload->size());
    frame->append(reinterpret_cast<const char*>(header.data()), headerSize);
    frame->append(*payload);
    remembered_[next_] = Remembered{payload, header[0], frame};
    next_ = (next_ + 1) % kRemembered;
    return frame;
}

}  // namespace wspush
