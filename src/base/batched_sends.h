// Non-blocking sends to many sockets in one system call (io_uring), for a turn of deliveries that
// writes one message to each of many connections. A system call is the largest part of a small
// write's cost, and on a virtual machine it costs a microsecond by itself: submitted together,
// 1,000 sends pay for one. Every send is made with MSG_DONTWAIT, so the kernel completes each
// one before submit() returns: a full socket answers -EAGAIN instead of being waited for (where a
// kernel polls it anyway, the send is cancelled, which is the same), and the sender goes on as it
// would after a partial write(). Used on one thread (its EventLoop's).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

struct io_uring;

namespace wspush {

class BatchedSends {
public:
    class Sender {
    public:
        // The send's result: the bytes the socket took (maybe fewer than asked), or -errno.
        virtual void sent(std::int64_t result) = 0;

    protected:
        ~Sender() = default;
    };

    // Null where io_uring cannot be used (an old kernel, kernel.io_uring_disabled, a container's
    // seccomp profile), with `why` saying so: senders then write one system call each.
    // `waitless`: MSG_DONTWAIT on every send. Only tests turn it off, to make the kernel wait on a
    // full socket, as some kernels might, and see that submit() still returns at once.
    static std::unique_ptr<BatchedSends> open(unsigned entries, std::string& why, bool waitless = true);
    ~BatchedSends();
    BatchedSends(const BatchedSends&) = delete;
    BatchedSends& operator=(const BatchedSends&) = delete;

    // Queues a send of `size` bytes at `data` to `fd`; the bytes and the socket must stay as they
    // are until `sender` is told the result (by submit(), or by add() itself when the ring was full).
    void add(int fd, const void* data, std::size_t size, std::shared_ptr<Sender> sender);
    // Sends everything queued and tells each sender its result, in the order they were added.
    // A sender told may add() again: that waits for the next submit().
    void submit();
    bool empty() const { return queued_.empty(); }
    // Sends made through the ring so far (wspush_batched_sends_total).
    std::uint64_t sends() const { return sends_; }

private:
    BatchedSends(std::unique_ptr<io_uring> ring, unsigned entries, int sendFlags);
    // Submits what the ring holds and collects every answer into `results` (by index); 0, or
    // the ring's error.
    int sendAll(std::size_t count, std::vector<std::int64_t>& results);
    // The answers available (all of them, waiting for the first one when `wait`): how many
    // sends were answered, or kRingFailed.
    std::size_t takeAnswers(std::vector<std::int64_t>& results, bool wait);

    static constexpr std::int64_t kUnanswered = std::numeric_limits<std::int64_t>::min();
    static constexpr std::uint64_t kCancellation =
        std::numeric_limits<std::uint64_t>::max();  // the user_data of a cancel request
    static constexpr std::size_t kRingFailed = std::numeric_limits<std::size_t>::max();

    std::unique_ptr<io_uring> ring_;
    unsigned entries_;
    int sendFlags_ = 0;
    std::vector<std::shared_ptr<Sender>> queued_;  // by submission order: the user_data of each entry
    int broken_ = 0;                               // the ring's error, once it failed
    std::size_t cancellations_ = 0;                // cancel requests not answered yet
    std::uint64_t sends_ = 0;
};

}  // namespace wspush
