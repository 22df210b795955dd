// DeliveryReport (include/wspush/publication.h): parts, the hold until the publish completes,
// acks, expiry.
#include <cstdint>
#include <optional>
#include <utility>

#include <gtest/gtest.h>

#include "wspush/publication.h"

namespace wspush {
namespace {

struct Outcome {
    int calls = 0;
    std::uint64_t reached = 0;
    std::uint64_t acked = 0;
};

std::shared_ptr<DeliveryReport> reportInto(Outcome& outcome, std::uint64_t wantedAcks) {
    return std::make_shared<DeliveryReport>(wantedAcks, [&outcome](std::uint64_t reached, std::uint64_t acked) {
        ++outcome.calls;
        outcome.reached = reached;
        outcome.acked = acked;
    });
}

TEST(DeliveryReportTest, HeldUntilReleasedEvenWhenEveryPartIsDone) {
    Outcome outcome;
    auto report = reportInto(outcome, 0);
    report->addParts(2);
    report->reached();
    report->partDone();
    report->partDone(3);  // a part that counted its connections itself (another node)
    EXPECT_EQ(outcome.calls, 0) << "the publish has not completed: more parts may come";
    report->release();
    EXPECT_EQ(outcome.calls, 1);
    EXPECT_EQ(outcome.reached, 4u);
    EXPECT_TRUE(report->finished());
}

TEST(DeliveryReportTest, ReleasedWithoutPartsCompletesAtOnceWithNothingReached) {
    Outcome outcome;
    auto report = reportInto(outcome, 2);
    report->release();
    EXPECT_EQ(outcome.calls, 1);
    EXPECT_EQ(outcome.reached, 0u);
}

TEST(DeliveryReportTest, APartMayReportBeforeItIsAdded) {
    Outcome outcome;
    auto report = reportInto(outcome, 0);
    report->partDone(1);  // a remote node answered before the publish completed here
    report->addParts(2);
    report->release();
    EXPECT_EQ(outcome.calls, 0) << "one part still pending";
    report->partDone(2);
    EXPECT_EQ(outcome.calls, 1);
    EXPECT_EQ(outcome.reached, 3u);
}

TEST(DeliveryReportTest, WithAcksWantedItWaitsForThemAfterTheParts) {
    Outcome outcome;
    auto report = reportInto(outcome, 2);
    report->addParts(1);
    report->release();
    report->partDone(2);
    EXPECT_EQ(outcome.calls, 0);
    report->acked();
    EXPECT_EQ(outcome.calls, 0);
    report->acked();
    EXPECT_EQ(outcome.calls, 1);
    EXPECT_EQ(outcome.acked, 2u);
    report->acked();  // late: counted nowhere, done once
    EXPECT_EQ(outcome.calls, 1);
}

TEST(DeliveryReportTest, EnoughAcksCompleteItEvenWhileHeld) {
    Outcome outcome;
    auto report = reportInto(outcome, 1);
    report->addParts(1);
    report->reached();
    report->acked();
    EXPECT_EQ(outcome.calls, 1);
    report->partDone();
    report->release();
    EXPECT_EQ(outcome.calls, 1);
}

TEST(DeliveryReportTest, ExpireAnswersWithWhatWasCounted) {
    Outcome outcome;
    auto report = reportInto(outcome, 5);
    report->addParts(2);
    report->partDone(4);
    report->acked();
    report->expire();
    EXPECT_EQ(outcome.calls, 1);
    EXPECT_EQ(outcome.reached, 4u);
    EXPECT_EQ(outcome.acked, 1u);
    report->partDone();
    report->release();
    EXPECT_EQ(outcome.calls, 1);
}

TEST(DeliveryReportTest, AcksAreForwardedAndTheFinishedHookRunsOnce) {
    int forwarded = 0;
    int hooks = 0;
    DeliveryReport report(
        0, [](std::uint64_t, std::uint64_t) {}, [&forwarded] { ++forwarded; });
    report.whenFinished([&hooks] { ++hooks; });
    report.acked();
    report.release();
    report.acked();  // after it finished: still forwarded
    EXPECT_EQ(forwarded, 2);
    EXPECT_EQ(hooks, 1);
    report.whenFinished([&hooks] { ++hooks; });  // already finished: at once
    EXPECT_EQ(hooks, 2);
}

}  // namespace
}  // namespace wspush
