#include "base/batched_sends.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include <liburing.h>

namespace wspush {

std::unique_ptr<BatchedSends> BatchedSends::open(unsigned entries, std::string& why, bool waitless) {
    auto ring = std::make_unique<io_uring>();
    if (int error = io_uring_queue_init(entries, ring.get(), 0); error < 0) {
        why = std::strerror(-error);
        return nullptr;
    }
    // IORING_FEAT_NODROP: a completion is never lost when the completion queue is full. Kernels
    // since 5.5; without it, nothing here would guarantee every sender hears back.
    if (!(ring->features & IORING_FEAT_NODROP)) {
        io_uring_queue_exit(ring.get());
        why = "the kernel's io_uring may drop completions (before Linux 5.5)";
        return nullptr;
    }
    return std::unique_ptr<BatchedSends>(
        new BatchedSends(std::move(ring), entries, MSG_NOSIGNAL | (waitless ? MSG_DONTWAIT : 0)));
}

BatchedSends::BatchedSends(std::unique_ptr<io_uring> ring, unsigned entries, int sendFlags)
    : ring_(std::move(ring)), entries_(entries), sendFlags_(sendFlags) {
    queued_.reserve(entries);
}

BatchedSends::~BatchedSends() {
    io_uring_queue_exit(ring_.get());
}

void BatchedSends::add(int fd, const void* data, std::size_t size, std::shared_ptr<Sender> sender) {
    if (queued_.size() == entries_) submit();
    if (broken_ != 0) {
        queued_.push_back(std::move(sender));  // failed by submit() with the ring's error
        return;
    }
    io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
    // MSG_DONTWAIT: a full socket completes with -EAGAIN at once rather than waiting in the
    // kernel (io_uring would otherwise poll it), so submit() never waits for a slow reader.
    io_uring_prep_send(sqe, fd, data, size, sendFlags_);
    io_uring_sqe_set_data64(sqe, queued_.size());
    queued_.push_back(std::move(sender));
}

void BatchedSends::submit() {
    if (queued_.empty()) return;
    std::vector<std::shared_ptr<Sender>> senders;
    senders.swap(queued_);
    queued_.reserve(entries_);
    std::vector<std::int64_t> results(senders.size(), kUnanswered);
    int error = broken_;
    if (error == 0) error = sendAll(senders.size(), results);
    if (error < 0) {
        // The ring itself failed, which it should not: entries may be left in it, so it is not
        // used again. What it did not send is reported failed; the senders carry on as after a
        // failed write (the connection ends, its session can resume elsewhere).
        broken_ = error;
        for (std::int64_t& result : results)
            if (result == kUnanswered) result = error;
    }
    sends_ += senders.size();
    // Told once the ring is empty again: a sender may add() its next write.
    for (std::size_t i = 0; i < senders.size(); ++i) senders[i]->sent(results[i]);
}

int BatchedSends::sendAll(std::size_t count, std::vector<std::int64_t>& results) {
    int submitted;
    do {
        submitted = io_uring_submit(ring_.get());
    } while (submitted == -EINTR);
    if (submitted < 0) return submitted;
    // The kernel took fewer than asked (out of memory): the rest stays in the ring.
    int error = static_cast<std::size_t>(submitted) < count ? -EAGAIN : 0;
    std::size_t answered = takeAnswers(results, false);
    if (answered < static_cast<std::size_t>(submitted)) {
        // Sends the kernel did not finish within the submission (one that polls a full socket
        // despite MSG_DONTWAIT): cancelled, so that a slow reader never holds up the loop. A
        // cancelled send wrote nothing, which its sender hears as EAGAIN.
        for (std::size_t i = 0; i < static_cast<std::size_t>(submitted); ++i) {
            if (results[i] != kUnanswered) continue;
            io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
            if (sqe == nullptr) return -EBUSY;
            io_uring_prep_cancel64(sqe, i, 0);
            io_uring_sqe_set_data64(sqe, kCancellation);
            ++cancellations_;
        }
        if (int cancelled = io_uring_submit(ring_.get()); cancelled < 0) return cancelled;
        while (answered < static_cast<std::size_t>(submitted) || cancellations_ > 0) {
            std::size_t more = takeAnswers(results, true);
            if (more == kRingFailed) return -EIO;
            answered += more;
        }
        for (std::int64_t& result : results)
            if (result == -ECANCELED) result = -EAGAIN;
    }
    return error;
}

std::size_t BatchedSends::takeAnswers(std::vector<std::int64_t>& results, bool wait) {
    std::size_t answered = 0;
    for (;;) {
        io_uring_cqe* cqe = nullptr;
        int error = wait && answered == 0 ? io_uring_wait_cqe(ring_.get(), &cqe) : io_uring_peek_cqe(ring_.get(), &cqe);
        if (error == -EINTR) continue;
        if (error == -EAGAIN || (error == 0 && cqe == nullptr)) return answered;
        if (error < 0) return kRingFailed;
        std::uint64_t index = io_uring_cqe_get_data64(cqe);
        if (index == kCancellation) {
            --cancellations_;
        } else {
            results.at(index) = cqe->res;
            ++answered;
        }
        io_uring_cqe_seen(ring_.get(), cqe);
    }
}

}  // namespace wspush
