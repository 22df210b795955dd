// What is written to a connection: a shared, immutable payload plus, for QoS ≥ 1 messages, a few
// bytes that belong to one session (`,"did":17}`), so that the payload is still encoded once.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

namespace wspush {

using SharedFrame = std::shared_ptr<const std::string>;

struct FrameSuffix {
    char text[40];
    std::uint8_t length = 0;
    std::string_view view() const { return {text, length}; }
};

struct OutboundFrame {
    static OutboundFrame text(SharedFrame payload, FrameSuffix suffix = {}) {
        OutboundFrame frame;
        frame.payload = std::move(payload);
        frame.suffix = suffix;
        return frame;
    }
    static OutboundFrame echo(SharedFrame payload, bool binary) {
        OutboundFrame frame;
        frame.payload = std::move(payload);
        frame.binary = binary;
        frame.standalone = true;
        return frame;
    }

    SharedFrame payload;
    FrameSuffix suffix;       // written right after payload, in the same message
    bool binary = false;      // echo mode only: protocol v1 is text
    bool standalone = false;  // a whole WebSocket message of its own, never joined (echo mode)

    std::size_t size() const { return payload->size() + suffix.length; }
};

}  // namespace wspush
