// How far a device has got through its user's inbox (the personal channel) within one session:
// the cursor is the highest offset up to which every message is finished — sent, for QoS 0;
// acknowledged (ack, or rec for QoS 2), for QoS ≥ 1. A message acknowledged before an earlier one
// does not move it: the earlier one would be lost to the device's next session otherwise.
#pragma once

#include <cstdint>
#include <set>
#include <string>

#include "wspush/publication.h"

namespace wspush {

class InboxProgress {
public:
    explicit InboxProgress(StreamPosition start) : epoch_(std::move(start.epoch)), highest_(start.offset) {}

    // A message of the channel reached the session: finished at once (QoS 0) or when acknowledged.
    void delivered(const Publication& publication, bool finished) {
        if (publication.epoch != epoch_) {  // the stream started over: so does the cursor
            epoch_ = publication.epoch;
            highest_ = 0;
            unfinished_.clear();
        }
        if (publication.offset > highest_) highest_ = publication.offset;
        if (!finished) unfinished_.insert(publication.offset);
    }
    void finished(std::uint64_t offset) { unfinished_.erase(offset); }

    StreamPosition cursor() const {
        return StreamPosition{unfinished_.empty() ? highest_ : *unfinished_.begin() - 1, epoch_};
    }

private:
    std::string epoch_;
    std::uint64_t highest_;
    std::set<std::uint64_t> unfinished_;
};

}  // namespace wspush
