#include "node/event_loop.h"

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/post.hpp>

namespace wspush {
namespace {

using namespace std::chrono_literals;

PublicationPtr publication(std::uint64_t offset, std::string channel = "news") {
    auto p = std::make_shared<Publication>();
    p->channel = std::move(channel);
    p->offset = offset;
    return p;
}

// Stands for a connection: takes deliveries during a turn and writes them once it ends.
class BatchingSubscriber : public Subscriber,
                           public DeferredWriter,
                           public std::enable_shared_from_this<BatchingSubscriber> {
public:
    explicit BatchingSubscriber(EventLoop& loop) : loop_(loop) {}

    void deliver(const PublicationPtr& publication, const SharedFrame&) override {
        pending_.push_back(publication->offset);
        if (!loop_.delivering()) return flushDeferred();
        if (flushQueued_) return;
        flushQueued_ = true;
        loop_.flushAfterDeliveries(shared_from_this());
    }
    void lost(const std::string&) override { ADD_FAILURE() << "no gap expected"; }
    void flushDeferred() override {
        flushQueued_ = false;
        writes.push_back(std::move(pending_));
        pending_.clear();
        flushes.store(writes.size());
        if (writes.size() == expectedWrites) done.set_value();
    }

    std::vector<std::vector<std::uint64_t>> writes;  // offsets per "write"
    std::size_t expectedWrites = 1;
    std::atomic<std::size_t> flushes{0};
    std::promise<void> done;

private:
    EventLoop& loop_;
    std::vector<std::uint64_t> pending_;
    bool flushQueued_ = false;
};

TEST(EventLoopTest, AnIdleLoopDeliversAtOnceABusyOneGathersTheWindowIntoOneTurn) {
    EventLoop loop(0);
    loop.setDeliveryWindow(500ms);
    auto subscriber = std::make_shared<BatchingSubscriber>(loop);
    subscriber->expectedWrites = 2;
    loop.hub().add("news", subscriber.get());
    loop.hub().goLive("news", subscriber.get(), StreamPosition{0, ""});
    loop.start();
    auto frame = std::make_shared<const std::string>("{}");

    // Idle: no waiting for a window.
    auto start = std::chrono::steady_clock::now();
    loop.deliverSoon(publication(1), frame);
    while (subscriber->flushes.load() < 1 && std::chrono::steady_clock::now() - start < 5s)
        std::this_thread::sleep_for(1ms);
    ASSERT_EQ(subscriber->flushes.load(), 1u);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 400ms);

    // Busy (a turn just ended): what arrives within the window is one turn and one write.
    for (std::uint64_t offset = 2; offset <= 17; ++offset) loop.deliverSoon(publication(offset), frame);
    ASSERT_EQ(subscriber->done.get_future().wait_for(5s), std::future_status::ready);
    loop.stop();
    loop.join();
    ASSERT_EQ(subscriber->writes.size(), 2u);
    EXPECT_EQ(subscriber->writes[0], std::vector<std::uint64_t>{1});
    std::vector<std::uint64_t> burst;
    for (std::uint64_t i = 2; i <= 17; ++i) burst.push_back(i);
    EXPECT_EQ(subscriber->writes[1], burst);  // in order, one write
}

TEST(EventLoopTest, WithoutAWindowEachTurnStillFlushesOnceAndKeepsOrder) {
    EventLoop loop(0);
    auto subscriber = std::make_shared<BatchingSubscriber>(loop);
    subscriber->expectedWrites = 0;  // counted below instead
    loop.hub().add("news", subscriber.get());
    loop.hub().goLive("news", subscriber.get(), StreamPosition{0, ""});
    loop.start();

    auto frame = std::make_shared<const std::string>("{}");
    for (std::uint64_t offset = 1; offset <= 100; ++offset) loop.deliverSoon(publication(offset), frame);
    std::promise<std::vector<std::vector<std::uint64_t>>> result;
    auto deadline = std::chrono::steady_clock::now() + 5s;
    std::function<void()> check = [&] {
        std::size_t delivered = 0;
        for (const auto& write : subscriber->writes) delivered += write.size();
        if (delivered == 100 || std::chrono::steady_clock::now() > deadline)
            return result.set_value(subscriber->writes);
        boost::asio::post(loop.context(), check);
    };
    boost::asio::post(loop.context(), check);
    auto writes = result.get_future().get();
    loop.stop();
    loop.join();

    std::vector<std::uint64_t> seen;
    for (const auto& write : writes) {
        EXPECT_FALSE(write.empty());  // a flush only for a turn that delivered something
        seen.insert(seen.end(), write.begin(), write.end());
    }
    ASSERT_EQ(seen.size(), 100u);
    for (std::uint64_t i = 0; i < 100; ++i) EXPECT_EQ(seen[i], i + 1);
}

}  // namespace
}  // namespace wspush

namespace wspush {
namespace {

TEST(EventLoopTest, AWindowThatDoesNotPayOffIsDroppedForAWhile) {
    // One subscriber per channel: a windowed turn gives each connection one message, so waiting
    // bought nothing, and the busy loop then delivers at once.
    EventLoop loop(0);
    loop.setDeliveryWindow(300ms);
    std::vector<std::shared_ptr<BatchingSubscriber>> subscribers;
    for (int c = 0; c < 4; ++c) {
        subscribers.push_back(std::make_shared<BatchingSubscriber>(loop));
        subscribers.back()->expectedWrites = 0;
        loop.hub().add("ch" + std::to_string(c), subscribers.back().get());
        loop.hub().goLive("ch" + std::to_string(c), subscribers.back().get(), StreamPosition{0, ""});
    }
    loop.start();
    auto frame = std::make_shared<const std::string>("{}");
    auto on = [](int channel, std::uint64_t offset) { return publication(offset, "ch" + std::to_string(channel)); };
    auto waitFor = [&](int channel, std::size_t writes) {
        auto deadline = std::chrono::steady_clock::now() + 5s;
        while (subscribers[channel]->flushes.load() < writes && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(1ms);
        return subscribers[channel]->flushes.load() >= writes;
    };

    loop.deliverSoon(on(0, 1), frame);  // idle: at once
    ASSERT_TRUE(waitFor(0, 1));
    auto windowed = std::chrono::steady_clock::now();
    for (int c = 1; c < 4; ++c) loop.deliverSoon(on(c, 1), frame);  // busy: waits for the window
    ASSERT_TRUE(waitFor(3, 1));
    EXPECT_GE(std::chrono::steady_clock::now() - windowed, 250ms);

    auto after = std::chrono::steady_clock::now();
    loop.deliverSoon(on(0, 2), frame);  // busy, but the window did not pay off: at once
    ASSERT_TRUE(waitFor(0, 2));
    EXPECT_LT(std::chrono::steady_clock::now() - after, 200ms);
    loop.stop();
    loop.join();
}

// Stands for a connection at shutdown: records when it was told to go, and leaves the loop when
// told, as a real one does once closed.
class DrainedConnection final : public Connection {
public:
    DrainedConnection(EventLoop& loop, bool webSocket) : loop_(loop), webSocket_(webSocket) { loop_.attach(this); }
    void drain() override {
        drainedAt = std::chrono::steady_clock::now();
        loop_.detach(this);
    }
    bool isWebSocket() const override { return webSocket_; }
    void disconnect(const DisconnectTarget&) override {}
    std::optional<std::chrono::steady_clock::time_point> drainedAt;

private:
    EventLoop& loop_;
    bool webSocket_;
};

std::size_t drainedCount(const std::vector<std::unique_ptr<DrainedConnection>>& connections) {
    std::size_t count = 0;
    for (const auto& connection : connections) count += connection->drainedAt.has_value();
    return count;
}

// Runs the loop's handlers on this thread until `done` or `limit`.
template <class Done>
void runUntil(EventLoop& loop, Done done, std::chrono::milliseconds limit) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < until) {
        loop.context().run_for(5ms);
        loop.context().restart();
    }
}

TEST(EventLoopTest, ADrainTellsWebSocketsAtItsRateAndEverythingElseAtOnce) {
    EventLoop loop(0);
    std::vector<std::unique_ptr<DrainedConnection>> webSockets, http;
    for (int i = 0; i < 20; ++i) webSockets.push_back(std::make_unique<DrainedConnection>(loop, true));
    for (int i = 0; i < 3; ++i) http.push_back(std::make_unique<DrainedConnection>(loop, false));

    auto start = std::chrono::steady_clock::now();
    loop.drainConnections(50, start + 10s);  // 20 connections at 50/s: 0.4 s, well within the deadline
    EXPECT_EQ(drainedCount(http), 3u) << "HTTP connections wait for nothing";
    EXPECT_EQ(drainedCount(webSockets), 1u) << "one at once, the rest at the rate";

    runUntil(
        loop, [&] { return drainedCount(webSockets) == webSockets.size(); }, 3000ms);
    ASSERT_EQ(drainedCount(webSockets), webSockets.size());
    auto last = *webSockets.back()->drainedAt;
    for (const auto& connection : webSockets) last = std::max(last, *connection->drainedAt);
    // 19 more at 50/s take 380 ms; a loop that told everyone at once would take none.
    EXPECT_GE(last - start, 300ms) << "not paced";
    EXPECT_LT(last - start, 2000ms);
}

TEST(EventLoopTest, ADrainGoesFasterThanItsRateToTellEveryoneByTheDeadline) {
    EventLoop loop(0);
    std::vector<std::unique_ptr<DrainedConnection>> webSockets;
    for (int i = 0; i < 20; ++i) webSockets.push_back(std::make_unique<DrainedConnection>(loop, true));

    auto start = std::chrono::steady_clock::now();
    loop.drainConnections(1, start + 300ms);  // 1/s would take 20 s
    runUntil(
        loop, [&] { return drainedCount(webSockets) == webSockets.size(); }, 3000ms);
    ASSERT_EQ(drainedCount(webSockets), webSockets.size());
    auto last = start;
    for (const auto& connection : webSockets) last = std::max(last, *connection->drainedAt);
    EXPECT_GE(last - start, 150ms) << "not paced at all";
    EXPECT_LT(last - start, 1000ms) << "missed the deadline";
}

TEST(EventLoopTest, ADrainWithRateZeroOrAPassedDeadlineTellsEveryoneAtOnce) {
    for (auto [rate, deadline] : {std::pair{0.0, 10s}, std::pair{50.0, 0s}}) {
        EventLoop loop(0);
        std::vector<std::unique_ptr<DrainedConnection>> webSockets;
        for (int i = 0; i < 5; ++i) webSockets.push_back(std::make_unique<DrainedConnection>(loop, true));
        loop.drainConnections(rate, std::chrono::steady_clock::now() + deadline);
        EXPECT_EQ(drainedCount(webSockets), webSockets.size()) << "rate " << rate;
    }
}

TEST(EventLoopTest, AConnectionAttachedDuringADrainIsDrainedToo) {
    EventLoop loop(0);
    std::vector<std::unique_ptr<DrainedConnection>> webSockets;
    for (int i = 0; i < 3; ++i) webSockets.push_back(std::make_unique<DrainedConnection>(loop, true));
    loop.drainConnections(100, std::chrono::steady_clock::now() + 10s);
    // An HTTP connection upgraded after the drain began: its WebSocket side is new to the loop.
    webSockets.push_back(std::make_unique<DrainedConnection>(loop, true));
    runUntil(
        loop, [&] { return drainedCount(webSockets) == webSockets.size(); }, 3000ms);
    EXPECT_EQ(drainedCount(webSockets), webSockets.size());
}

}  // namespace
}  // namespace wspush
