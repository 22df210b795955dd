#include "transport/write_queue.h"
#include <cstring>

#include <deque>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace wspush {
namespace {

OutboundFrame text(std::string payload) {
    return OutboundFrame::text(std::make_shared<const std::string>(std::move(payload)));
}

OutboundFrame binary(std::string payload, bool standalone = true) {
    OutboundFrame frame = OutboundFrame::echo(std::make_shared<const std::string>(std::move(payload)), true);
    frame.standalone = standalone;
    return frame;
}

OutboundFrame standalone(std::string payload) {
    return OutboundFrame::echo(std::make_shared<const std::string>(std::move(payload)), false);
}

OutboundFrame withSuffix(std::string payload, std::string_view suffix) {
    FrameSuffix s;
    std::memcpy(s.text, suffix.data(), suffix.size());
    s.length = static_cast<std::uint8_t>(suffix.size());
    return OutboundFrame::text(std::make_shared<const std::string>(std::move(payload)), s);
}

std::string concat(const WriteBuffers& buffers) {
    std::string out;
    for (const auto& b : buffers) out.append(static_cast<const char*>(b.data()), b.size());
    return out;
}

// Starts a batch and returns what it would write.
std::string nextBatch(WriteQueue& queue, Batch* batchOut = nullptr) {
    WriteBuffers buffers;
    Batch batch = queue.startBatch(buffers);
    if (batchOut != nullptr) *batchOut = batch;
    std::string written = concat(buffers);
    EXPECT_EQ(batch.bytes, written.size());
    return written;
}

constexpr std::size_t kLarge = 1 << 30;

TEST(WriteQueueTest, StartsEmpty) {
    WriteQueue queue(100, 10);
    EXPECT_TRUE(queue.empty());
    EXPECT_FALSE(queue.hasPending());
    EXPECT_FALSE(queue.writing());
    EXPECT_EQ(queue.frames(), 0u);
    EXPECT_EQ(queue.bytes(), 0u);
}

TEST(WriteQueueTest, PushCountsFramesAndBytes) {
    WriteQueue queue(100, 10);
    EXPECT_TRUE(queue.push(text("abc")));
    EXPECT_TRUE(queue.push(text("de")));
    EXPECT_FALSE(queue.empty());
    EXPECT_TRUE(queue.hasPending());
    EXPECT_EQ(queue.frames(), 2u);
    EXPECT_EQ(queue.bytes(), 5u);
}

TEST(WriteQueueTest, ByteBoundRefusesAndQueuesNothing) {
    WriteQueue queue(10, 100);
    EXPECT_TRUE(queue.push(text("12345")));
    EXPECT_TRUE(queue.push(text("12345")));  // exactly at the bound
    EXPECT_FALSE(queue.push(text("x")));
    EXPECT_EQ(queue.frames(), 2u);
    EXPECT_EQ(queue.bytes(), 10u);
    EXPECT_EQ(nextBatch(queue), "12345\n12345");
}

TEST(WriteQueueTest, OneFrameLargerThanTheByteBoundIsRefusedBehindOthers) {
    WriteQueue queue(10, 100);
    ASSERT_TRUE(queue.push(text("a")));
    EXPECT_FALSE(queue.push(text(std::string(11, 'x'))));
    EXPECT_EQ(queue.frames(), 1u);
    EXPECT_EQ(queue.bytes(), 1u);
}

TEST(WriteQueueTest, FrameBoundRefusesAndQueuesNothing) {
    WriteQueue queue(kLarge, 3);
    EXPECT_TRUE(queue.push(text("a")));
    EXPECT_TRUE(queue.push(text("b")));
    EXPECT_TRUE(queue.push(text("c")));
    EXPECT_FALSE(queue.push(text("d")));
    EXPECT_EQ(queue.frames(), 3u);
    EXPECT_EQ(queue.bytes(), 3u);
    EXPECT_EQ(nextBatch(queue), "a\nb\nc");
}

TEST(WriteQueueTest, InFlightFramesCountAgainstTheBounds) {
    WriteQueue queue(kLarge, 2);
    ASSERT_TRUE(queue.push(text("a")));
    ASSERT_TRUE(queue.push(text("b")));
    nextBatch(queue);
    EXPECT_FALSE(queue.push(text("c")));
    queue.finishBatch();
    EXPECT_TRUE(queue.push(text("c")));
}

TEST(WriteQueueTest, PushUnboundedIgnoresTheBounds) {
    WriteQueue queue(4, 1);
    ASSERT_TRUE(queue.push(text("abcd")));
    EXPECT_FALSE(queue.push(text("e")));
    queue.pushUnbounded(text("bye!!"));
    queue.pushUnbounded(text("again"));
    EXPECT_EQ(queue.frames(), 3u);
    EXPECT_EQ(queue.bytes(), 14u);
    EXPECT_EQ(nextBatch(queue), "abcd\nbye!!\nagain");
}

TEST(WriteQueueTest, BatchJoinsTextFramesWithNewlines) {
    WriteQueue queue(kLarge, 100);
    for (const char* m : {R"({"a":1})", R"({"b":2})", R"({"c":3})"}) ASSERT_TRUE(queue.push(text(m)));
    WriteBuffers buffers;
    Batch batch = queue.startBatch(buffers);
    EXPECT_EQ(batch.frames, 3u);
    EXPECT_FALSE(batch.binary);
    EXPECT_EQ(buffers.size(), 1u);  // copied into one buffer: one gathered write, one sendmsg
    EXPECT_EQ(concat(buffers), "{\"a\":1}\n{\"b\":2}\n{\"c\":3}");
    EXPECT_EQ(batch.bytes, 7u * 3 + 2);
    EXPECT_TRUE(queue.writing());
    EXPECT_FALSE(queue.hasPending());
}

TEST(WriteQueueTest, BatchBuffersPointAtTheSharedPayloads) {
    WriteQueue queue(kLarge, 100);
    OutboundFrame frame = text("payload");
    const void* data = frame.payload->data();
    ASSERT_TRUE(queue.push(frame));
    WriteBuffers buffers;
    queue.startBatch(buffers);
    ASSERT_EQ(buffers.size(), 1u);
    EXPECT_EQ(buffers[0].data(), data);  // no copy of the frame
    EXPECT_EQ(frame.payload.use_count(), 2);
    queue.finishBatch();
    EXPECT_EQ(frame.payload.use_count(), 1);  // released by finishBatch
}

TEST(WriteQueueTest, BatchIsLimitedToMaxBatchFrames) {
    WriteQueue queue(kLarge, 5000);
    const std::size_t total = WriteQueue::kMaxBatchFrames * 2 + 5;
    for (std::size_t i = 0; i < total; ++i) ASSERT_TRUE(queue.push(text(std::to_string(i))));
    std::size_t next = 0;
    for (std::size_t expected : {WriteQueue::kMaxBatchFrames, WriteQueue::kMaxBatchFrames, std::size_t{5}}) {
        Batch batch;
        std::string written = nextBatch(queue, &batch);
        EXPECT_EQ(batch.frames, expected);
        std::string want;
        for (std::size_t i = 0; i < expected; ++i) {
            if (i) want += '\n';
            want += std::to_string(next++);
        }
        EXPECT_EQ(written, want);
        queue.finishBatch();
    }
    EXPECT_TRUE(queue.empty());
}

TEST(WriteQueueTest, BatchIsLimitedToMaxBatchBytes) {
    WriteQueue queue(kLarge, 1000);
    const std::size_t size = 4000;
    // n frames take n * size + (n - 1) separator bytes.
    const std::size_t fit = (WriteQueue::kMaxBatchBytes + 1) / (size + 1);
    ASSERT_LT(fit, WriteQueue::kMaxBatchFrames);
    for (std::size_t i = 0; i < fit + 3; ++i)
        ASSERT_TRUE(queue.push(text(std::string(size, static_cast<char>('a' + i % 26)))));
    Batch batch;
    nextBatch(queue, &batch);
    EXPECT_EQ(batch.frames, fit);
    EXPECT_LE(batch.bytes, WriteQueue::kMaxBatchBytes);
    EXPECT_EQ(batch.bytes, fit * size + fit - 1);
    queue.finishBatch();
    EXPECT_EQ(queue.frames(), 3u);
}

TEST(WriteQueueTest, BatchOfExactlyMaxBatchBytesIsAllowed) {
    WriteQueue queue(kLarge, 1000);
    // Eight frames and their seven separators add up to exactly kMaxBatchBytes.
    const std::size_t big = WriteQueue::kMaxJoinedFrameBytes;
    for (int i = 0; i < 7; ++i) ASSERT_TRUE(queue.push(text(std::string(big, static_cast<char>('a' + i)))));
    ASSERT_TRUE(queue.push(text(std::string(WriteQueue::kMaxBatchBytes - 7 * big - 7, 'h'))));
    ASSERT_TRUE(queue.push(text("c")));
    Batch batch;
    nextBatch(queue, &batch);
    EXPECT_EQ(batch.frames, 8u);
    EXPECT_EQ(batch.bytes, WriteQueue::kMaxBatchBytes);
}

TEST(WriteQueueTest, AFrameLargerThanTheJoinLimitGoesAloneAndIsNotCopied) {
    WriteQueue queue(kLarge, 1000);
    OutboundFrame large = text(std::string(WriteQueue::kMaxJoinedFrameBytes + 1, 'L'));
    ASSERT_TRUE(queue.push(text("before")));
    ASSERT_TRUE(queue.push(large));
    ASSERT_TRUE(queue.push(text("after")));
    EXPECT_EQ(nextBatch(queue), "before");
    queue.finishBatch();
    WriteBuffers buffers;
    Batch batch = queue.startBatch(buffers);
    EXPECT_EQ(batch.frames, 1u);
    ASSERT_EQ(buffers.size(), 1u);
    EXPECT_EQ(buffers[0].data(), large.payload->data());
    queue.finishBatch();
    EXPECT_EQ(nextBatch(queue), "after");
}

TEST(WriteQueueTest, FrameLargerThanMaxBatchBytesGoesAlone) {
    WriteQueue queue(kLarge, 1000);
    const std::string big(WriteQueue::kMaxBatchBytes + 10, 'x');
    ASSERT_TRUE(queue.push(text("before")));
    ASSERT_TRUE(queue.push(text(big)));
    ASSERT_TRUE(queue.push(text("after")));
    EXPECT_EQ(nextBatch(queue), "before");
    queue.finishBatch();
    Batch batch;
    EXPECT_EQ(nextBatch(queue, &batch), big);
    EXPECT_EQ(batch.frames, 1u);
    queue.finishBatch();
    EXPECT_EQ(nextBatch(queue), "after");
}

TEST(WriteQueueTest, StandaloneFramesAreNeverJoined) {
    WriteQueue queue(kLarge, 1000);
    ASSERT_TRUE(queue.push(text("a")));
    ASSERT_TRUE(queue.push(standalone("echo")));
    ASSERT_TRUE(queue.push(text("b")));
    ASSERT_TRUE(queue.push(text("c")));
    EXPECT_EQ(nextBatch(queue), "a");
    queue.finishBatch();
    Batch batch;
    EXPECT_EQ(nextBatch(queue, &batch), "echo");
    EXPECT_EQ(batch.frames, 1u);
    EXPECT_FALSE(batch.binary);
    queue.finishBatch();
    EXPECT_EQ(nextBatch(queue), "b\nc");
}

TEST(WriteQueueTest, BinaryFramesAreNeverJoined) {
    WriteQueue queue(kLarge, 1000);
    ASSERT_TRUE(queue.push(text("a")));
    ASSERT_TRUE(queue.push(binary("\x01\x02")));
    ASSERT_TRUE(queue.push(binary("\x03")));
    ASSERT_TRUE(queue.push(text("b")));
    EXPECT_EQ(nextBatch(queue), "a");
    queue.finishBatch();
    Batch batch;
    EXPECT_EQ(nextBatch(queue, &batch), "\x01\x02");
    EXPECT_TRUE(batch.binary);
    EXPECT_EQ(batch.frames, 1u);
    queue.finishBatch();
    EXPECT_EQ(nextBatch(queue, &batch), "\x03");
    EXPECT_TRUE(batch.binary);
    queue.finishBatch();
    EXPECT_EQ(nextBatch(queue, &batch), "b");
    EXPECT_FALSE(batch.binary);
}

TEST(WriteQueueTest, NonStandaloneBinaryFrameIsNotJoinedEither) {
    // A binary frame must go out as its own binary message even if a caller forgets `standalone`:
    // joining text to it would send text inside a binary message.
    WriteQueue queue(kLarge, 1000);
    ASSERT_TRUE(queue.push(binary("\x01", /*standalone=*/false)));
    ASSERT_TRUE(queue.push(text("t")));
    Batch batch;
    EXPECT_EQ(nextBatch(queue, &batch), "\x01");
    EXPECT_TRUE(batch.binary);
    EXPECT_EQ(batch.frames, 1u);
}

TEST(WriteQueueTest, FinishBatchReleasesBytesAndFrames) {
    WriteQueue queue(kLarge, 1000);
    ASSERT_TRUE(queue.push(text("aaa")));
    ASSERT_TRUE(queue.push(text("bb")));
    ASSERT_TRUE(queue.push(standalone("c")));
    nextBatch(queue);
    EXPECT_EQ(queue.frames(), 3u);  // in-flight frames still count
    EXPECT_EQ(queue.bytes(), 6u);
    queue.finishBatch();
    EXPECT_FALSE(queue.writing());
    EXPECT_EQ(queue.frames(), 1u);
    EXPECT_EQ(queue.bytes(), 1u);
    EXPECT_TRUE(queue.hasPending());
    nextBatch(queue);
    queue.finishBatch();
    EXPECT_TRUE(queue.empty());
    EXPECT_EQ(queue.bytes(), 0u);
    EXPECT_FALSE(queue.hasPending());
}

TEST(WriteQueueTest, DropPendingKeepsTheBatchInFlight) {
    WriteQueue queue(kLarge, 1000);
    ASSERT_TRUE(queue.push(text("a")));
    ASSERT_TRUE(queue.push(text("b")));
    WriteBuffers buffers;
    queue.startBatch(buffers);
    ASSERT_TRUE(queue.push(text("ccc")));
    ASSERT_TRUE(queue.push(standalone("dddd")));
    queue.dropPending();
    EXPECT_TRUE(queue.writing());
    EXPECT_FALSE(queue.hasPending());
    EXPECT_EQ(queue.frames(), 2u);
    EXPECT_EQ(queue.bytes(), 2u);
    EXPECT_EQ(concat(buffers), "a\nb");  // the in-flight buffers stay valid
    queue.finishBatch();
    EXPECT_TRUE(queue.empty());
    EXPECT_EQ(queue.bytes(), 0u);
}

TEST(WriteQueueTest, DropPendingWhileIdleEmptiesTheQueue) {
    WriteQueue queue(kLarge, 1000);
    ASSERT_TRUE(queue.push(text("a")));
    ASSERT_TRUE(queue.push(text("b")));
    queue.dropPending();
    EXPECT_TRUE(queue.empty());
    EXPECT_EQ(queue.bytes(), 0u);
    ASSERT_TRUE(queue.push(text("c")));
    EXPECT_EQ(nextBatch(queue), "c");
}

TEST(WriteQueueTest, QueueIsReusableAfterGrowingAndDraining) {
    WriteQueue queue(kLarge, 10000);
    for (int round = 0; round < 3; ++round) {
        for (int i = 0; i < 100; ++i) ASSERT_TRUE(queue.push(text(std::to_string(round * 1000 + i))));
        int next = 0;
        while (queue.hasPending()) {
            Batch batch;
            std::string written = nextBatch(queue, &batch);
            std::string want;
            for (std::size_t i = 0; i < batch.frames; ++i) {
                if (i) want += '\n';
                want += std::to_string(round * 1000 + next++);
            }
            EXPECT_EQ(written, want);
            queue.finishBatch();
        }
        EXPECT_EQ(next, 100);
        EXPECT_TRUE(queue.empty());
    }
}

// A reference model: a deque of (payload, binary, standalone) and the same batching rule.
TEST(WriteQueueTest, RandomizedOperationsKeepFifoOrderAgainstAReferenceModel) {
    std::mt19937 rng(12345);
    const std::size_t maxBytes = 4000;
    const std::size_t maxFrames = 50;
    WriteQueue queue(maxBytes, maxFrames);
    std::deque<OutboundFrame> model;
    std::size_t modelInFlight = 0;
    std::size_t modelBytes = 0;
    int counter = 0;
    std::size_t batches = 0;

    auto makeFrame = [&]() {
        std::string payload = std::to_string(counter++) + ":";
        payload += std::string(std::uniform_int_distribution<int>(0, 120)(rng), 'p');
        int kind = std::uniform_int_distribution<int>(0, 19)(rng);
        if (kind == 0) return binary(payload);
        if (kind == 1) return standalone(payload);
        return text(payload);
    };

    for (int step = 0; step < 20000; ++step) {
        int op = std::uniform_int_distribution<int>(0, 99)(rng);
        if (op < 55) {
            OutboundFrame frame = makeFrame();
            bool fits = model.size() + 1 <= maxFrames && modelBytes + frame.payload->size() <= maxBytes;
            ASSERT_EQ(queue.push(frame), fits) << "step " << step;
            if (fits) {
                modelBytes += frame.payload->size();
                model.push_back(frame);
            }
        } else if (op < 58) {
            OutboundFrame frame = makeFrame();
            queue.pushUnbounded(frame);
            modelBytes += frame.payload->size();
            model.push_back(frame);
        } else if (op < 80) {
            if (modelInFlight != 0 || model.size() == modelInFlight) continue;
            WriteBuffers buffers;
            Batch batch = queue.startBatch(buffers);
            ++batches;
            // The model's batch: the first frame, then following text frames within the limits.
            std::string want = *model[0].payload;
            std::size_t frames = 1;
            if (!model[0].standalone && !model[0].binary) {
                while (frames < model.size() && frames < WriteQueue::kMaxBatchFrames && !model[frames].standalone &&
                       !model[frames].binary &&
                       want.size() + 1 + model[frames].payload->size() <= WriteQueue::kMaxBatchBytes) {
                    want += "\n" + *model[frames].payload;
                    ++frames;
                }
            }
            ASSERT_EQ(batch.frames, frames) << "step " << step;
            ASSERT_EQ(batch.binary, model[0].binary) << "step " << step;
            ASSERT_EQ(concat(buffers), want) << "step " << step;
            modelInFlight = frames;
        } else if (op < 97) {
            if (modelInFlight == 0) continue;
            queue.finishBatch();
            for (; modelInFlight > 0; --modelInFlight) {
                modelBytes -= model.front().payload->size();
                model.pop_front();
            }
        } else {
            queue.dropPending();
            while (model.size() > modelInFlight) {
                modelBytes -= model.back().payload->size();
                model.pop_back();
            }
        }
        ASSERT_EQ(queue.frames(), model.size()) << "step " << step;
        ASSERT_EQ(queue.bytes(), modelBytes) << "step " << step;
        ASSERT_EQ(queue.writing(), modelInFlight > 0) << "step " << step;
        ASSERT_EQ(queue.hasPending(), model.size() > modelInFlight) << "step " << step;
        ASSERT_EQ(queue.empty(), model.empty()) << "step " << step;
    }
    EXPECT_GT(batches, 1000u);
}

// Bursts that fill the queue far past its initial capacity while a batch is in flight, so the
// ring grows with a wrapped head.
TEST(WriteQueueTest, GrowthWithAWrappedHeadKeepsOrder) {
    WriteQueue queue(kLarge, 100000);
    std::deque<std::string> model;
    int counter = 0;
    std::mt19937 rng(7);
    for (int round = 0; round < 200; ++round) {
        int burst = std::uniform_int_distribution<int>(1, 300)(rng);
        for (int i = 0; i < burst; ++i) {
            std::string payload = std::to_string(counter++);
            ASSERT_TRUE(queue.push(text(payload)));
            model.push_back(payload);
        }
        int drains = std::uniform_int_distribution<int>(1, 12)(rng);
        for (int d = 0; d < drains && queue.hasPending(); ++d) {
            Batch batch;
            std::string written = nextBatch(queue, &batch);
            std::string want;
            for (std::size_t i = 0; i < batch.frames; ++i) {
                want += (i ? "\n" : "") + model.front();
                model.pop_front();
            }
            ASSERT_EQ(written, want) << "round " << round;
            queue.finishBatch();
        }
        ASSERT_EQ(queue.frames(), model.size());
    }
}

}  // namespace
}  // namespace wspush

namespace wspush {
namespace {

TEST(WriteQueueTest, SuffixesFollowTheirPayloadInAJoinedBatch) {
    WriteQueue queue(1 << 20, 100);
    for (int i = 0; i < 3; ++i)
        ASSERT_TRUE(queue.push(withSuffix("{\"m\":" + std::to_string(i), ",\"did\":" + std::to_string(i) + "}")));
    WriteBuffers buffers;
    Batch batch = queue.startBatch(buffers);
    EXPECT_EQ(batch.frames, 3u);
    EXPECT_EQ(buffers.size(), 1u);
    EXPECT_EQ(concat(buffers), "{\"m\":0,\"did\":0}\n{\"m\":1,\"did\":1}\n{\"m\":2,\"did\":2}");
    EXPECT_EQ(batch.bytes, concat(buffers).size());
}

TEST(WriteQueueTest, ALoneFrameWithASuffixIsWrittenInPlace) {
    WriteQueue queue(1 << 20, 1000);
    OutboundFrame frame = withSuffix("{\"m\":7", ",\"did\":9}");
    ASSERT_TRUE(queue.push(frame));
    WriteBuffers buffers;
    queue.startBatch(buffers);
    ASSERT_EQ(buffers.size(), 2u);
    EXPECT_EQ(buffers[0].data(), frame.payload->data());
    // More frames arrive while the write is under way and the ring moves: the suffix stays put.
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(queue.push(text("x")));
    EXPECT_EQ(concat(buffers), "{\"m\":7,\"did\":9}");
}

}  // namespace
}  // namespace wspush

namespace wspush {
namespace {

TEST(WriteQueueTest, TheBatchInFlightSurvivesTheRingGrowingUnderIt) {
    // A write may still be under way when more frames arrive and the ring reallocates; the
    // buffers of the batch in flight must not point into the old ring (ASan reports it if they do).
    WriteQueue queue(1 << 20, 1000);
    for (int i = 0; i < 4; ++i)
        ASSERT_TRUE(queue.push(withSuffix("{\"m\":" + std::to_string(i), ",\"did\":" + std::to_string(i) + "}")));
    WriteBuffers buffers;
    queue.startBatch(buffers);
    std::string before = concat(buffers);
    for (int i = 4; i < 200; ++i)
        ASSERT_TRUE(queue.push(withSuffix("{\"m\":" + std::to_string(i), ",\"did\":" + std::to_string(i) + "}")));
    EXPECT_EQ(concat(buffers), before);
    EXPECT_EQ(before, "{\"m\":0,\"did\":0}\n{\"m\":1,\"did\":1}\n{\"m\":2,\"did\":2}\n{\"m\":3,\"did\":3}");
}

}  // namespace
}  // namespace wspush

namespace wspush {
namespace {

TEST(WriteQueueTest, ConnectionsGivenTheSameFramesShareOneJoinedBatch) {
    JoinedFrameCache cache;
    OutboundFrame a = text("{\"a\":1}"), b = text("{\"b\":2}"), c = text("{\"c\":3}");
    WriteQueue first(kLarge, 100), second(kLarge, 100), third(kLarge, 100);
    for (WriteQueue* queue : {&first, &second}) {
        ASSERT_TRUE(queue->push(a));
        ASSERT_TRUE(queue->push(b));
    }
    ASSERT_TRUE(third.push(a));
    ASSERT_TRUE(third.push(c));  // other frames: a batch of its own

    WriteBuffers one, two, three;
    first.startBatch(one, &cache);
    second.startBatch(two, &cache);
    third.startBatch(three, &cache);
    ASSERT_EQ(one.size(), 1u);
    ASSERT_EQ(two.size(), 1u);
    EXPECT_EQ(one[0].data(), two[0].data());  // one copy for both
    EXPECT_EQ(concat(two), "{\"a\":1}\n{\"b\":2}");
    EXPECT_NE(three[0].data(), one[0].data());
    EXPECT_EQ(concat(three), "{\"a\":1}\n{\"c\":3}");

    // The cache forgetting its batch (end of a turn) does not pull it from under the writes.
    cache.clear();
    EXPECT_EQ(concat(one), "{\"a\":1}\n{\"b\":2}");
    first.finishBatch();
    EXPECT_EQ(concat(two), "{\"a\":1}\n{\"b\":2}");
}

TEST(WriteQueueTest, BatchesWithSuffixesAreNeverShared) {
    JoinedFrameCache cache;
    OutboundFrame plain = text("{\"m\":1}");
    WriteQueue first(kLarge, 100), second(kLarge, 100);
    ASSERT_TRUE(first.push(plain));
    ASSERT_TRUE(first.push(withSuffix("{\"m\":2", ",\"did\":1}")));
    ASSERT_TRUE(second.push(plain));
    ASSERT_TRUE(second.push(withSuffix("{\"m\":2", ",\"did\":7}")));
    WriteBuffers one, two;
    first.startBatch(one, &cache);
    second.startBatch(two, &cache);
    EXPECT_EQ(concat(one), "{\"m\":1}\n{\"m\":2,\"did\":1}");
    EXPECT_EQ(concat(two), "{\"m\":1}\n{\"m\":2,\"did\":7}");
}

TEST(WriteQueueTest, TheCacheMatchesPayloadObjectsNotEqualText) {
    // Payloads are compared by identity, and the cache keeps its key's payloads alive, so a new
    // payload can never take an old one's address and be mistaken for it.
    JoinedFrameCache cache;
    WriteQueue first(kLarge, 100), second(kLarge, 100);
    ASSERT_TRUE(first.push(text("x")));
    ASSERT_TRUE(first.push(text("y")));
    WriteBuffers one, two;
    first.startBatch(one, &cache);
    first.finishBatch();  // the queue lets go of its frames; the cache still holds them
    ASSERT_TRUE(second.push(text("x")));
    ASSERT_TRUE(second.push(text("z")));
    second.startBatch(two, &cache);
    EXPECT_EQ(concat(two), "x\nz");
}

}  // namespace
}  // namespace wspush

namespace wspush {
namespace {

// What the shared compression keys on: a batch other connections may have been given as it is.
TEST(WriteQueueTest, TheBatchInFlightIsOneSharedFrameOnlyWhenOthersCanHaveIt) {
    JoinedFrameCache cache;
    WriteBuffers buffers;
    OutboundFrame lone = text("{\"lone\":1}");
    WriteQueue queue(kLarge, 100);
    EXPECT_EQ(queue.inFlightFrame(), nullptr) << "nothing in flight";
    ASSERT_TRUE(queue.push(lone));
    queue.startBatch(buffers, &cache);
    ASSERT_NE(queue.inFlightFrame(), nullptr);
    EXPECT_EQ(queue.inFlightFrame()->get(), lone.payload.get());
    queue.finishBatch();

    ASSERT_TRUE(queue.push(withSuffix("{\"qos\":1", ",\"did\":3}")));
    queue.startBatch(buffers, &cache);
    EXPECT_EQ(queue.inFlightFrame(), nullptr) << "a suffix belongs to one session";
    queue.finishBatch();

    OutboundFrame a = text("{\"a\":1}"), b = text("{\"b\":2}");
    ASSERT_TRUE(queue.push(a));
    ASSERT_TRUE(queue.push(b));
    queue.startBatch(buffers, &cache);
    ASSERT_NE(queue.inFlightFrame(), nullptr);
    EXPECT_EQ(**queue.inFlightFrame(), "{\"a\":1}\n{\"b\":2}");
    EXPECT_EQ(queue.inFlightFrame()->get(),
              cache.find(2, [&](std::size_t i) -> const SharedFrame& { return i == 0 ? a.payload : b.payload; }).get())
        << "the joined batch the cache shares";
    queue.finishBatch();

    ASSERT_TRUE(queue.push(a));
    ASSERT_TRUE(queue.push(withSuffix("{\"qos\":1", ",\"did\":4}")));
    queue.startBatch(buffers, &cache);
    EXPECT_EQ(queue.inFlightFrame(), nullptr) << "joined with a suffix: this connection's own";
}

}  // namespace
}  // namespace wspush
