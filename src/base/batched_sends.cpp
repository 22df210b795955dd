#include "base/batched_sends.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include <liburing.h>

namespace wspush {

std::unique_ptr<BatchedSends> BatchedSends::open(unsigned entries, std::string& why) {
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
    return std::unique_ptr<BatchedSends>(new BatchedSends(std::move(ring), entries));
}

BatchedSends::BatchedSends(std::unique_ptr<io_uring> ring, unsigned entries)
    : ring_(std::move(ring)), entries_(entries) {
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
    io_uring_prep_send(sqe, fd, data, size, MSG_DONTWAIT | MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, queued_.size());
    queued_.push_back(std::move(sender));
}

void BatchedSends::submit() {
    if (queued_.empty()) return;
    std::vector<std::shared_ptr<Sender>> senders;
    senders.swap(queued_);
    queued_.reserve(entries_);
    std::vector<std::int64_t> results(senders.size(), -ECANCELED);
    int error = broken_;
    std::size_t submitted = 0;
    if (error == 0) {
        do {
            error = io_uring_submit(ring_.get());  // each send completes in it: nothing to wait for
        } while (error == -EINTR);
        if (error >= 0) submitted = static_cast<std::size_t>(error);
        // The kernel took fewer than asked (out of memory): the rest stays in the ring.
        if (error >= 0 && submitted < senders.size()) error = -EAGAIN;
    }
    for (std::size_t completed = 0; completed < submitted;) {
        io_uring_cqe* cqe = nullptr;
        int waited = io_uring_wait_cqe(ring_.get(), &cqe);
        if (waited == -EINTR || (waited == 0 && cqe == nullptr)) continue;
        if (waited < 0) {
            error = waited;
            break;
        }
        results.at(io_uring_cqe_get_data64(cqe)) = cqe->res;
        io_uring_cqe_seen(ring_.get(), cqe);
        ++completed;
    }
    if (error < 0) {
        // The ring itself failed, which it should not: entries may be left in it, so it is not
        // used again. What it did not send is reported failed; the senders carry on as after a
        // failed write (the connection ends, its session can resume elsewhere).
        broken_ = error;
        for (std::int64_t& result : results)
            if (result == -ECANCELED) result = error;
    }
    sends_ += senders.size();
    // Told once the ring is empty again: a sender may add() its next write.
    for (std::size_t i = 0; i < senders.size(); ++i) senders[i]->sent(results[i]);
}

}  // namespace wspush
