// A connection's outgoing frames: bounded in bytes and frames, coalesced into few writes.
// Pure bookkeeping: no socket, no clock, so it is unit-tested on its own.
#pragma once

#include <array>
#include <cstddef>
#include <vector>

#include <boost/asio/buffer.hpp>

#include "node/frame.h"

namespace wspush {

struct Batch {
    std::size_t frames = 0;
    std::size_t bytes = 0;  // payload bytes, separators included
    bool binary = false;
};

class WriteQueue {
public:
    // Asio's async_write hands at most 16 buffers to one sendmsg, and Beast puts the WebSocket
    // header first: a batch of at most 15 buffers (a frame is 1 or 2, plus a separator between
    // frames) leaves in one system call.
    static constexpr std::size_t kMaxBatchBuffers = 15;
    static constexpr std::size_t kMaxBatchFrames = 8;
    static constexpr std::size_t kMaxBatchBytes = 64 * 1024;

    WriteQueue(std::size_t maxBytes, std::size_t maxFrames) : maxBytes_(maxBytes), maxFrames_(maxFrames) {}

    // Queues `frame`; false (and nothing queued) when it would pass either bound. An empty queue
    // takes any one frame, so a message larger than the byte bound is not mistaken for a slow reader.
    bool push(OutboundFrame frame);
    // Queues past the bounds: for the last message before a close.
    void pushUnbounded(OutboundFrame frame);

    bool writing() const { return inFlight_ > 0; }
    bool hasPending() const { return size_ > inFlight_; }
    bool empty() const { return size_ == 0; }
    std::size_t frames() const { return size_; }
    std::size_t bytes() const { return bytes_; }

    // Puts the next batch in flight and fills `buffers` with it: consecutive text frames joined
    // by '\n' (within kMaxBatchBuffers, kMaxBatchFrames and kMaxBatchBytes; a larger frame goes alone), or one
    // standalone frame. Requires !writing() && hasPending(). The frames stay alive until finishBatch().
    Batch startBatch(std::vector<boost::asio::const_buffer>& buffers);
    // The batch in flight was written (or failed): release it.
    void finishBatch();
    // Drops every frame not in flight.
    void dropPending();

private:
    OutboundFrame& at(std::size_t i) { return ring_[(head_ + i) & (ring_.size() - 1)]; }
    void append(OutboundFrame frame);
    void popFront();

    std::size_t maxBytes_;
    std::size_t maxFrames_;
    // The suffixes of the batch in flight. Frames live in the ring, which may grow (and move)
    // while the write is under way, so the buffers handed to the socket point here instead.
    std::array<FrameSuffix, kMaxBatchFrames> inFlightSuffixes_;
    std::vector<OutboundFrame> ring_;  // capacity 0 or a power of two; empty while idle
    std::size_t head_ = 0;
    std::size_t size_ = 0;
    std::size_t inFlight_ = 0;  // frames at the front that belong to the current write
    std::size_t bytes_ = 0;
};

}  // namespace wspush
