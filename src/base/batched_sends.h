// Non-blocking sends to many sockets in one system call (io_uring), for a turn of deliveries that
// writes one message to each of many connections. A system call is the largest part of a small
// write's cost, and on a virtual machine it costs a microsecond by itself: submitted together,
// 1,000 sends pay for one. Every send is made with MSG_DONTWAIT, so the kernel completes each
// one before submit() returns: a full socket answers -EAGAIN instead of being waited for, and the
// sender goes on as it would after a partial write(). Used on one thread (its EventLoop's).
#pragma once

#include <cstddef>
#include <cstdint>
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
    static std::unique_ptr<BatchedSends> open(unsigned entries, std::string& why);
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
    BatchedSends(std::unique_ptr<io_uring> ring, unsigned entries);

    std::unique_ptr<io_uring> ring_;
    unsigned entries_;
    std::vector<std::shared_ptr<Sender>> queued_;  // by submission order: the user_data of each entry
    int broken_ = 0;                               // the ring's error, once it failed
    std::uint64_t sends_ = 0;
};

}  // namespace wspush
