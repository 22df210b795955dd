#include "transport/deflate_offer.h"

#include <gtest/gtest.h>

namespace wspush {
namespace {

constexpr const char* kAccepted = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

TEST(DeflateOffer, APlainOfferIsAcceptedWithoutContextTakeover) {
    auto agreement = agreeOnDeflate("permessage-deflate", 10);
    ASSERT_TRUE(agreement);
    EXPECT_EQ(agreement->windowBits, 10);
    EXPECT_EQ(agreement->response(), kAccepted);
}

TEST(DeflateOffer, BrowsersOfferIsAccepted) {
    // Chrome's and Firefox's offer.
    auto agreement = agreeOnDeflate("permessage-deflate; client_max_window_bits", 15);
    ASSERT_TRUE(agreement);
    EXPECT_EQ(agreement->windowBits, 15);
    EXPECT_EQ(agreement->response(), kAccepted) << "client_max_window_bits is left to the client";
}

TEST(DeflateOffer, TheClientsWindowLimitIsHonouredAndConfirmed) {
    auto agreement = agreeOnDeflate("permessage-deflate; server_max_window_bits=12; client_no_context_takeover", 15);
    ASSERT_TRUE(agreement);
    EXPECT_EQ(agreement->windowBits, 12);
    EXPECT_EQ(agreement->response(), std::string(kAccepted) + "; server_max_window_bits=12");
    auto ours = agreeOnDeflate("permessage-deflate; server_max_window_bits=\"14\"", 10);
    ASSERT_TRUE(ours);
    EXPECT_EQ(ours->windowBits, 10) << "ours is lower";
    EXPECT_EQ(ours->response(), std::string(kAccepted) + "; server_max_window_bits=10");
}

TEST(DeflateOffer, ParametersAreCaseInsensitive) {
    auto agreement = agreeOnDeflate("PerMessage-Deflate; Server_No_Context_Takeover", 10);
    ASSERT_TRUE(agreement);
    EXPECT_EQ(agreement->response(), kAccepted);
}

TEST(DeflateOffer, AnOfferThatCannotBeMetIsDeclinedAndTheNextOneTried) {
    EXPECT_FALSE(agreeOnDeflate("permessage-deflate; server_max_window_bits=8", 15))
        << "zlib's raw deflate starts at 9";
    EXPECT_FALSE(agreeOnDeflate("permessage-deflate; unknown_parameter", 15));
    EXPECT_FALSE(agreeOnDeflate("permessage-deflate; server_no_context_takeover; server_no_context_takeover", 15));
    EXPECT_FALSE(agreeOnDeflate("permessage-deflate; server_max_window_bits", 15)) << "needs a value";
    EXPECT_FALSE(agreeOnDeflate("permessage-deflate; server_max_window_bits=16", 15));
    EXPECT_FALSE(agreeOnDeflate("permessage-deflate; server_max_window_bits=09", 15));
    EXPECT_FALSE(agreeOnDeflate("permessage-deflate; client_max_window_bits=7", 15));
    EXPECT_FALSE(agreeOnDeflate("permessage-deflate; server_no_context_takeover=1", 15));
    EXPECT_FALSE(agreeOnDeflate("x-webkit-deflate-frame", 15));
    EXPECT_FALSE(agreeOnDeflate("", 15));

    auto second = agreeOnDeflate(
        "permessage-deflate; server_max_window_bits=8, permessage-deflate; client_max_window_bits=10", 15);
    ASSERT_TRUE(second);
    EXPECT_EQ(second->windowBits, 15);
    EXPECT_TRUE(agreeOnDeflate("foo, permessage-deflate", 15)) << "after another extension";
}

}  // namespace
}  // namespace wspush
