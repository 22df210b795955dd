#include "webhooks/webhook_event.h"

#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace wspush {
namespace {

TEST(WebhookEventTest, KindsAndNamesRoundTrip) {
    for (std::size_t i = 0; i < kWebhookEventKinds; ++i) {
        auto kind = static_cast<WebhookEventKind>(i);
        EXPECT_EQ(webhookEventKind(webhookEventName(kind)), kind);
    }
    EXPECT_EQ(webhookEventName(WebhookEventKind::MessageUnacked), "message_unacked");
    EXPECT_FALSE(webhookEventKind("user_away").has_value());
}

TEST(WebhookEventTest, IdsAre128RandomBitsInHex) {
    std::set<std::string> ids;
    for (int i = 0; i < 1000; ++i) {
        WebhookEvent event;
        EXPECT_EQ(event.id.size(), 32u);
        EXPECT_EQ(event.id.find_first_not_of("0123456789abcdef"), std::string::npos);
        ids.insert(event.id);
    }
    EXPECT_EQ(ids.size(), 1000u);
}

TEST(WebhookEventTest, EncodesIdNameTimeAndOnlyTheFieldsPresent) {
    WebhookEvent event;
    event.id = "0123456789abcdef0123456789abcdef";
    event.kind = WebhookEventKind::MemberRemoved;
    event.timeMs = 1700000000123;
    event.user = "alice";
    event.channel = "chat:lobby";
    event.client = "c1";
    event.reason = "unsubscribed";
    EXPECT_EQ(encodeWebhookEvent(event),
              R"({"id":"0123456789abcdef0123456789abcdef","name":"member_removed","time_ms":1700000000123,)"
              R"("user":"alice","channel":"chat:lobby","client":"c1","reason":"unsubscribed"})");
}

TEST(WebhookEventTest, MessageUnackedCarriesOffsetAndMid) {
    WebhookEvent event;
    event.kind = WebhookEventKind::MessageUnacked;
    event.timeMs = 5;
    event.user = "bob";
    event.channel = "orders";
    event.client = "c2";
    event.device = "phone";
    event.node = "node-a";
    event.offset = 42;
    event.mid = "m-7";
    auto json = nlohmann::json::parse(encodeWebhookEvent(event));
    EXPECT_EQ(json["name"], "message_unacked");
    EXPECT_EQ(json["offset"], 42);
    EXPECT_EQ(json["mid"], "m-7");
    EXPECT_EQ(json["device"], "phone");
    EXPECT_EQ(json["node"], "node-a");
    EXPECT_FALSE(json.contains("reason"));
}

TEST(WebhookEventTest, InvalidUtf8IsReplacedNotThrown) {
    WebhookEvent event;
    event.user = std::string("bad\xff");
    std::string encoded;
    EXPECT_NO_THROW(encoded = encodeWebhookEvent(event));
    EXPECT_TRUE(nlohmann::json::accept(encoded));
}

}  // namespace
}  // namespace wspush
