// In a turn of deliveries every subscriber of a channel is given the same publications in the
// same order, so the batches their write queues join (WriteQueue::startBatch) are byte for byte
// the same: the first connection builds one, the next ones share it. That saves a copy per
// connection, and memory: 10,000 subscribers hold one burst, not 10,000 copies of it.
// Owned by an EventLoop and used on its thread only.
#pragma once

#include <cstddef>
#include <vector>

#include "protocol/frame.h"

namespace wspush {

class JoinedFrameCache {
public:
    // The batch remembered for exactly these `count` payloads (payloadAt(i) -> const SharedFrame&),
    // or null. Payloads are compared by identity; the key holds them, so an address cannot be reused.
    template <class PayloadAt>
    SharedFrame find(std::size_t count, PayloadAt payloadAt) const {
        if (!joined_ || key_.size() != count) return nullptr;
        for (std::size_t i = 0; i < count; ++i)
            if (key_[i].get() != payloadAt(i).get()) return nullptr;
        return joined_;
    }

    template <class PayloadAt>
    void remember(std::size_t count, PayloadAt payloadAt, SharedFrame joined) {
        key_.clear();
        for (std::size_t i = 0; i < count; ++i) key_.push_back(payloadAt(i));
        joined_ = std::move(joined);
    }

    // At the end of a turn: the batch lives on only as long as the writes that use it.
    void clear() {
        key_.clear();
        joined_.reset();
    }

private:
    std::vector<SharedFrame> key_;
    SharedFrame joined_;
};

}  // namespace wspush
