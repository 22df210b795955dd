// One event loop's subscribers, by channel. Touched only on its own loop's thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "wspush/publication.h"

namespace wspush {

// An encoded frame payload, immutable and shared by every connection it is written to.
using SharedFrame = std::shared_ptr<const std::string>;

// What the hub delivers to: a connection's subscription side.
class Subscriber {
public:
    virtual ~Subscriber() = default;
    // Queues `frame` for writing. Must not touch the hub (a subscriber that has to close defers it).
    virtual void deliver(const SharedFrame& frame) = 0;
};

class LocalHub {
public:
    bool contains(std::string_view channel) const;

    // Publications of `channel` with an offset above `sinceOffset` will reach `subscriber`.
    // `sinceOffset` guards the moment of subscribing: a publication may be routed to this loop
    // before the subscriber learned the channel's position, and must not arrive twice.
    void add(std::string_view channel, Subscriber* subscriber, std::uint64_t sinceOffset);

    // Moves the subscriber's threshold; kHoldAll holds back every publication until the position is known.
    static constexpr std::uint64_t kHoldAll = ~std::uint64_t{0};
    void setSince(std::string_view channel, Subscriber* subscriber, std::uint64_t sinceOffset);

    // Returns true when `subscriber` was the loop's last subscriber of `channel`.
    bool remove(std::string_view channel, Subscriber* subscriber);

    void deliver(const Publication& publication, const SharedFrame& frame);

    std::size_t channelCount() const { return channels_.size(); }

private:
    struct Entry {
        Subscriber* subscriber;
        std::uint64_t sinceOffset;
    };
    struct NameHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    std::unordered_map<std::string, std::vector<Entry>, NameHash, std::equal_to<>> channels_;
    bool delivering_ = false;
};

}  // namespace wspush
