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
        std::vector<OutboundFrame> grown(ring_.empty() ? 4 : ring_.size() * 2);
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

Batch WriteQueue::startBatch(std::vector<boost::asio::const_buffer>& buffers) {
    assert(!writing() && hasPending());
    buffers.clear();
    Batch batch;
    auto appendFrame = [&buffers, this](const OutboundFrame& frame, std::size_t index) {
        buffers.emplace_back(frame.payload->data(), frame.payload->size());  // on the heap: stays put
        if (frame.suffix.length == 0) return;
        inFlightSuffixes_[index] = frame.suffix;
        buffers.emplace_back(inFlightSuffixes_[index].text, inFlightSuffixes_[index].length);
    };
    const OutboundFrame& first = at(0);
    batch.binary = first.binary;
    appendFrame(first, 0);
    batch.bytes = first.size();
    batch.frames = 1;
    if (!first.standalone && !first.binary) {  // only text joins: '\n' has no meaning in binary
        static const char separator = kSeparator;
        while (batch.frames < size_ && batch.frames < kMaxBatchFrames) {
            const OutboundFrame& next = at(batch.frames);
            if (next.standalone || next.binary) break;
            if (batch.bytes + 1 + next.size() > kMaxBatchBytes) break;
            if (buffers.size() + 2 + (next.suffix.length > 0 ? 1 : 0) > kMaxBatchBuffers) break;
            buffers.emplace_back(&separator, 1);
            appendFrame(next, batch.frames);
            batch.bytes += 1 + next.size();
            ++batch.frames;
        }
    }
    inFlight_ = batch.frames;
    return batch;
}

void WriteQueue::finishBatch() {
    for (; inFlight_ > 0; --inFlight_) popFront();
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
