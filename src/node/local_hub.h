// One event loop's subscribers, by channel. Touched only on its own loop's thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "node/frame.h"
#include "wspush/publication.h"

namespace wspush {

// What the hub delivers to: a client session (or a buffer standing in for one while it moves).
class Subscriber {
public:
    virtual ~Subscriber() = default;
    // `frame` is `publication` encoded. Must not add or remove hub entries: a subscriber that
    // has to leave defers it to a fresh handler.
    virtual void deliver(const PublicationPtr& publication, const SharedFrame& frame) = 0;
};

class LocalHub {
public:
    bool contains(std::string_view channel) const;

    // Publications of `channel` with an offset above `sinceOffset` will reach `subscriber`; each
    // delivery then raises the entry's offset to the publication's, so nothing arrives twice.
    // The threshold guards the moment of subscribing: a publication may be routed to this loop
    // before the subscriber learned the channel's position.
    void add(std::string_view channel, Subscriber* subscriber, std::uint64_t sinceOffset);

    // kHoldAll as a threshold drops every publication until setSince() names the position. That
    // is gap-free only because the engine reports positions in order with its publications
    // (MemoryBroker answers position() at once); an engine that cannot must buffer instead.
    static constexpr std::uint64_t kHoldAll = ~std::uint64_t{0};
    void setSince(std::string_view channel, Subscriber* subscriber, std::uint64_t sinceOffset);

    // The offset of the last publication delivered to (or skipped for) `subscriber`; 0 if unknown.
    std::uint64_t sinceOf(std::string_view channel, const Subscriber* subscriber) const;
    // Hands `from`'s entry to `to` (a session arriving from another loop), with a new threshold.
    void replace(std::string_view channel, const Subscriber* from, Subscriber* to, std::uint64_t sinceOffset);

    // Returns true when `subscriber` was the loop's last subscriber of `channel`.
    bool remove(std::string_view channel, Subscriber* subscriber);

    // Returns the number of subscribers it was delivered to.
    std::size_t deliver(const PublicationPtr& publication, const SharedFrame& frame);

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
