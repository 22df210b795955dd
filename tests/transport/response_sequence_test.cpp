#include "transport/response_sequence.h"

#include <string>

#include <gtest/gtest.h>

namespace wspush {
namespace {

TEST(ResponseSequence, ResponsesLeaveInRequestOrderWhateverOrderTheyAreAnswered) {
    ResponseSequence sequence;
    auto first = sequence.open();
    auto second = sequence.open();
    auto third = sequence.open();
    std::string out;

    sequence.answer(third, "3", false);
    sequence.answer(second, "2", false);
    EXPECT_EQ(sequence.takeReady(out).responses, 0u) << "the first request is not answered yet";
    EXPECT_EQ(out, "");

    sequence.answer(first, "1", false);
    auto taken = sequence.takeReady(out);
    EXPECT_EQ(taken.responses, 3u);
    EXPECT_FALSE(taken.closesConnection);
    EXPECT_EQ(out, "123");
    EXPECT_EQ(sequence.outstanding(), 0u);
}

TEST(ResponseSequence, TakesOnlyTheAnsweredFront) {
    ResponseSequence sequence;
    auto first = sequence.open();
    auto second = sequence.open();
    auto third = sequence.open();
    sequence.answer(first, "1", false);
    sequence.answer(third, "3", false);
    std::string out;
    EXPECT_EQ(sequence.takeReady(out).responses, 1u);
    EXPECT_EQ(out, "1");
    EXPECT_EQ(sequence.outstanding(), 2u);

    out.clear();
    sequence.answer(second, "2", false);
    EXPECT_EQ(sequence.takeReady(out).responses, 2u);
    EXPECT_EQ(out, "23");
}

TEST(ResponseSequence, NothingFollowsAResponseThatClosesTheConnection) {
    ResponseSequence sequence;
    auto first = sequence.open();
    auto second = sequence.open();
    auto third = sequence.open();
    sequence.answer(third, "3", false);
    sequence.answer(second, "2", true);
    sequence.answer(first, "1", false);
    std::string out;
    auto taken = sequence.takeReady(out);
    EXPECT_EQ(taken.responses, 2u);
    EXPECT_TRUE(taken.closesConnection);
    EXPECT_EQ(out, "12");
    EXPECT_EQ(sequence.outstanding(), 0u);

    sequence.answer(third, "late", false);  // dropped with the connection: ignored
    EXPECT_EQ(sequence.takeReady(out).responses, 0u);
}

TEST(ResponseSequence, AnAnswerGivenTwiceCountsOnce) {
    ResponseSequence sequence;
    auto only = sequence.open();
    sequence.answer(only, "first", false);
    sequence.answer(only, "second", true);
    std::string out;
    auto taken = sequence.takeReady(out);
    EXPECT_EQ(out, "first");
    EXPECT_FALSE(taken.closesConnection);
    sequence.answer(only, "after", false);
    EXPECT_EQ(sequence.takeReady(out).responses, 0u);
}

TEST(ResponseSequence, TicketsKeepCountingAcrossTakes) {
    ResponseSequence sequence;
    std::string out;
    for (int i = 0; i < 5; ++i) {
        auto ticket = sequence.open();
        sequence.answer(ticket, std::to_string(i), false);
        EXPECT_EQ(sequence.takeReady(out).responses, 1u);
    }
    EXPECT_EQ(out, "01234");
}

TEST(ResponseSequence, KeepsOrderWhileARequestIsAlwaysOutstanding) {
    // As on the Redis engine: the next request is served before the previous response is taken.
    ResponseSequence sequence;
    std::string out;
    auto previous = sequence.open();
    for (int i = 0; i < 1000; ++i) {
        auto next = sequence.open();
        sequence.answer(previous, std::to_string(i) + ",", false);
        auto taken = sequence.takeReady(out);
        ASSERT_EQ(taken.responses, 1u) << i;
        ASSERT_EQ(sequence.outstanding(), 1u) << i;
        previous = next;
    }
    sequence.answer(previous, "last", false);
    EXPECT_EQ(sequence.takeReady(out).responses, 1u);
    std::string expected;
    for (int i = 0; i < 1000; ++i) expected += std::to_string(i) + ",";
    EXPECT_EQ(out, expected + "last");
}

}  // namespace
}  // namespace wspush
