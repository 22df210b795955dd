#include "transport/write_queue.h"

#include <cassert>
#include <utility>

namespace wspush {
namespace {
constexpr char kSeparator = '\n';
// An idle connection should cost little: a ring that grew for a burst is released once empty.
constexpr std::size_t kKeepCapacity = 16;
}  // namespace

bool WriteQueue::push(OutboundFrame frame) {
    if (size_ > 0 && (size_ + 1 > maxFrames_ || bytes_ + frame.size() > maxBytes_)) return false;
    append(std::move(frame));
    return true;
}

void WriteQueue::pushUnbounded(OutboundFrame frame) {
    append(std::move(frame));
}

void WriteQueue::append(OutboundFrame frame) {
    if (size_ == ring_.size()) {
        std::vector<OutboundFrame> grown(ring_.empty() ? 2 : ring_.size() * 2);
        for (std::size_t i = 0; i < size_; ++i) grown[i] = std::move(at(i));
        ring_ = std::move(grown);
        head_ = 0;
    }
    bytes_ += frame.size();
    ring_[(head_ + size_) & (ring_.size() - 1)] = std::move(frame);
    ++size_;
}

void WriteQueue::popFront() {
    OutboundFrame& front = at(0);
    bytes_ -= front.size();
    front = OutboundFrame{};
    head_ = (head_ + 1) & (ring_.size() - 1);
    --size_;
}

Batch WriteQueue::startBatch(WriteBuffers& buffers, JoinedFrameCache* cache) {
    assert(!writing() && hasPending());
    buffers.clear();
    const OutboundFrame& first = at(0);
    Batch batch{1, first.size(), first.binary};
    if (joinable(first)) {
        while (batch.frames < size_ && batch.frames < kMaxBatchFrames) {
            const OutboundFrame& next = at(batch.frames);
            if (!joinable(next) || batch.bytes + 1 + next.size() > kMaxBatchBytes) break;
            batch.bytes += 1 + next.size();
            ++batch.frames;
        }
    }
    inFlight_ = batch.frames;

    if (batch.frames == 1) {
        buffers.emplace_back(first.payload->data(), first.payload->size());  // on the heap: stays put
        if (first.suffix.length > 0) {
            inFlightSuffix_ = first.suffix;
            buffers.emplace_back(inFlightSuffix_.text, inFlightSuffix_.length);
        }
        return batch;
    }
    auto payloadAt = [this](std::size_t i) -> const SharedFrame& { return at(i).payload; };
    bool shareable = cache != nullptr;
    for (std::size_t i = 0; i < batch.frames && shareable; ++i) shareable = at(i).suffix.length == 0;
    joinedShared_ = shareable;
    if (shareable) joined_ = cache->find(batch.frames, payloadAt);
    if (!joined_) {
        auto joined = std::make_shared<std::string>();
        joined->reserve(batch.bytes);
        for (std::size_t i = 0; i < batch.frames; ++i) {
            const OutboundFrame& frame = at(i);
            if (i > 0) *joined += kSeparator;
            *joined += *frame.payload;
            *joined += frame.suffix.view();
        }
        joined_ = std::move(joined);
        if (shareable) cache->remember(batch.frames, payloadAt, joined_);
    }
    buffers.emplace_back(joined_->data(), joined_->size());
    return batch;
}

const SharedFrame* WriteQueue::inFlightFrame() const {
    if (inFlight_ == 0) return nullptr;
    if (joined_) return joinedShared_ ? &joined_ : nullptr;
    const OutboundFrame& lone = at(0);
    return inFlight_ == 1 && lone.suffix.length == 0 ? &lone.payload : nullptr;
}

const OutboundFrame* WriteQueue::inFlightLone() const {
    return inFlight_ == 1 && !joined_ ? &at(0) : nullptr;
}

void WriteQueue::finishBatch() {
    for (; inFlight_ > 0; --inFlight_) popFront();
    joined_.reset();
    if (size_ == 0 && ring_.size() > kKeepCapacity) {
        std::vector<OutboundFrame>().swap(ring_);
        head_ = 0;
    }
}

void WriteQueue::dropPending() {
    while (size_ > inFlight_) {
        OutboundFrame& back = at(size_ - 1);
        bytes_ -= back.size();
        back = OutboundFrame{};
        --size_;
    }
}

}  // namespace wspush
