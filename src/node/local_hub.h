// One event loop's subscribers, by channel. Touched only on its own loop's thread.
//
// Each entry knows where its subscriber stands in the channel's stream, {epoch, offset}, and lets
// through exactly the next publication: an older one (already delivered, e.g. by a recovery that
// overlapped the live stream) is skipped, and a newer one after a gap, or one of another epoch,
// means the subscriber has missed something it can never get from the live stream. The hub then
// stops delivering to it and tells it (Subscriber::lost), so a subscriber never sees a silent gap.
//
// Until its position is known (the engine has not answered the subscribe yet, or a session is
// moving here from another loop) an entry buffers what arrives instead; goLive() names the
// position and delivers what the buffer holds past it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/string_hash.h"
#include "protocol/frame.h"
#include "wspush/publication.h"

namespace wspush {

// What the hub delivers to: a client session.
class Subscriber {
public:
    virtual ~Subscriber() = default;
    // `frame` is `publication` encoded. Must not add or remove hub entries: a subscriber that
    // has to leave defers it to a fresh handler.
    virtual void deliver(const PublicationPtr& publication, const SharedFrame& frame) = 0;
    // The hub found a gap or an epoch change in `channel` and delivers nothing more of it to this
    // subscriber; it should leave the channel (deferred, as for deliver) and tell its client.
    virtual void lost(const std::string& channel) = 0;
};

class LocalHub {
public:
    // Past this many buffered publications, a subscriber whose position is still unknown counts
    // as lost: memory stays bounded however slowly the engine answers.
    static constexpr std::size_t kMaxBuffered = 10000;

    bool contains(std::string_view channel) const;

    // Adds `subscriber` with its position still unknown: publications are buffered for it.
    void add(std::string_view channel, Subscriber* subscriber);

    // The subscriber's position is `position`: the buffer's publications past it are delivered
    // (or found to leave a gap), then live ones follow. Not while delivering.
    void goLive(std::string_view channel, Subscriber* subscriber, const StreamPosition& position);

    // The position of the last publication delivered to `subscriber`; nullopt while it is unknown
    // (buffering), lost, or the subscriber is not here.
    std::optional<StreamPosition> positionOf(std::string_view channel, const Subscriber* subscriber) const;

    // Returns true when `subscriber` was the loop's last subscriber of `channel`.
    bool remove(std::string_view channel, Subscriber* subscriber);

    // Returns the number of subscribers it was delivered to. A channel event (Publication::event)
    // goes to the live subscribers only, whatever their positions.
    std::size_t deliver(const PublicationPtr& publication, const SharedFrame& frame);

    std::size_t channelCount() const { return channels_.size(); }

private:
    using Buffered = std::vector<std::pair<PublicationPtr, SharedFrame>>;
    struct Entry {
        Subscriber* subscriber;
        std::uint64_t offset = 0;
        std::string epoch;
        std::unique_ptr<Buffered> buffer;  // set while the position is unknown
        bool lost = false;
    };
    // Delivers `publication` to one live entry if it is the next one; returns true if delivered.
    bool deliverTo(const std::string& channel, Entry& entry, const PublicationPtr& publication,
                   const SharedFrame& frame);
    void markLost(const std::string& channel, Entry& entry);
    Entry* find(std::string_view channel, const Subscriber* subscriber);

    std::unordered_map<std::string, std::vector<Entry>, StringHash, std::equal_to<>> channels_;
    bool delivering_ = false;
};

}  // namespace wspush
