#include "session/qos_tracker.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace wspush {

// Readable names in gtest failure messages (internal linkage, found by ADL).
static const char* name(DeliveryState s) {
    switch (s) {
        case DeliveryState::Free: return "Free";
        case DeliveryState::AwaitingAck: return "AwaitingAck";
        case DeliveryState::AwaitingRec: return "AwaitingRec";
        case DeliveryState::AwaitingComp: return "AwaitingComp";
    }
    return "?";
}
static const char* name(QosOutcome o) {
    switch (o) {
        case QosOutcome::Completed: return "Completed";
        case QosOutcome::SendRel: return "SendRel";
        case QosOutcome::Ignored: return "Ignored";
        case QosOutcome::ProtocolError: return "ProtocolError";
    }
    return "?";
}
[[maybe_unused]] static void PrintTo(DeliveryState s, std::ostream* os) {
    *os << name(s);
}
[[maybe_unused]] static void PrintTo(QosOutcome o, std::ostream* os) {
    *os << name(o);
}

namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using Tracker = QosTracker<int>;
using TimePoint = Tracker::TimePoint;

const TimePoint kT0 = std::chrono::steady_clock::time_point{};
TimePoint at(milliseconds offset) {
    return kT0 + offset;
}

constexpr DeliveryId kHugeDid = std::numeric_limits<DeliveryId>::max();

// One observed resend, with the message copied out (the pointer is only valid during the call).
struct Sent {
    DeliveryId did;
    DeliveryState state;
    bool hasMessage;
    int message;
};

std::vector<Sent> resendDue(Tracker& tracker, TimePoint now, bool* healthy = nullptr) {
    std::vector<Sent> sent;
    bool ok = tracker.resendDue(now, [&](const Tracker::Resend& r) {
        sent.push_back({r.did, r.state, r.message != nullptr, r.message != nullptr ? *r.message : 0});
    });
    if (healthy != nullptr) *healthy = ok;
    return sent;
}

std::vector<Sent> resendAll(Tracker& tracker, TimePoint now) {
    std::vector<Sent> sent;
    tracker.resendAll(now, [&](const Tracker::Resend& r) {
        sent.push_back({r.did, r.state, r.message != nullptr, r.message != nullptr ? *r.message : 0});
    });
    return sent;
}

std::vector<std::pair<DeliveryId, int>> unfinished(const Tracker& tracker) {
    std::vector<std::pair<DeliveryId, int>> out;
    tracker.forEachUnfinished([&](DeliveryId did, const int& message) { out.emplace_back(did, message); });
    return out;
}

std::vector<DeliveryId> dids(const std::vector<Sent>& sent) {
    std::vector<DeliveryId> out;
    for (const Sent& s : sent) out.push_back(s.did);
    return out;
}

// ---------------------------------------------------------------------------------------------
// 1. Every state × every input.

enum class Start {
    AwaitingAck,          // QoS 1, just sent
    AwaitingRec,          // QoS 2, just sent
    AwaitingComp,         // QoS 2, rec received, rel sent
    Finished,             // completed; an older delivery is still open, so the did is inside the window
    FinishedBelowWindow,  // completed, and every older delivery too: the did is below the window
    NeverIssued,          // the next did, not yet issued
    DidZero,              // 0 never names a delivery
    HugeDid,              // far beyond anything issued
};

enum class Input { Ack, Rec, Comp, TickEarly, TickDue };

// What the input produced: an outcome for ack/rec/comp, whether the subject was resent for a tick.
enum class Result { Completed, SendRel, Ignored, ProtocolError, NotResent, ResentMessage, ResentRel };

struct Row {
    int qos;  // of the subject delivery; 0 when none is issued
    Start start;
    Input input;
    Result result;
    DeliveryState after;  // stateOf(subject) afterwards
};

const char* name(Start s) {
    switch (s) {
        case Start::AwaitingAck: return "AwaitingAck";
        case Start::AwaitingRec: return "AwaitingRec";
        case Start::AwaitingComp: return "AwaitingComp";
        case Start::Finished: return "Finished";
        case Start::FinishedBelowWindow: return "FinishedBelowWindow";
        case Start::NeverIssued: return "NeverIssued";
        case Start::DidZero: return "DidZero";
        case Start::HugeDid: return "HugeDid";
    }
    return "?";
}
const char* name(Input i) {
    switch (i) {
        case Input::Ack: return "ack";
        case Input::Rec: return "rec";
        case Input::Comp: return "comp";
        case Input::TickEarly: return "tick(before due)";
        case Input::TickDue: return "tick(due)";
    }
    return "?";
}
const char* name(Result r) {
    switch (r) {
        case Result::Completed: return "Completed";
        case Result::SendRel: return "SendRel";
        case Result::Ignored: return "Ignored";
        case Result::ProtocolError: return "ProtocolError";
        case Result::NotResent: return "NotResent";
        case Result::ResentMessage: return "ResentMessage";
        case Result::ResentRel: return "ResentRel";
    }
    return "?";
}

Result toResult(QosOutcome o) {
    switch (o) {
        case QosOutcome::Completed: return Result::Completed;
        case QosOutcome::SendRel: return Result::SendRel;
        case QosOutcome::Ignored: return Result::Ignored;
        case QosOutcome::ProtocolError: return Result::ProtocolError;
    }
    return Result::NotResent;
}

using S = Start;
using I = Input;
using R = Result;
using D = DeliveryState;

// clang-format off
const Row kTransitions[] = {
    // QoS 1, awaiting its ack.
    {1, S::AwaitingAck, I::Ack,       R::Completed,     D::Free},
    {1, S::AwaitingAck, I::Rec,       R::ProtocolError, D::AwaitingAck},   // rec on QoS 1: still awaits its ack
    {1, S::AwaitingAck, I::Comp,      R::ProtocolError, D::AwaitingAck},
    {1, S::AwaitingAck, I::TickEarly, R::NotResent,     D::AwaitingAck},
    {1, S::AwaitingAck, I::TickDue,   R::ResentMessage, D::AwaitingAck},
    // QoS 1, finished (did inside the window).
    {1, S::Finished, I::Ack,       R::Ignored,   D::Free},                 // duplicate ack
    {1, S::Finished, I::Rec,       R::Ignored,   D::Free},
    {1, S::Finished, I::Comp,      R::Ignored,   D::Free},
    {1, S::Finished, I::TickEarly, R::NotResent, D::Free},
    {1, S::Finished, I::TickDue,   R::NotResent, D::Free},
    // QoS 1, finished (did below the window).
    {1, S::FinishedBelowWindow, I::Ack,       R::Ignored,   D::Free},
    {1, S::FinishedBelowWindow, I::Rec,       R::Ignored,   D::Free},
    {1, S::FinishedBelowWindow, I::Comp,      R::Ignored,   D::Free},
    {1, S::FinishedBelowWindow, I::TickEarly, R::NotResent, D::Free},
    {1, S::FinishedBelowWindow, I::TickDue,   R::NotResent, D::Free},
    // QoS 2, awaiting rec.
    {2, S::AwaitingRec, I::Ack,       R::ProtocolError, D::AwaitingRec},   // ack on QoS 2
    {2, S::AwaitingRec, I::Rec,       R::SendRel,       D::AwaitingComp},
    {2, S::AwaitingRec, I::Comp,      R::ProtocolError, D::AwaitingRec},   // comp before rec: unchanged
    {2, S::AwaitingRec, I::TickEarly, R::NotResent,     D::AwaitingRec},
    {2, S::AwaitingRec, I::TickDue,   R::ResentMessage, D::AwaitingRec},
    // QoS 2, awaiting comp (rel sent).
    {2, S::AwaitingComp, I::Ack,       R::ProtocolError, D::AwaitingComp},
    {2, S::AwaitingComp, I::Rec,       R::SendRel,       D::AwaitingComp}, // repeated rec: rel again
    {2, S::AwaitingComp, I::Comp,      R::Completed,     D::Free},
    {2, S::AwaitingComp, I::TickEarly, R::NotResent,     D::AwaitingComp},
    {2, S::AwaitingComp, I::TickDue,   R::ResentRel,     D::AwaitingComp},
    // QoS 2, finished (did inside the window).
    {2, S::Finished, I::Ack,       R::Ignored,   D::Free},
    {2, S::Finished, I::Rec,       R::Ignored,   D::Free},
    {2, S::Finished, I::Comp,      R::Ignored,   D::Free},                 // duplicate comp
    {2, S::Finished, I::TickEarly, R::NotResent, D::Free},
    {2, S::Finished, I::TickDue,   R::NotResent, D::Free},
    // QoS 2, finished (did below the window).
    {2, S::FinishedBelowWindow, I::Ack,       R::Ignored,   D::Free},
    {2, S::FinishedBelowWindow, I::Rec,       R::Ignored,   D::Free},
    {2, S::FinishedBelowWindow, I::Comp,      R::Ignored,   D::Free},
    {2, S::FinishedBelowWindow, I::TickEarly, R::NotResent, D::Free},
    {2, S::FinishedBelowWindow, I::TickDue,   R::NotResent, D::Free},
    // Never issued: the next did, 0, and a huge one.
    {0, S::NeverIssued, I::Ack,       R::Ignored,   D::Free},
    {0, S::NeverIssued, I::Rec,       R::Ignored,   D::Free},
    {0, S::NeverIssued, I::Comp,      R::Ignored,   D::Free},
    {0, S::NeverIssued, I::TickEarly, R::NotResent, D::Free},
    {0, S::NeverIssued, I::TickDue,   R::NotResent, D::Free},
    {0, S::DidZero, I::Ack,       R::Ignored,   D::Free},
    {0, S::DidZero, I::Rec,       R::Ignored,   D::Free},
    {0, S::DidZero, I::Comp,      R::Ignored,   D::Free},
    {0, S::DidZero, I::TickEarly, R::NotResent, D::Free},
    {0, S::DidZero, I::TickDue,   R::NotResent, D::Free},
    {0, S::HugeDid, I::Ack,       R::Ignored,   D::Free},
    {0, S::HugeDid, I::Rec,       R::Ignored,   D::Free},
    {0, S::HugeDid, I::Comp,      R::Ignored,   D::Free},
    {0, S::HugeDid, I::TickEarly, R::NotResent, D::Free},
    {0, S::HugeDid, I::TickDue,   R::NotResent, D::Free},
};
// clang-format on

constexpr int kSubjectMessage = 42;
constexpr int kNeighbourMessage = 7;

TEST(QosTrackerTransitions, EveryStateTimesEveryInput) {
    const QosTimings timings{100ms, 1000ms, 3};
    for (const Row& row : kTransitions) {
        std::ostringstream label;
        label << "QoS " << row.qos << ", " << name(row.start) << " + " << name(row.input) << " -> " << name(row.result)
              << ", " << name(row.after);
        SCOPED_TRACE(label.str());

        Tracker tracker(8, timings);
        // An unrelated QoS 1 delivery that no input may disturb.
        DeliveryId neighbour = tracker.track(kNeighbourMessage, 1, kT0);
        DeliveryId did = 0;
        switch (row.start) {
            case S::AwaitingAck:
            case S::AwaitingRec: did = tracker.track(kSubjectMessage, row.qos, kT0); break;
            case S::AwaitingComp:
                did = tracker.track(kSubjectMessage, row.qos, kT0);
                ASSERT_EQ(tracker.onRec(did, kT0), QosOutcome::SendRel);
                break;
            case S::Finished:
            case S::FinishedBelowWindow:
                did = tracker.track(kSubjectMessage, row.qos, kT0);
                if (row.qos == 1) {
                    ASSERT_EQ(tracker.onAck(did), QosOutcome::Completed);
                } else {
                    ASSERT_EQ(tracker.onRec(did, kT0), QosOutcome::SendRel);
                    ASSERT_EQ(tracker.onComp(did), QosOutcome::Completed);
                }
                if (row.start == S::FinishedBelowWindow) {
                    ASSERT_EQ(tracker.onAck(neighbour), QosOutcome::Completed);
                    neighbour = tracker.track(kNeighbourMessage, 1, kT0);
                    ASSERT_GT(neighbour, did);
                }
                break;
            case S::NeverIssued: did = tracker.nextDid(); break;
            case S::DidZero: did = 0; break;
            case S::HugeDid: did = kHugeDid; break;
        }
        const bool subjectIssued = row.qos != 0;

        Result result = Result::NotResent;
        std::vector<Sent> sent;
        bool healthy = true;
        switch (row.input) {
            case I::Ack: result = toResult(tracker.onAck(did)); break;
            case I::Rec: result = toResult(tracker.onRec(did, at(50ms))); break;
            case I::Comp: result = toResult(tracker.onComp(did)); break;
            case I::TickEarly:
            case I::TickDue: {
                sent = resendDue(tracker, row.input == I::TickDue ? at(100ms) : at(99ms), &healthy);
                EXPECT_TRUE(healthy);
                auto it = std::find_if(sent.begin(), sent.end(), [&](const Sent& s) { return s.did == did; });
                if (it == sent.end()) {
                    result = Result::NotResent;
                } else {
                    result = it->hasMessage ? Result::ResentMessage : Result::ResentRel;
                    EXPECT_EQ(it->state, row.after);
                    if (it->hasMessage) {
                        EXPECT_EQ(it->message, kSubjectMessage);
                    }
                }
                break;
            }
        }
        EXPECT_EQ(name(result), std::string(name(row.result)));
        EXPECT_EQ(tracker.stateOf(did), row.after);

        // A tick resends exactly what is due, oldest first; nothing is due before the ack timeout.
        if (row.input == I::TickEarly) {
            EXPECT_TRUE(sent.empty());
        }
        if (row.input == I::TickDue) {
            std::vector<DeliveryId> expected{neighbour};
            if (row.result == R::ResentMessage || row.result == R::ResentRel) expected.push_back(did);
            std::sort(expected.begin(), expected.end());
            EXPECT_EQ(dids(sent), expected);
        }

        // The neighbour is untouched, and the unfinished list matches the subject's new state.
        EXPECT_EQ(tracker.stateOf(neighbour), DeliveryState::AwaitingAck);
        std::vector<std::pair<DeliveryId, int>> expectedUnfinished{{neighbour, kNeighbourMessage}};
        if (subjectIssued && (row.after == D::AwaitingAck || row.after == D::AwaitingRec))
            expectedUnfinished.emplace_back(did, kSubjectMessage);
        std::sort(expectedUnfinished.begin(), expectedUnfinished.end());
        EXPECT_EQ(unfinished(tracker), expectedUnfinished);
        EXPECT_EQ(tracker.inflight(), 1u + (row.after != D::Free ? 1u : 0u));
    }
}

TEST(QosTrackerTransitions, ProtocolErrorsLeaveTheDeliveryIntact) {
    Tracker tracker(4, QosTimings{100ms, 1000ms, 3});
    DeliveryId q1 = tracker.track(10, 1, kT0);
    DeliveryId q2 = tracker.track(20, 2, kT0);
    // Errors in between do not reset the retry timer or lose the message.
    EXPECT_EQ(tracker.onRec(q1, at(50ms)), QosOutcome::ProtocolError);
    EXPECT_EQ(tracker.onComp(q1), QosOutcome::ProtocolError);
    EXPECT_EQ(tracker.onAck(q2), QosOutcome::ProtocolError);
    EXPECT_EQ(tracker.onComp(q2), QosOutcome::ProtocolError);
    EXPECT_EQ(tracker.nextDue(), at(100ms));
    EXPECT_EQ(unfinished(tracker), (std::vector<std::pair<DeliveryId, int>>{{q1, 10}, {q2, 20}}));
    // …and the right inputs still complete them.
    EXPECT_EQ(tracker.onAck(q1), QosOutcome::Completed);
    EXPECT_EQ(tracker.onRec(q2, at(60ms)), QosOutcome::SendRel);
    EXPECT_EQ(tracker.onRec(q2, at(70ms)), QosOutcome::SendRel);
    EXPECT_EQ(tracker.nextDue(), at(160ms));  // a repeated rec is idempotent: the rel timer keeps running
    EXPECT_EQ(tracker.onComp(q2), QosOutcome::Completed);
    EXPECT_EQ(tracker.onComp(q2), QosOutcome::Ignored);
    EXPECT_EQ(tracker.inflight(), 0u);
    EXPECT_EQ(tracker.nextDue(), std::nullopt);
}

// ---------------------------------------------------------------------------------------------
// 2. The window.

TEST(QosTrackerWindow, MaxInflightIsRespected) {
    Tracker tracker(3, QosTimings{});
    EXPECT_TRUE(tracker.hasRoom());
    EXPECT_EQ(tracker.track(1, 1, kT0), 1u);
    EXPECT_EQ(tracker.track(2, 2, kT0), 2u);
    EXPECT_TRUE(tracker.hasRoom());
    EXPECT_EQ(tracker.track(3, 1, kT0), 3u);
    EXPECT_FALSE(tracker.hasRoom());
    EXPECT_EQ(tracker.inflight(), 3u);
    EXPECT_EQ(tracker.nextDid(), 4u);

    Tracker single(0, QosTimings{});  // 0 means 1: a window can always hold one delivery
    EXPECT_TRUE(single.hasRoom());
    DeliveryId did = single.track(1, 2, kT0);
    EXPECT_FALSE(single.hasRoom());
    EXPECT_EQ(single.onRec(did, kT0), QosOutcome::SendRel);
    EXPECT_FALSE(single.hasRoom());  // AwaitingComp still occupies the window
    EXPECT_EQ(single.onComp(did), QosOutcome::Completed);
    EXPECT_TRUE(single.hasRoom());
}

TEST(QosTrackerWindow, OldUnfinishedDeliveryBlocksTheWindow) {
    Tracker tracker(4, QosTimings{});
    for (int i = 1; i <= 4; ++i) tracker.track(i, 1, kT0);
    EXPECT_FALSE(tracker.hasRoom());
    EXPECT_EQ(tracker.onAck(2), QosOutcome::Completed);
    EXPECT_EQ(tracker.onAck(3), QosOutcome::Completed);
    EXPECT_EQ(tracker.onAck(4), QosOutcome::Completed);
    EXPECT_EQ(tracker.inflight(), 1u);
    EXPECT_FALSE(tracker.hasRoom());  // did 1 pins the window's start
    EXPECT_EQ(unfinished(tracker), (std::vector<std::pair<DeliveryId, int>>{{1, 1}}));

    EXPECT_EQ(tracker.onAck(1), QosOutcome::Completed);
    EXPECT_TRUE(tracker.hasRoom());
    EXPECT_EQ(tracker.inflight(), 0u);
    for (int i = 5; i <= 8; ++i) {
        ASSERT_TRUE(tracker.hasRoom());
        EXPECT_EQ(tracker.track(i, 2, kT0), static_cast<DeliveryId>(i));
    }
    EXPECT_FALSE(tracker.hasRoom());
    // Completing a middle one frees nothing; completing the oldest frees up to the next unfinished.
    EXPECT_EQ(tracker.onRec(6, kT0), QosOutcome::SendRel);
    EXPECT_EQ(tracker.onComp(6), QosOutcome::Completed);
    EXPECT_FALSE(tracker.hasRoom());
    EXPECT_EQ(tracker.onRec(5, kT0), QosOutcome::SendRel);
    EXPECT_EQ(tracker.onComp(5), QosOutcome::Completed);
    EXPECT_TRUE(tracker.hasRoom());
    EXPECT_EQ(tracker.track(9, 1, kT0), 9u);
    EXPECT_EQ(tracker.track(10, 1, kT0), 10u);
    EXPECT_FALSE(tracker.hasRoom());  // window is 7..10
}

TEST(QosTrackerWindow, RingGrowsAndWrapsOver100000Deliveries) {
    constexpr std::size_t kMaxInflight = 300;  // not a power of two: the ring grows 8 → … → 512
    constexpr int kDeliveries = 100000;
    Tracker tracker(kMaxInflight, QosTimings{100ms, 1000ms, 3});
    std::mt19937 rng(20240611);
    std::map<DeliveryId, std::pair<int, DeliveryState>> live;  // did → (message, state)
    std::vector<DeliveryId> liveDids;                          // for random picks
    int tracked = 0;
    std::uint64_t steps = 0;

    auto removeLive = [&](std::size_t index) {
        live.erase(liveDids[index]);
        liveDids[index] = liveDids.back();
        liveDids.pop_back();
    };

    while (tracked < kDeliveries || !live.empty()) {
        ++steps;
        const DeliveryId oldest = live.empty() ? tracker.nextDid() : live.begin()->first;
        const bool room = tracker.nextDid() - oldest < kMaxInflight;
        ASSERT_EQ(tracker.hasRoom(), room) << "step " << steps;
        ASSERT_EQ(tracker.inflight(), live.size()) << "step " << steps;

        // Fill while there is room (mostly), otherwise complete a random inflight delivery.
        if (tracked < kDeliveries && room && (liveDids.empty() || rng() % 3 != 0)) {
            int qos = 1 + static_cast<int>(rng() % 2);
            int message = 1000000 + tracked;
            DeliveryId did = tracker.track(message, qos, kT0);
            ASSERT_EQ(did, static_cast<DeliveryId>(tracked + 1));
            live[did] = {message, qos == 1 ? DeliveryState::AwaitingAck : DeliveryState::AwaitingRec};
            liveDids.push_back(did);
            ++tracked;
        } else {
            std::size_t index = rng() % liveDids.size();
            DeliveryId did = liveDids[index];
            auto& [message, state] = live[did];
            ASSERT_EQ(tracker.stateOf(did), state) << "did " << did;
            if (state == DeliveryState::AwaitingAck) {
                ASSERT_EQ(tracker.onAck(did), QosOutcome::Completed);
                removeLive(index);
            } else if (state == DeliveryState::AwaitingRec) {
                ASSERT_EQ(tracker.onRec(did, kT0), QosOutcome::SendRel);
                state = DeliveryState::AwaitingComp;  // stays inflight for a while
            } else {
                ASSERT_EQ(tracker.onComp(did), QosOutcome::Completed);
                ASSERT_EQ(tracker.onComp(did), QosOutcome::Ignored);
                removeLive(index);
            }
        }

        if (steps % 1009 == 0) {
            // A full walk of the ring: every live delivery, in did order, with its state and message.
            std::vector<std::pair<DeliveryId, int>> expectedUnfinished;
            std::vector<Sent> expectedAll;
            for (const auto& [did, entry] : live) {
                if (entry.second != DeliveryState::AwaitingComp) expectedUnfinished.emplace_back(did, entry.first);
                ASSERT_EQ(tracker.stateOf(did), entry.second) << "did " << did;
            }
            ASSERT_EQ(unfinished(tracker), expectedUnfinished) << "step " << steps;
            std::vector<Sent> all = resendAll(tracker, kT0);
            ASSERT_EQ(all.size(), live.size());
            auto it = live.begin();
            for (const Sent& s : all) {
                ASSERT_EQ(s.did, it->first);
                ASSERT_EQ(s.state, it->second.second);
                ASSERT_EQ(s.hasMessage, it->second.second != DeliveryState::AwaitingComp);
                if (s.hasMessage) {
                    ASSERT_EQ(s.message, it->second.first);
                }
                ++it;
            }
            // Dids outside the window and finished ones inside it are unknown.
            ASSERT_EQ(tracker.stateOf(0), DeliveryState::Free);
            ASSERT_EQ(tracker.stateOf(tracker.nextDid()), DeliveryState::Free);
            ASSERT_EQ(tracker.onAck(tracker.nextDid() + kMaxInflight), QosOutcome::Ignored);
        }
    }
    EXPECT_EQ(tracker.nextDid(), static_cast<DeliveryId>(kDeliveries + 1));
    EXPECT_EQ(tracker.inflight(), 0u);
    EXPECT_TRUE(tracker.hasRoom());
    EXPECT_EQ(tracker.nextDue(), std::nullopt);
    EXPECT_TRUE(unfinished(tracker).empty());
}

// ---------------------------------------------------------------------------------------------
// 3. Timing.

// Drives one delivery through its resends and returns the interval before each of them.
std::vector<milliseconds> resendIntervals(QosTimings timings, int qos, bool recFirst) {
    Tracker tracker(1, timings);
    DeliveryId did = tracker.track(5, qos, kT0);
    TimePoint last = kT0;
    if (recFirst) {
        EXPECT_EQ(tracker.onRec(did, kT0), QosOutcome::SendRel);
    }
    std::vector<milliseconds> intervals;
    for (unsigned i = 0; i <= timings.maxRedeliveries; ++i) {
        std::optional<TimePoint> due = tracker.nextDue();
        if (!due) {
            ADD_FAILURE() << "nothing due";
            break;
        }
        bool healthy = false;
        EXPECT_TRUE(resendDue(tracker, *due - 1ms, &healthy).empty()) << "resend " << i;  // a moment early
        EXPECT_TRUE(healthy);
        std::vector<Sent> sent = resendDue(tracker, *due, &healthy);
        if (i == timings.maxRedeliveries) {
            EXPECT_FALSE(healthy);  // due again after maxRedeliveries resends
            EXPECT_TRUE(sent.empty());
            EXPECT_EQ(tracker.stateOf(did), recFirst
                                                ? DeliveryState::AwaitingComp
                                                : (qos == 1 ? DeliveryState::AwaitingAck : DeliveryState::AwaitingRec));
            EXPECT_EQ(tracker.nextDue(), due);  // an unhealthy delivery stays, unchanged
            break;
        }
        EXPECT_TRUE(healthy);
        EXPECT_EQ(dids(sent), std::vector<DeliveryId>{did});
        intervals.push_back(std::chrono::duration_cast<milliseconds>(*due - last));
        last = *due;
    }
    return intervals;
}

TEST(QosTrackerTiming, BackoffDoublesUpToTheCap) {
    using V = std::vector<milliseconds>;
    EXPECT_EQ(resendIntervals(QosTimings{100ms, 1000ms, 7}, 1, false),
              (V{100ms, 200ms, 400ms, 800ms, 1000ms, 1000ms, 1000ms}));
    EXPECT_EQ(resendIntervals(QosTimings{100ms, 300ms, 5}, 2, false), (V{100ms, 200ms, 300ms, 300ms, 300ms}));
    EXPECT_EQ(resendIntervals(QosTimings{100ms, 800ms, 5}, 2, true), (V{100ms, 200ms, 400ms, 800ms, 800ms}));
    EXPECT_EQ(resendIntervals(QosTimings{10000ms, 60000ms, 5}, 1, false),  // the defaults
              (V{10000ms, 20000ms, 40000ms, 60000ms, 60000ms}));
    EXPECT_EQ(resendIntervals(QosTimings{100ms, 100ms, 3}, 1, false), (V{100ms, 100ms, 100ms}));
    EXPECT_EQ(resendIntervals(QosTimings{100ms, 1000ms, 0}, 1, false), V{});  // unhealthy at the first timeout
}

TEST(QosTrackerTiming, LateTickSchedulesFromNow) {
    Tracker tracker(2, QosTimings{100ms, 1000ms, 5});
    tracker.track(1, 1, kT0);
    EXPECT_EQ(resendDue(tracker, at(150ms)).size(), 1u);
    EXPECT_EQ(tracker.nextDue(), at(350ms));  // now + 2 × ackTimeout
    EXPECT_EQ(resendDue(tracker, at(1000ms)).size(), 1u);
    EXPECT_EQ(tracker.nextDue(), at(1400ms));  // now + 4 × ackTimeout: one resend per tick, however late
}

TEST(QosTrackerTiming, ResendsOldestFirstWithTheRightPayload) {
    using Payload = std::shared_ptr<const std::string>;
    QosTracker<Payload> tracker(8, QosTimings{100ms, 1000ms, 5});
    Payload a = std::make_shared<const std::string>("a");
    Payload b = std::make_shared<const std::string>("b");
    Payload c = std::make_shared<const std::string>("c");
    Payload d = std::make_shared<const std::string>("d");
    Payload e = std::make_shared<const std::string>("e");
    DeliveryId da = tracker.track(a, 1, at(40ms));  // due 140
    DeliveryId db = tracker.track(b, 2, at(10ms));  // due 110
    DeliveryId dc = tracker.track(c, 2, at(0ms));
    EXPECT_EQ(tracker.onRec(dc, at(30ms)), QosOutcome::SendRel);  // due 130, rel
    DeliveryId dd = tracker.track(d, 1, at(20ms));
    EXPECT_EQ(tracker.onAck(dd), QosOutcome::Completed);
    DeliveryId de = tracker.track(e, 1, at(100ms));  // due 200: not yet
    EXPECT_EQ(tracker.nextDue(), at(110ms));

    struct Seen {
        DeliveryId did;
        DeliveryState state;
        const std::string* payload;  // the original message object, or null for a rel
    };
    std::vector<Seen> seen;
    auto record = [&](const QosTracker<Payload>::Resend& r) {
        seen.push_back({r.did, r.state, r.message == nullptr ? nullptr : r.message->get()});
    };
    EXPECT_TRUE(tracker.resendDue(at(150ms), record));
    ASSERT_EQ(seen.size(), 3u);
    EXPECT_EQ(seen[0].did, da);
    EXPECT_EQ(seen[0].state, DeliveryState::AwaitingAck);
    EXPECT_EQ(seen[0].payload, a.get());
    EXPECT_EQ(seen[1].did, db);
    EXPECT_EQ(seen[1].state, DeliveryState::AwaitingRec);
    EXPECT_EQ(seen[1].payload, b.get());
    EXPECT_EQ(seen[2].did, dc);
    EXPECT_EQ(seen[2].state, DeliveryState::AwaitingComp);
    EXPECT_EQ(seen[2].payload, nullptr);
    EXPECT_EQ(c.use_count(), 1);              // after the rec the tracker no longer holds the message
    EXPECT_EQ(tracker.nextDue(), at(200ms));  // e; the others are now due at 350

    seen.clear();
    EXPECT_TRUE(tracker.resendDue(at(200ms), record));
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].did, de);
    EXPECT_EQ(seen[0].payload, e.get());

    seen.clear();
    tracker.resendAll(at(210ms), record);
    ASSERT_EQ(seen.size(), 4u);
    EXPECT_EQ(seen[0].did, da);
    EXPECT_EQ(seen[1].did, db);
    EXPECT_EQ(seen[2].did, dc);
    EXPECT_EQ(seen[2].payload, nullptr);
    EXPECT_EQ(seen[3].did, de);
    EXPECT_EQ(seen[3].payload, e.get());
}

TEST(QosTrackerTiming, UnhealthyStopsTheSweepButKeepsTheDeliveries) {
    Tracker tracker(8, QosTimings{100ms, 1000ms, 2});
    DeliveryId d1 = tracker.track(1, 2, kT0);
    DeliveryId d2 = tracker.track(2, 1, kT0);
    EXPECT_EQ(dids(resendDue(tracker, at(100ms))), (std::vector<DeliveryId>{d1, d2}));
    EXPECT_EQ(tracker.onRec(d1, at(250ms)), QosOutcome::SendRel);                   // d1: resends 0, due 350
    EXPECT_EQ(dids(resendDue(tracker, at(300ms))), (std::vector<DeliveryId>{d2}));  // d2: 2 resends, due 700
    EXPECT_EQ(dids(resendDue(tracker, at(350ms))), (std::vector<DeliveryId>{d1}));  // d1: due 550
    DeliveryId d3 = tracker.track(3, 1, at(600ms));                                 // due 700

    bool healthy = true;
    // d1 (older) is resent; d2 has used up its resends, so the sweep stops before d3.
    EXPECT_EQ(dids(resendDue(tracker, at(700ms), &healthy)), (std::vector<DeliveryId>{d1}));
    EXPECT_FALSE(healthy);
    EXPECT_TRUE(resendDue(tracker, at(800ms), &healthy).empty());
    EXPECT_FALSE(healthy);  // still unhealthy, nothing lost
    EXPECT_EQ(tracker.inflight(), 3u);
    EXPECT_EQ(unfinished(tracker), (std::vector<std::pair<DeliveryId, int>>{{d2, 2}, {d3, 3}}));

    // Once the stuck delivery is acked, the sweep proceeds.
    EXPECT_EQ(tracker.onAck(d2), QosOutcome::Completed);
    EXPECT_EQ(dids(resendDue(tracker, at(800ms), &healthy)), (std::vector<DeliveryId>{d3}));
    EXPECT_TRUE(healthy);
}

TEST(QosTrackerTiming, ResendAllResetsRetryCounts) {
    Tracker tracker(8, QosTimings{100ms, 1000ms, 2});
    DeliveryId d1 = tracker.track(1, 1, kT0);
    DeliveryId d2 = tracker.track(2, 2, kT0);
    DeliveryId d3 = tracker.track(3, 2, kT0);
    EXPECT_EQ(tracker.onRec(d3, kT0), QosOutcome::SendRel);
    EXPECT_EQ(resendDue(tracker, at(100ms)).size(), 3u);
    EXPECT_EQ(resendDue(tracker, at(300ms)).size(), 3u);
    bool healthy = true;
    EXPECT_TRUE(resendDue(tracker, at(700ms), &healthy).empty());
    EXPECT_FALSE(healthy);

    std::vector<Sent> all = resendAll(tracker, at(1000ms));
    ASSERT_EQ(dids(all), (std::vector<DeliveryId>{d1, d2, d3}));
    EXPECT_EQ(all[0].state, DeliveryState::AwaitingAck);
    EXPECT_EQ(all[0].message, 1);
    EXPECT_EQ(all[1].state, DeliveryState::AwaitingRec);
    EXPECT_EQ(all[1].message, 2);
    EXPECT_EQ(all[2].state, DeliveryState::AwaitingComp);
    EXPECT_FALSE(all[2].hasMessage);
    EXPECT_EQ(tracker.nextDue(), at(1100ms));  // ackTimeout after the reconnect

    // Counts and backoff start over: two more resends (100ms, then 200ms) before unhealthy again.
    EXPECT_TRUE(resendDue(tracker, at(1099ms), &healthy).empty());
    EXPECT_TRUE(healthy);
    EXPECT_EQ(resendDue(tracker, at(1100ms), &healthy).size(), 3u);
    EXPECT_TRUE(healthy);
    EXPECT_EQ(tracker.nextDue(), at(1300ms));
    EXPECT_EQ(resendDue(tracker, at(1300ms), &healthy).size(), 3u);
    EXPECT_TRUE(healthy);
    EXPECT_EQ(tracker.nextDue(), at(1700ms));
    EXPECT_TRUE(resendDue(tracker, at(1700ms), &healthy).empty());
    EXPECT_FALSE(healthy);

    Tracker empty(4, QosTimings{});
    EXPECT_TRUE(resendAll(empty, kT0).empty());
}

TEST(QosTrackerTiming, NextDueIsTheMinimumAndNothingDueMeansNoCalls) {
    Tracker tracker(8, QosTimings{100ms, 1000ms, 5});
    EXPECT_EQ(tracker.nextDue(), std::nullopt);
    bool healthy = false;
    EXPECT_TRUE(resendDue(tracker, at(1000000ms), &healthy).empty());  // empty tracker
    EXPECT_TRUE(healthy);

    DeliveryId d1 = tracker.track(1, 1, kT0);       // due 100
    DeliveryId d2 = tracker.track(2, 1, at(10ms));  // due 110
    DeliveryId d3 = tracker.track(3, 2, at(20ms));  // due 120
    EXPECT_EQ(tracker.nextDue(), at(100ms));
    EXPECT_EQ(dids(resendDue(tracker, at(100ms))), std::vector<DeliveryId>{d1});  // d1 → 300
    EXPECT_EQ(tracker.nextDue(), at(110ms));  // the minimum is not the oldest delivery
    EXPECT_EQ(tracker.onAck(d2), QosOutcome::Completed);
    EXPECT_EQ(tracker.nextDue(), at(120ms));
    EXPECT_EQ(tracker.onRec(d3, at(90ms)), QosOutcome::SendRel);  // rel timer: 190
    EXPECT_EQ(tracker.nextDue(), at(190ms));
    EXPECT_TRUE(resendDue(tracker, at(189ms), &healthy).empty());
    EXPECT_TRUE(healthy);
    EXPECT_EQ(tracker.onComp(d3), QosOutcome::Completed);
    EXPECT_EQ(tracker.nextDue(), at(300ms));
    EXPECT_EQ(tracker.onAck(d1), QosOutcome::Completed);
    EXPECT_EQ(tracker.nextDue(), std::nullopt);
    EXPECT_TRUE(resendDue(tracker, at(1000000ms), &healthy).empty());  // everything finished
    EXPECT_TRUE(healthy);
}

// ---------------------------------------------------------------------------------------------
// 4. Randomized check against an independent reference model.

struct Model {
    struct Delivery {
        int qos;
        DeliveryState state;
        unsigned resends;
        TimePoint due;
        int message;
    };

    std::size_t maxInflight;
    QosTimings timings;
    std::map<DeliveryId, Delivery> live;
    DeliveryId next = 1;

    bool hasRoom() const {
        DeliveryId oldest = live.empty() ? next : live.begin()->first;
        return next - oldest < maxInflight;
    }

    milliseconds interval(unsigned resends) const {  // after `resends` resends
        milliseconds value = timings.ackTimeout;
        for (unsigned i = 0; i < resends; ++i) value = std::min(value * 2, timings.maxBackoff);
        return std::min(value, timings.maxBackoff);
    }

    DeliveryId track(int message, int qos, TimePoint now) {
        live[next] = {qos, qos == 1 ? DeliveryState::AwaitingAck : DeliveryState::AwaitingRec, 0,
                      now + timings.ackTimeout, message};
        return next++;
    }

    QosOutcome ack(DeliveryId did) {
        auto it = live.find(did);
        if (it == live.end()) return QosOutcome::Ignored;
        if (it->second.qos != 1) return QosOutcome::ProtocolError;
        live.erase(it);
        return QosOutcome::Completed;
    }

    QosOutcome rec(DeliveryId did, TimePoint now) {
        auto it = live.find(did);
        if (it == live.end()) return QosOutcome::Ignored;
        Delivery& d = it->second;
        if (d.qos != 2) return QosOutcome::ProtocolError;
        if (d.state == DeliveryState::AwaitingRec) d = {2, DeliveryState::AwaitingComp, 0, now + timings.ackTimeout, 0};
        return QosOutcome::SendRel;
    }

    QosOutcome comp(DeliveryId did) {
        auto it = live.find(did);
        if (it == live.end()) return QosOutcome::Ignored;
        if (it->second.state != DeliveryState::AwaitingComp) return QosOutcome::ProtocolError;
        live.erase(it);
        return QosOutcome::Completed;
    }

    bool resendDue(TimePoint now, std::vector<Sent>& sent) {
        for (auto& [did, d] : live) {
            if (now < d.due) continue;
            if (d.resends == timings.maxRedeliveries) return false;
            ++d.resends;
            d.due = now + interval(d.resends);
            bool rel = d.state == DeliveryState::AwaitingComp;
            sent.push_back({did, d.state, !rel, rel ? 0 : d.message});
        }
        return true;
    }

    void resendAll(TimePoint now, std::vector<Sent>& sent) {
        for (auto& [did, d] : live) {
            d.resends = 0;
            d.due = now + timings.ackTimeout;
            bool rel = d.state == DeliveryState::AwaitingComp;
            sent.push_back({did, d.state, !rel, rel ? 0 : d.message});
        }
    }

    std::optional<TimePoint> nextDue() const {
        std::optional<TimePoint> earliest;
        for (const auto& [did, d] : live)
            if (!earliest || d.due < *earliest) earliest = d.due;
        return earliest;
    }

    std::vector<std::pair<DeliveryId, int>> unfinished() const {
        std::vector<std::pair<DeliveryId, int>> out;
        for (const auto& [did, d] : live)
            if (d.state != DeliveryState::AwaitingComp) out.emplace_back(did, d.message);
        return out;
    }

    DeliveryState stateOf(DeliveryId did) const {
        auto it = live.find(did);
        return it == live.end() ? DeliveryState::Free : it->second.state;
    }
};

std::string describe(const std::vector<Sent>& sent) {
    std::ostringstream out;
    out << "[";
    for (const Sent& s : sent) {
        out << " " << s.did << ":" << name(s.state);
        if (s.hasMessage) out << "(" << s.message << ")";
    }
    out << " ]";
    return out.str();
}

bool operator==(const Sent& a, const Sent& b) {
    return a.did == b.did && a.state == b.state && a.hasMessage == b.hasMessage && a.message == b.message;
}

std::string describe(std::optional<TimePoint> t) {
    if (!t) return "none";
    return std::to_string(std::chrono::duration_cast<milliseconds>(*t - kT0).count()) + "ms";
}

// Runs one seed; returns an empty string, or what went wrong and where.
std::string runModelCheck(std::uint32_t seed, int steps) {
    std::mt19937 rng(seed);
    auto uniform = [&](std::uint32_t lo, std::uint32_t hi) { return lo + rng() % (hi - lo + 1); };

    const std::size_t maxInflight = uniform(1, 6);
    QosTimings timings;
    timings.ackTimeout = milliseconds(uniform(10, 50));
    timings.maxBackoff = timings.ackTimeout * uniform(1, 6) + milliseconds(uniform(0, 20));
    timings.maxRedeliveries = uniform(0, 4);

    Tracker tracker(maxInflight, timings);
    Model model{maxInflight, timings, {}, 1};
    TimePoint now = kT0;
    int nextMessage = 1;

    auto fail = [&](int step, const std::string& what) {
        std::ostringstream out;
        out << "seed " << seed << " step " << step << " (maxInflight " << maxInflight << ", ackTimeout "
            << timings.ackTimeout.count() << "ms, maxBackoff " << timings.maxBackoff.count() << "ms, maxRedeliveries "
            << timings.maxRedeliveries << "): " << what;
        return out.str();
    };

    // A did for an ack/rec/comp: mostly a live one, otherwise finished, unissued, 0 or huge.
    auto pickDid = [&]() -> DeliveryId {
        if (!model.live.empty() && rng() % 10 < 7) {
            auto it = model.live.begin();
            std::advance(it, rng() % model.live.size());
            return it->first;
        }
        switch (rng() % 5) {
            case 0: return 0;
            case 1: return kHugeDid - rng() % 3;
            case 2: return model.next + rng() % 3;
            default: return model.next > 1 ? 1 + rng() % (model.next - 1) : 0;  // finished or live
        }
    };

    for (int step = 0; step < steps; ++step) {
        std::uint32_t roll = rng() % 100;
        if (roll < 30) {
            if (!model.hasRoom()) continue;
            int qos = 1 + static_cast<int>(rng() % 2);
            int message = nextMessage++;
            DeliveryId expected = model.track(message, qos, now);
            DeliveryId got = tracker.track(message, qos, now);
            if (got != expected)
                return fail(step,
                            "track returned did " + std::to_string(got) + ", expected " + std::to_string(expected));
        } else if (roll < 75) {
            DeliveryId did = pickDid();
            // For a live did, mostly the input its state expects.
            int input = static_cast<int>(rng() % 3);  // 0 ack, 1 rec, 2 comp
            if (auto it = model.live.find(did); it != model.live.end() && rng() % 10 < 6) {
                input = it->second.state == DeliveryState::AwaitingAck   ? 0
                        : it->second.state == DeliveryState::AwaitingRec ? 1
                                                                         : 2;
            }
            QosOutcome expected{}, got{};
            switch (input) {
                case 0: expected = model.ack(did), got = tracker.onAck(did); break;
                case 1: expected = model.rec(did, now), got = tracker.onRec(did, now); break;
                default: expected = model.comp(did), got = tracker.onComp(did); break;
            }
            if (got != expected) {
                static const char* inputs[] = {"ack", "rec", "comp"};
                return fail(step, std::string(inputs[input]) + " " + std::to_string(did) + " returned " + name(got) +
                                      ", expected " + name(expected));
            }
        } else if (roll < 97) {
            now += milliseconds(rng() % (timings.maxBackoff.count() + 20));
            std::vector<Sent> expected, got;
            bool expectedHealthy = model.resendDue(now, expected);
            bool gotHealthy = tracker.resendDue(now, [&](const Tracker::Resend& r) {
                got.push_back({r.did, r.state, r.message != nullptr, r.message != nullptr ? *r.message : 0});
            });
            if (got != expected || gotHealthy != expectedHealthy)
                return fail(step, "resendDue at " + describe(now) + " resent " + describe(got) + " healthy " +
                                      std::to_string(gotHealthy) + ", expected " + describe(expected) + " healthy " +
                                      std::to_string(expectedHealthy));
        } else {
            now += milliseconds(rng() % 50);
            std::vector<Sent> expected, got;
            model.resendAll(now, expected);
            tracker.resendAll(now, [&](const Tracker::Resend& r) {
                got.push_back({r.did, r.state, r.message != nullptr, r.message != nullptr ? *r.message : 0});
            });
            if (got != expected)
                return fail(step, "resendAll resent " + describe(got) + ", expected " + describe(expected));
        }

        // The observable state after every step.
        if (tracker.hasRoom() != model.hasRoom())
            return fail(
                step, "hasRoom " + std::to_string(tracker.hasRoom()) + ", expected " + std::to_string(model.hasRoom()));
        if (tracker.inflight() != model.live.size())
            return fail(step, "inflight " + std::to_string(tracker.inflight()) + ", expected " +
                                  std::to_string(model.live.size()));
        if (tracker.nextDid() != model.next) return fail(step, "nextDid " + std::to_string(tracker.nextDid()));
        if (tracker.nextDue() != model.nextDue())
            return fail(step, "nextDue " + describe(tracker.nextDue()) + ", expected " + describe(model.nextDue()));
        if (unfinished(tracker) != model.unfinished()) return fail(step, "forEachUnfinished differs");
        for (DeliveryId did = model.next > 8 ? model.next - 8 : 0; did <= model.next + 1; ++did)
            if (tracker.stateOf(did) != model.stateOf(did))
                return fail(step, "stateOf(" + std::to_string(did) + ") " + name(tracker.stateOf(did)) + ", expected " +
                                      name(model.stateOf(did)));
    }
    return {};
}

TEST(QosTrackerModel, RandomEventsMatchTheReferenceModel) {
    constexpr std::uint32_t kSeeds = 3000;
    constexpr int kSteps = 200;
    int failures = 0;
    for (std::uint32_t seed = 1; seed <= kSeeds && failures < 5; ++seed) {
        std::string error = runModelCheck(seed, kSteps);
        if (!error.empty()) {
            ADD_FAILURE() << error;
            ++failures;
        }
    }
}

}  // namespace
}  // namespace wspush
