#include "node/idempotency_cache.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace wspush {
namespace {

using namespace std::chrono_literals;
using Cache = IdempotencyCache;
using Outcome = Cache::Outcome;

// A clock the test moves by hand.
struct ManualClock {
    Cache::TimePoint now = Cache::TimePoint{} + 1h;
    Cache::Clock function() {
        return [this] { return now; };
    }
};

Cache::Response response(std::string body, unsigned status = 200) {
    return Cache::Response{status, "application/json", std::move(body)};
}

// Records what a waiter received.
struct Received {
    int calls = 0;
    Cache::Response response;
    Cache::Waiter waiter() {
        return [this](const Cache::Response& r) {
            ++calls;
            response = r;
        };
    }
};

Cache::Waiter ignore() {
    return [](const Cache::Response&) { FAIL() << "this waiter must not be called"; };
}

class IdempotencyCacheTest : public ::testing::Test {
protected:
    ManualClock clock;
    Cache cache{600s, 100, clock.function()};
    const Cache::Fingerprint a = Cache::fingerprint(R"({"channel":"news","data":1})");
    const Cache::Fingerprint b = Cache::fingerprint(R"({"channel":"news","data":2})");
};

TEST(IdempotencyFingerprintTest, IsTheSha256OfTheBytes) {
    // SHA-256("abc") from FIPS 180-2.
    const Cache::Fingerprint expected{0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
                                      0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
                                      0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    EXPECT_EQ(Cache::fingerprint("abc"), expected);
    EXPECT_NE(Cache::fingerprint(R"({"a":1})"), Cache::fingerprint(R"({ "a":1})")) << "byte-identical, not JSON-equal";
    EXPECT_NE(Cache::fingerprint(""), Cache::fingerprint(std::string(1, '\0')));
}

TEST_F(IdempotencyCacheTest, NewKeyProceedsThenTheSameBodyReplays) {
    EXPECT_EQ(cache.begin("/api/publish", "k1", a, ignore()).outcome, Outcome::Proceed);
    EXPECT_EQ(cache.inFlight(), 1u);
    cache.complete("/api/publish", "k1", response(R"({"offset":1})"));
    EXPECT_EQ(cache.inFlight(), 0u);
    EXPECT_EQ(cache.size(), 1u);

    auto replay = cache.begin("/api/publish", "k1", a, ignore());
    EXPECT_EQ(replay.outcome, Outcome::Replay);
    EXPECT_EQ(replay.response, response(R"({"offset":1})"));
    // Replays do not extend or consume anything.
    EXPECT_EQ(cache.begin("/api/publish", "k1", a, ignore()).outcome, Outcome::Replay);
    EXPECT_EQ(cache.size(), 1u);
}

TEST_F(IdempotencyCacheTest, DifferentBodyConflictsWhetherCompletedOrInFlight) {
    ASSERT_EQ(cache.begin("/api/publish", "k1", a, ignore()).outcome, Outcome::Proceed);
    EXPECT_EQ(cache.begin("/api/publish", "k1", b, ignore()).outcome, Outcome::Conflict) << "in flight";
    cache.complete("/api/publish", "k1", response("r"));
    EXPECT_EQ(cache.begin("/api/publish", "k1", b, ignore()).outcome, Outcome::Conflict) << "completed";
    EXPECT_EQ(cache.begin("/api/publish", "k1", a, ignore()).outcome, Outcome::Replay)
        << "the conflict changed nothing";
}

TEST_F(IdempotencyCacheTest, ScopesAndKeysAreSeparate) {
    EXPECT_EQ(cache.begin("/api/publish", "k1", a, ignore()).outcome, Outcome::Proceed);
    EXPECT_EQ(cache.begin("/api/broadcast", "k1", b, ignore()).outcome, Outcome::Proceed);
    EXPECT_EQ(cache.begin("/api/publish", "k2", b, ignore()).outcome, Outcome::Proceed);
    EXPECT_EQ(cache.begin("/api/publish", "K1", b, ignore()).outcome, Outcome::Proceed) << "keys are case-sensitive";
    // "scope\nkey" must not be confusable across the separator.
    EXPECT_EQ(cache.begin("/api/publish\nk", "1", b, ignore()).outcome, Outcome::Proceed);
    EXPECT_EQ(cache.size(), 5u);
}

TEST_F(IdempotencyCacheTest, WaitersGetTheCompletedResponse) {
    Received first, second;
    ASSERT_EQ(cache.begin("/api/publish", "k1", a, ignore()).outcome, Outcome::Proceed);
    EXPECT_EQ(cache.begin("/api/publish", "k1", a, first.waiter()).outcome, Outcome::Wait);
    EXPECT_EQ(cache.begin("/api/publish", "k1", a, second.waiter()).outcome, Outcome::Wait);
    EXPECT_EQ(first.calls, 0);
    cache.complete("/api/publish", "k1", response("done"));
    EXPECT_EQ(first.calls, 1);
    EXPECT_EQ(second.calls, 1);
    EXPECT_EQ(first.response, response("done"));
    EXPECT_EQ(second.response, response("done"));
    EXPECT_EQ(cache.begin("/api/publish", "k1", a, ignore()).outcome, Outcome::Replay);
}

TEST_F(IdempotencyCacheTest, AbandonHandsTheFailureToWaitersAndReleasesTheKey) {
    Received waiter;
    ASSERT_EQ(cache.begin("/api/publish", "k1", a, ignore()).outcome, Outcome::Proceed);
    ASSERT_EQ(cache.begin("/api/publish", "k1", a, waiter.waiter()).outcome, Outcome::Wait);
    cache.abandon("/api/publish", "k1", response("failed", 500));
    EXPECT_EQ(waiter.calls, 1);
    EXPECT_EQ(waiter.response, response("failed", 500));
    EXPECT_EQ(cache.size(), 0u);
    // A retry proceeds, with any body: nothing was remembered.
    EXPECT_EQ(cache.begin("/api/publish", "k1", b, ignore()).outcome, Outcome::Proceed);
}

TEST_F(IdempotencyCacheTest, CompletedEntriesExpireAfterTheWindow) {
    ASSERT_EQ(cache.begin("/api/publish", "k1", a, ignore()).outcome, Outcome::Proceed);
    clock.now += 30s;  // the window counts from completion
    cache.complete("/api/publish", "k1", response("r"));
    clock.now += 599s;
    EXPECT_EQ(cache.begin("/api/publish", "k1", a, ignore()).outcome, Outcome::Replay);
    EXPECT_EQ(cache.begin("/api/publish", "k1", b, ignore()).outcome, Outcome::Conflict);
    clock.now += 1s;  // exactly the window: gone
    EXPECT_EQ(cache.begin("/api/publish", "k1", b, ignore()).outcome, Outcome::Proceed);
    EXPECT_EQ(cache.size(), 1u);
}

TEST_F(IdempotencyCacheTest, ExpiryIsLazyAndDropsEveryExpiredEntry) {
    for (int i = 0; i < 10; ++i) {
        // Not "k" + std::to_string(i): GCC 12 at -O3 reports a false -Wrestrict in that operator+.
        std::string key = std::string("k").append(std::to_string(i));
        ASSERT_EQ(cache.begin("/api/publish", key, a, ignore()).outcome, Outcome::Proceed);
        cache.complete("/api/publish", key, response(key));
        clock.now += 10s;
    }
    EXPECT_EQ(cache.size(), 10u);
    // k<i> completed at t0 + 10 s * i and the clock is at t0 + 100 s: at t0 + 645 s, k0..k4
    // completed at least 600 s ago and k5..k9 did not.
    clock.now += 545s;
    EXPECT_EQ(cache.size(), 10u) << "nothing is dropped until the cache is used";
    EXPECT_EQ(cache.begin("/api/publish", "other", a, ignore()).outcome, Outcome::Proceed);
    EXPECT_EQ(cache.size(), 6u);
    EXPECT_EQ(cache.begin("/api/publish", "k5", a, ignore()).outcome, Outcome::Replay);
}

TEST_F(IdempotencyCacheTest, InFlightEntriesNeverExpire) {
    Received waiter;
    ASSERT_EQ(cache.begin("/api/publish", "slow", a, ignore()).outcome, Outcome::Proceed);
    clock.now += 24h;
    EXPECT_EQ(cache.begin("/api/publish", "slow", a, waiter.waiter()).outcome, Outcome::Wait);
    EXPECT_EQ(cache.begin("/api/publish", "slow", b, ignore()).outcome, Outcome::Conflict);
    cache.complete("/api/publish", "slow", response("late"));
    EXPECT_EQ(waiter.calls, 1);
    EXPECT_EQ(cache.begin("/api/publish", "slow", a, ignore()).outcome, Outcome::Replay) << "the window starts now";
}

TEST(IdempotencyCacheCapTest, EvictsTheOldestCompletedFirst) {
    ManualClock clock;
    Cache cache(600s, 3, clock.function());
    auto fp = Cache::fingerprint("x");
    for (std::string key : {"k1", "k2", "k3"}) {
        ASSERT_EQ(cache.begin("s", key, fp, ignore()).outcome, Outcome::Proceed);
        cache.complete("s", key, response(key));
        clock.now += 1s;
    }
    EXPECT_EQ(cache.size(), 3u);
    // A replay is not a use that keeps an entry: eviction is by completion order.
    EXPECT_EQ(cache.begin("s", "k1", fp, ignore()).outcome, Outcome::Replay);

    ASSERT_EQ(cache.begin("s", "k4", fp, ignore()).outcome, Outcome::Proceed);
    EXPECT_EQ(cache.size(), 3u);
    EXPECT_EQ(cache.begin("s", "k2", fp, ignore()).outcome, Outcome::Replay);
    EXPECT_EQ(cache.begin("s", "k3", fp, ignore()).outcome, Outcome::Replay);
    // k1 was evicted: it is new again (and that evicts k2, the oldest completed).
    EXPECT_EQ(cache.begin("s", "k1", Cache::fingerprint("other"), ignore()).outcome, Outcome::Proceed);
    EXPECT_EQ(cache.size(), 3u);
    EXPECT_EQ(cache.begin("s", "k3", fp, ignore()).outcome, Outcome::Replay);
    EXPECT_EQ(cache.begin("s", "k2", Cache::fingerprint("other"), ignore()).outcome, Outcome::Proceed)
        << "k2 was evicted";
}

TEST(IdempotencyCacheCapTest, InFlightEntriesAreNeverEvicted) {
    ManualClock clock;
    Cache cache(600s, 2, clock.function());
    auto fp = Cache::fingerprint("x");
    ASSERT_EQ(cache.begin("s", "done", fp, ignore()).outcome, Outcome::Proceed);
    cache.complete("s", "done", response("d"));
    ASSERT_EQ(cache.begin("s", "f1", fp, ignore()).outcome, Outcome::Proceed);
    ASSERT_EQ(cache.begin("s", "f2", fp, ignore()).outcome, Outcome::Proceed);  // evicts "done"
    ASSERT_EQ(cache.begin("s", "f3", fp, ignore()).outcome, Outcome::Proceed);  // nothing to evict: over the cap
    EXPECT_EQ(cache.size(), 3u);
    EXPECT_EQ(cache.inFlight(), 3u);

    Received waiter;
    EXPECT_EQ(cache.begin("s", "f1", fp, waiter.waiter()).outcome, Outcome::Wait) << "still in flight";
    EXPECT_EQ(cache.begin("s", "f2", Cache::fingerprint("y"), ignore()).outcome, Outcome::Conflict);
    EXPECT_EQ(cache.begin("s", "done", Cache::fingerprint("y"), ignore()).outcome, Outcome::Proceed) << "evicted";
    cache.abandon("s", "done", response("", 500));
    EXPECT_EQ(cache.size(), 3u);

    // Completing brings the cache back under its cap; waiters still get the response.
    cache.complete("s", "f1", response("one"));
    EXPECT_EQ(waiter.calls, 1);
    EXPECT_EQ(waiter.response, response("one"));
    EXPECT_EQ(cache.size(), 2u) << "f1 completed over the cap and was evicted at once";
    cache.complete("s", "f2", response("two"));
    cache.complete("s", "f3", response("three"));
    EXPECT_EQ(cache.size(), 2u);
    EXPECT_EQ(cache.begin("s", "f2", fp, ignore()).outcome, Outcome::Replay);
    EXPECT_EQ(cache.begin("s", "f3", fp, ignore()).outcome, Outcome::Replay);
}

TEST(IdempotencyCacheClockTest, DefaultsToTheSteadyClock) {
    Cache cache(std::chrono::milliseconds(50), 10);
    auto fp = Cache::fingerprint("x");
    ASSERT_EQ(cache.begin("s", "k", fp, ignore()).outcome, Outcome::Proceed);
    cache.complete("s", "k", response("r"));
    EXPECT_EQ(cache.begin("s", "k", fp, ignore()).outcome, Outcome::Replay);
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    EXPECT_EQ(cache.begin("s", "k", fp, ignore()).outcome, Outcome::Proceed);
}

TEST(IdempotencyCacheThreadsTest, ManyThreadsOnOneKeyGetExactlyOneProceed) {
    for (int round = 0; round < 20; ++round) {
        Cache cache(600s, 1000);
        const auto fp = Cache::fingerprint("body");
        constexpr int kThreads = 8;
        constexpr int kPerThread = 50;
        std::atomic<int> proceeds{0}, replays{0}, waits{0}, conflicts{0}, waiterCalls{0};
        std::atomic<bool> go{false};
        std::vector<std::thread> threads;
        for (int t = 0; t < kThreads; ++t) {
            threads.emplace_back([&, t] {
                while (!go.load()) std::this_thread::yield();
                for (int i = 0; i < kPerThread; ++i) {
                    auto result = cache.begin("/api/publish", "shared", fp, [&](const Cache::Response& r) {
                        EXPECT_EQ(r.body, "the one");
                        ++waiterCalls;
                    });
                    switch (result.outcome) {
                        case Outcome::Proceed:
                            ++proceeds;
                            if (t % 2 == 0) std::this_thread::yield();
                            cache.complete("/api/publish", "shared", response("the one"));
                            break;
                        case Outcome::Replay:
                            EXPECT_EQ(result.response.body, "the one");
                            ++replays;
                            break;
                        case Outcome::Wait: ++waits; break;
                        case Outcome::Conflict: ++conflicts; break;
                    }
                }
            });
        }
        go = true;
        for (auto& thread : threads) thread.join();
        EXPECT_EQ(proceeds.load(), 1);
        EXPECT_EQ(conflicts.load(), 0);
        EXPECT_EQ(proceeds + replays + waits, kThreads * kPerThread);
        EXPECT_EQ(waiterCalls.load(), waits.load()) << "every waiter is called exactly once";
        EXPECT_EQ(cache.size(), 1u);
        EXPECT_EQ(cache.inFlight(), 0u);
    }
}

TEST(IdempotencyCacheThreadsTest, ManyKeysUnderACapStayBounded) {
    Cache cache(600s, 64);
    constexpr int kThreads = 4;
    std::vector<std::thread> threads;
    std::atomic<int> proceeds{0};
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 2000; ++i) {
                std::string key = std::to_string(t) + "-" + std::to_string(i % 500);
                auto fp = Cache::fingerprint(key);
                auto result = cache.begin("s", key, fp, [](const Cache::Response&) {});
                if (result.outcome == Outcome::Proceed) {
                    ++proceeds;
                    cache.complete("s", key, response(key));
                }
                EXPECT_NE(result.outcome, Outcome::Conflict);
            }
        });
    }
    for (auto& thread : threads) thread.join();
    EXPECT_LE(cache.size(), 64u);
    EXPECT_EQ(cache.inFlight(), 0u);
    EXPECT_GE(proceeds.load(), kThreads * 500);
}

}  // namespace
}  // namespace wspush
