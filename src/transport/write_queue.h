// A connection's outgoing frames: bounded in bytes and frames, coalesced into few writes.
// Pure bookkeeping: no socket, no clock, so it is unit-tested on its own.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/container/static_vector.hpp>

#include "node/joined_frame_cache.h"
#include "protocol/frame.h"

namespace wspush {

// A batch's buffers, with room for the frame header the direct path puts before them: inside
// the session, where a heap array would be one more cache line to miss per write.
using WriteBuffers = boost::container::static_vector<boost::asio::const_buffer, 3>;

struct Batch {
    std::size_t frames = 0;
    std::size_t bytes = 0;  // payload bytes, separators included
    bool binary = false;
};

class WriteQueue {
public:
    // A batch is one WebSocket message. Small text frames queued behind each other are copied
    // into one contiguous buffer, joined by '\n': a burst then leaves in one sendmsg whatever the
    // number of frames (Asio gathers at most 16 buffers per call, so gathering the frames in place
    // would cost a system call per 8 of them). Copying a few KiB is far cheaper than a system call,
    // and connections given the same frames share one copy (JoinedFrameCache). A frame alone in
    // its batch, or a large one, is not copied: its payload is written in place.
    static constexpr std::size_t kMaxBatchFrames = 1024;
    static constexpr std::size_t kMaxBatchBytes = 64 * 1024;
    static constexpr std::size_t kMaxJoinedFrameBytes = 8 * 1024;  // larger frames go alone

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

    // Puts the next batch in flight and fills `buffers` with it (one or two buffers): consecutive
    // text frames of at most kMaxJoinedFrameBytes joined by '\n' (within kMaxBatchFrames and
    // kMaxBatchBytes), or one frame alone. Requires !writing() && hasPending(). The buffers stay
    // valid until finishBatch(). With `cache`, a batch of shared frames without suffixes is
    // looked up there and remembered there.
    Batch startBatch(WriteBuffers& buffers, JoinedFrameCache* cache = nullptr);
    // The batch in flight when it is one frame that other connections may have been given too
    // (a lone frame without suffix, or a joined batch): what compressing it once can key on.
    // Else null. Valid until the queue changes.
    const SharedFrame* inFlightFrame() const;
    // The batch in flight when it is a single frame, joined with nothing: its payload may be
    // shared though its suffix is not. Else null. Valid until the queue changes.
    const OutboundFrame* inFlightLone() const;
    // The batch in flight was written (or failed): release it.
    void finishBatch();
    // Drops every frame not in flight.
    void dropPending();

private:
    OutboundFrame& at(std::size_t i) { return ring_[(head_ + i) & (ring_.size() - 1)]; }
    const OutboundFrame& at(std::size_t i) const { return ring_[(head_ + i) & (ring_.size() - 1)]; }
    bool joinable(const OutboundFrame& frame) const {
        return !frame.standalone && !frame.binary && frame.size() <= kMaxJoinedFrameBytes;
    }
    void append(OutboundFrame frame);
    void popFront();

    // What every push and write reads comes first: one cache line for a connection's queue.
    std::vector<OutboundFrame> ring_;  // capacity 0 or a power of two; empty while idle
    std::size_t head_ = 0;
    std::size_t size_ = 0;
    std::size_t inFlight_ = 0;  // frames at the front that belong to the current write
    std::size_t bytes_ = 0;
    std::size_t maxBytes_;
    std::size_t maxFrames_;
    // What the buffers in flight point at besides shared payloads. Frames live in the ring, which
    // may grow (and move) while a write is under way, so a lone frame's suffix is copied here;
    // a joined batch is held until finishBatch().
    SharedFrame joined_;
    bool joinedShared_ = false;  // joined_ is the loop's, for every connection given the same frames
    FrameSuffix inFlightSuffix_;
};

}  // namespace wspush
