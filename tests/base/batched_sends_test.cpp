// BatchedSends against real sockets: loopback TCP pairs, one full, one closed.
#include "base/batched_sends.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace wspush {
namespace {

// A connected loopback TCP pair: `writer` non-blocking, as the daemon's sockets are.
struct SocketPair {
    int writer = -1;
    int reader = -1;
    SocketPair() {
        int listener = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t length = sizeof address;
        if (::bind(listener, reinterpret_cast<sockaddr*>(&address), length) != 0 || ::listen(listener, 1) != 0 ||
            ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0)
            ADD_FAILURE() << "listen: " << errno;
        writer = ::socket(AF_INET, SOCK_STREAM, 0);
        if (::connect(writer, reinterpret_cast<sockaddr*>(&address), length) != 0)
            ADD_FAILURE() << "connect: " << errno;
        reader = ::accept(listener, nullptr, nullptr);
        ::close(listener);
        ::fcntl(writer, F_SETFL, ::fcntl(writer, F_GETFL) | O_NONBLOCK);
        ::fcntl(reader, F_SETFL, ::fcntl(reader, F_GETFL) | O_NONBLOCK);
    }
    SocketPair(const SocketPair&) = delete;
    SocketPair& operator=(const SocketPair&) = delete;
    ~SocketPair() {
        if (writer >= 0) ::close(writer);
        if (reader >= 0) ::close(reader);
    }
    std::string drain() const {
        std::string received;
        char buffer[65536];
        for (ssize_t n; (n = ::recv(reader, buffer, sizeof buffer, 0)) > 0;) received.append(buffer, n);
        return received;
    }
};

struct RecordingSender final : BatchedSends::Sender {
    std::vector<std::int64_t> results;
    std::function<void()> then;  // called from sent(), after recording
    void sent(std::int64_t result) override {
        results.push_back(result);
        if (then) std::exchange(then, nullptr)();
    }
};

// Where io_uring cannot be used the daemon writes one system call each; there is nothing to test.
#define OPEN_OR_SKIP(name, entries)               \
    std::string why;                              \
    auto name = BatchedSends::open(entries, why); \
    if (!name) GTEST_SKIP() << "io_uring is not available here: " << why

TEST(BatchedSends, SendsToSeveralSocketsInOneSubmitAndTellsEachSenderItsResult) {
    OPEN_OR_SKIP(sends, 8);
    std::vector<SocketPair> pairs(5);
    std::vector<std::shared_ptr<RecordingSender>> senders;
    std::vector<std::string> messages;
    for (std::size_t i = 0; i < pairs.size(); ++i) messages.push_back("message " + std::to_string(i));
    for (std::size_t i = 0; i < pairs.size(); ++i) {
        senders.push_back(std::make_shared<RecordingSender>());
        sends->add(pairs[i].writer, messages[i].data(), messages[i].size(), senders.back());
    }
    EXPECT_FALSE(sends->empty());
    for (const auto& sender : senders) EXPECT_TRUE(sender->results.empty()) << "told before submit()";
    sends->submit();
    EXPECT_TRUE(sends->empty());
    EXPECT_EQ(sends->sends(), 5u);
    for (std::size_t i = 0; i < pairs.size(); ++i) {
        ASSERT_EQ(senders[i]->results, std::vector<std::int64_t>{static_cast<std::int64_t>(messages[i].size())});
        EXPECT_EQ(pairs[i].drain(), messages[i]);
    }
}

// Fills `full` until the kernel takes no more, then sends a message to it and to `other` in one
// submission; checks that the submission did not wait for the full socket's reader and that
// `other` got its message, and returns what the full socket's sender was told.
std::vector<std::int64_t> sendToFullAndOther(BatchedSends& sends, const SocketPair& full, const SocketPair& other) {
    const std::string block(65536, 'x');
    while (::send(full.writer, block.data(), block.size(), MSG_DONTWAIT) > 0) {
    }
    EXPECT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK);
    auto fullSender = std::make_shared<RecordingSender>();
    auto otherSender = std::make_shared<RecordingSender>();
    const std::string message = "for the other one";
    sends.add(full.writer, message.data(), message.size(), fullSender);
    sends.add(other.writer, message.data(), message.size(), otherSender);
    auto start = std::chrono::steady_clock::now();
    sends.submit();
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1)) << "waited for the full socket";
    EXPECT_EQ(otherSender->results, std::vector<std::int64_t>{static_cast<std::int64_t>(message.size())});
    EXPECT_EQ(other.drain(), message);
    return fullSender->results;
}

TEST(BatchedSends, AFullSocketAnswersEagainAtOnceAndTheOthersAreSent) {
    OPEN_OR_SKIP(sends, 8);
    SocketPair full, other;
    std::vector<std::int64_t> results = sendToFullAndOther(*sends, full, other);
    ASSERT_EQ(results.size(), 1u);
    EXPECT_TRUE(results[0] == -EAGAIN || results[0] == -EWOULDBLOCK) << results[0];
}

TEST(BatchedSends, ASendTheKernelWouldWaitOnIsCancelledAndAnswersEagain) {
    // Without MSG_DONTWAIT the kernel polls a full socket instead of answering: submit() must not
    // wait for the reader, whatever the kernel does.
    std::string why;
    auto sends = BatchedSends::open(8, why, /*waitless=*/false);
    if (!sends) GTEST_SKIP() << "io_uring is not available here: " << why;
    SocketPair full, other;
    EXPECT_EQ(sendToFullAndOther(*sends, full, other), std::vector<std::int64_t>{-EAGAIN});
    // The cancelled send wrote nothing (the reader finds only the filler), and the ring works after it.
    std::string filler = full.drain();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // what the writer still held arrives
    filler += full.drain();
    EXPECT_EQ(filler.find_first_not_of('x'), std::string::npos) << "the cancelled message was written";
    const std::string message = "after the cancellation";
    auto again = std::make_shared<RecordingSender>();
    sends->add(full.writer, message.data(), message.size(), again);
    sends->submit();
    EXPECT_EQ(again->results, std::vector<std::int64_t>{static_cast<std::int64_t>(message.size())});
    EXPECT_EQ(full.drain(), message);
}

TEST(BatchedSends, ABrokenSocketFailsAloneWithItsError) {
    OPEN_OR_SKIP(sends, 8);
    SocketPair closedPeer, fine;
    ::close(closedPeer.reader);
    closedPeer.reader = -1;
    const std::string message = "hello";
    // The first send to a peer that is gone draws a reset; the next one fails with EPIPE.
    ::send(closedPeer.writer, message.data(), message.size(), MSG_NOSIGNAL);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto broken = std::make_shared<RecordingSender>();
    auto sender = std::make_shared<RecordingSender>();
    sends->add(closedPeer.writer, message.data(), message.size(), broken);
    sends->add(fine.writer, message.data(), message.size(), sender);
    sends->submit();
    ASSERT_EQ(broken->results.size(), 1u);
    EXPECT_TRUE(broken->results[0] == -EPIPE || broken->results[0] == -ECONNRESET) << broken->results[0];
    EXPECT_EQ(sender->results, std::vector<std::int64_t>{static_cast<std::int64_t>(message.size())});
    EXPECT_EQ(fine.drain(), message);
}

TEST(BatchedSends, MoreThanTheRingHoldsGoInSeveralSubmissionsInOrder) {
    OPEN_OR_SKIP(sends, 4);
    SocketPair pair;
    std::vector<std::string> messages;
    for (int i = 0; i < 10; ++i) messages.push_back("<" + std::to_string(i) + ">");
    auto sender = std::make_shared<RecordingSender>();
    for (const std::string& message : messages) sends->add(pair.writer, message.data(), message.size(), sender);
    // Two submissions of 4 were made by add() itself when the ring was full; 2 wait.
    EXPECT_EQ(sender->results.size(), 8u);
    sends->submit();
    ASSERT_EQ(sender->results.size(), 10u);
    std::string expected;
    for (const std::string& message : messages) expected += message;
    EXPECT_EQ(pair.drain(), expected);
    EXPECT_EQ(sends->sends(), 10u);
}

TEST(BatchedSends, ASenderToldItsResultMayAddItsNextSendForTheNextSubmit) {
    OPEN_OR_SKIP(sends, 8);
    SocketPair pair;
    const std::string first = "first ", second = "second";
    auto sender = std::make_shared<RecordingSender>();
    sender->then = [&] { sends->add(pair.writer, second.data(), second.size(), sender); };
    sends->add(pair.writer, first.data(), first.size(), sender);
    sends->submit();
    EXPECT_EQ(sender->results.size(), 1u);
    EXPECT_FALSE(sends->empty());
    sends->submit();
    EXPECT_EQ(sender->results.size(), 2u);
    EXPECT_EQ(pair.drain(), first + second);
}

}  // namespace
}  // namespace wspush
