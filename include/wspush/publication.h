// A publication as the engine hands it to the node: immutable once made.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace wspush {

// Where a channel's stream stands: the offset of its latest publication (0 before the first one)
// within an epoch. A new epoch means the sequence restarted (the stream was lost and recreated),
// so offsets of different epochs are not comparable.
struct StreamPosition {
    std::uint64_t offset = 0;
    std::string epoch;
};

struct Publication {
    std::string channel;
    std::uint64_t offset = 0;      // gap-free and increasing per channel within `epoch`
    std::string epoch;
    std::string mid;               // unique message id
    std::int64_t timestampMs = 0;  // Unix milliseconds when the engine accepted it
    std::string data;              // compact JSON text of the payload, never containing a raw newline
};

using PublicationPtr = std::shared_ptr<const Publication>;

}  // namespace wspush
