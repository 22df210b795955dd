#include "engine/redis/publication_codec.h"

#include <gtest/gtest.h>

namespace wspush {
namespace {

Publication sample() {
    Publication p;
    p.channel = "news";
    p.offset = 7;
    p.epoch = "e1";
    p.mid = "m-1";
    p.timestampMs = 1700000000123;
    p.data = R"({"text":"a\nb","n":[1,2]})";
    p.qos = 2;
    return p;
}

TEST(PublicationCodec, ABodyDecodesToWhatWasEncoded) {
    Publication p = sample();
    auto decoded = decodeBody("news", 7, "e1", encodeBody(p));
    ASSERT_TRUE(decoded);
    EXPECT_EQ(decoded->channel, "news");
    EXPECT_EQ(decoded->offset, 7u);
    EXPECT_EQ(decoded->epoch, "e1");
    EXPECT_EQ(decoded->mid, "m-1");
    EXPECT_EQ(decoded->timestampMs, 1700000000123);
    EXPECT_EQ(decoded->data, p.data);
    EXPECT_EQ(decoded->qos, 2);
    EXPECT_EQ(decoded->reportOrigin, nullptr);
}

TEST(PublicationCodec, AMessageCarriesOffsetEpochAndReportOrigin) {
    std::string body = encodeBody(sample());
    auto plain = decodeMessage("news", "12\nepoch-x\n\n" + body);
    ASSERT_TRUE(plain);
    EXPECT_EQ(plain->offset, 12u);
    EXPECT_EQ(plain->epoch, "epoch-x");
    EXPECT_EQ(plain->reportOrigin, nullptr);

    std::string origin = encodeReportOrigin(ReportOrigin{"node:a", 99});
    auto reported = decodeMessage("news", "12\nepoch-x\n" + origin + "\n" + body);
    ASSERT_TRUE(reported);
    ASSERT_NE(reported->reportOrigin, nullptr);
    EXPECT_EQ(reported->reportOrigin->node, "node:a") << "a node name may hold a colon";
    EXPECT_EQ(reported->reportOrigin->id, 99u);
    EXPECT_EQ(reported->data, sample().data);
}

TEST(PublicationCodec, MalformedInputIsRefusedNotTrusted) {
    std::string body = encodeBody(sample());
    for (std::string bad :
         {std::string{}, std::string("12"), "x\ne\n\n" + body, "0\ne\n\n" + body, "12\n\n\n" + body, "12\ne\n" + body,
          "12\ne\nnot-an-id\n" + body, "12\ne\n5:\n" + body, std::string("12\ne\n\n7\n1\nm\n{}"),
          std::string("12\ne\n\n1\nts\nm\n{}"), std::string("12\ne\n\n1\n5\n\n{}")})
        EXPECT_FALSE(decodeMessage("news", bad)) << bad;
}

TEST(PublicationCodec, AFirstPublishedRecordKeepsEverythingButTheData) {
    Publication p = sample();
    auto first = decodeFirstPublished("news", "7\ne1\n" + encodeFirstPublished(p));
    ASSERT_TRUE(first);
    EXPECT_EQ(first->offset, 7u);
    EXPECT_EQ(first->epoch, "e1");
    EXPECT_EQ(first->mid, "m-1");
    EXPECT_EQ(first->timestampMs, p.timestampMs);
    EXPECT_TRUE(first->data.empty());
    EXPECT_FALSE(decodeFirstPublished("news", "7\ne1\n123\n"));
}

TEST(PublicationCodec, StreamIdsAreOffsets) {
    EXPECT_EQ(offsetOfStreamId("17-0"), 17u);
    EXPECT_FALSE(offsetOfStreamId("17-1"));
    EXPECT_FALSE(offsetOfStreamId("-0"));
    EXPECT_FALSE(offsetOfStreamId("a-0"));
}

}  // namespace
}  // namespace wspush
