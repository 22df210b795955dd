// The webhook-stream contract (include/wspush/webhook_stream.h), one typed suite that every stream
// must pass (the in-memory one).
#include <chrono>
#include <future>
#include <memory>
#include <ostream>
#include <set>

#include <gtest/gtest.h>

#include "engine/memory/memory_webhook_stream.h"
#include "wspush/webhook_stream.h"

namespace wspush {

void PrintTo(const WebhookStreamEvent& event, std::ostream* out) {
    *out << event.name << " " << event.json;
}

namespace {

using namespace std::chrono_literals;

std::vector<WebhookStreamEvent> events(int first, int count) {
    std::vector<WebhookStreamEvent> made;
    for (int i = first; i < first + count; ++i)
        made.push_back(WebhookStreamEvent{"user_online", R"({"id":")" + std::to_string(i) + R"("})"});
    return made;
}

std::variant<std::size_t, BrokerError> tryAppend(WebhookStream& stream, std::vector<WebhookStreamEvent> events) {
    std::promise<std::variant<std::size_t, BrokerError>> promise;
    stream.append(std::move(events), [&](auto result) { promise.set_value(std::move(result)); });
    auto future = promise.get_future();
    EXPECT_EQ(future.wait_for(5s), std::future_status::ready);
    return future.get();
}

// How many were dropped.
std::size_t append(WebhookStream& stream, std::vector<WebhookStreamEvent> events) {
    auto result = tryAppend(stream, std::move(events));
    EXPECT_TRUE(std::holds_alternative<std::size_t>(result)) << std::get<BrokerError>(result).message;
    auto* dropped = std::get_if<std::size_t>(&result);
    return dropped ? *dropped : 0;
}

std::variant<std::vector<WebhookStreamEntry>, BrokerError> tryRead(WebhookStream& stream, std::size_t max) {
    std::promise<std::variant<std::vector<WebhookStreamEntry>, BrokerError>> promise;
    stream.read(max, [&](auto result) { promise.set_value(std::move(result)); });
    auto future = promise.get_future();
    EXPECT_EQ(future.wait_for(5s), std::future_status::ready);
    return future.get();
}

std::vector<WebhookStreamEntry> read(WebhookStream& stream, std::size_t max) {
    auto result = tryRead(stream, max);
    EXPECT_TRUE(std::holds_alternative<std::vector<WebhookStreamEntry>>(result))
        << std::get<BrokerError>(result).message;
    auto* entries = std::get_if<std::vector<WebhookStreamEntry>>(&result);
    return entries ? std::move(*entries) : std::vector<WebhookStreamEntry>{};
}

std::vector<WebhookStreamEvent> eventsOf(const std::vector<WebhookStreamEntry>& entries) {
    std::vector<WebhookStreamEvent> found;
    for (const WebhookStreamEntry& entry : entries) found.push_back(entry.event);
    return found;
}

std::vector<std::string> idsOf(const std::vector<WebhookStreamEntry>& entries) {
    std::vector<std::string> ids;
    for (const WebhookStreamEntry& entry : entries) ids.push_back(entry.entryId);
    return ids;
}

// ---- the contract, every stream ----------------------------------------------------------------

struct MemoryStream {
    explicit MemoryStream(std::size_t maxLength) : stream(std::make_unique<MemoryWebhookStream>(maxLength)) {}
    std::unique_ptr<WebhookStream> stream;
};

template <class Stream>
class WebhookStreamContractTest : public ::testing::Test {
protected:
    static constexpr std::size_t kMaxLength = 5;

    WebhookStreamContractTest() : fixture(kMaxLength) {}

    WebhookStream& stream() { return *fixture.stream; }

    Stream fixture;
};

using Streams = ::testing::Types<MemoryStream>;
TYPED_TEST_SUITE(WebhookStreamContractTest, Streams);

TYPED_TEST(WebhookStreamContractTest, EventsAreReadInAppendOrderAndOnce) {
    EXPECT_EQ(append(this->stream(), events(0, 2)), 0u);
    EXPECT_EQ(append(this->stream(), events(2, 1)), 0u);
    auto entries = read(this->stream(), 10);
    EXPECT_EQ(eventsOf(entries), events(0, 3));
    auto ids = idsOf(entries);
    EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 3u) << "distinct ids";
    EXPECT_TRUE(read(this->stream(), 10).empty()) << "read, not acknowledged: not given again";
}

TYPED_TEST(WebhookStreamContractTest, AReadGivesAtMostMax) {
    append(this->stream(), events(0, 5));
    EXPECT_EQ(eventsOf(read(this->stream(), 2)), events(0, 2));
    EXPECT_EQ(eventsOf(read(this->stream(), 2)), events(2, 2));
    EXPECT_EQ(eventsOf(read(this->stream(), 2)), events(4, 1));
    EXPECT_TRUE(read(this->stream(), 0).empty());
}

TYPED_TEST(WebhookStreamContractTest, PastTheBoundTheNewestEventsAreDroppedAndCounted) {
    EXPECT_EQ(append(this->stream(), events(0, 3)), 0u);
    EXPECT_EQ(append(this->stream(), events(3, 4)), 2u) << "room for 2 of 4";
    EXPECT_EQ(append(this->stream(), events(7, 1)), 1u);
    EXPECT_EQ(eventsOf(read(this->stream(), 10)), events(0, 5));
}

TYPED_TEST(WebhookStreamContractTest, AcknowledgedEventsLeaveTheStreamAndFreeTheirRoom) {
    append(this->stream(), events(0, 5));
    auto first = read(this->stream(), 3);
    ASSERT_EQ(first.size(), 3u);
    EXPECT_EQ(append(this->stream(), events(5, 1)), 1u) << "read but unacknowledged events still count";
    this->stream().acknowledge(idsOf(first));
    EXPECT_EQ(append(this->stream(), events(5, 4)), 1u) << "room for the 3 acknowledged";
    EXPECT_EQ(eventsOf(read(this->stream(), 10)), events(3, 5));
    EXPECT_TRUE(read(this->stream(), 10).empty()) << "acknowledged events are never read again";
}

}  // namespace
}  // namespace wspush
