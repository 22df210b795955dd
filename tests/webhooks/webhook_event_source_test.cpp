// Which presence transitions become which webhook events, with which fields, and which are left
// out: against a stream that records what is appended (the streams themselves have their contract
// suite, the whole path its integration tests in tests/integration/webhooks_test.cpp).
#include "webhooks/webhook_event_source.h"

#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/engine_loop.h"

namespace wspush {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

class RecordingStream final : public WebhookStream {
public:
    explicit RecordingStream(std::size_t room) : room_(room) {}

    void append(std::vector<WebhookStreamEvent> events, WebhookAppendCompletion done) override {
        std::size_t dropped = 0;
        {
            std::lock_guard lock(mutex_);
            for (auto& event : events) {
                if (appended_.size() >= room_) {
                    ++dropped;
                    continue;
                }
                appended_.push_back(std::move(event));
            }
        }
        done(dropped);
    }
    void read(std::size_t, WebhookReadCompletion done) override { done(std::vector<WebhookStreamEntry>{}); }
    void acknowledge(std::vector<std::string>) override {}

    std::vector<WebhookStreamEvent> appended() const {
        std::lock_guard lock(mutex_);
        return appended_;
    }

private:
    mutable std::mutex mutex_;
    std::size_t room_;
    std::vector<WebhookStreamEvent> appended_;
};

std::shared_ptr<WebhookDispatcher> dispatcherFor(boost::asio::io_context& context, std::vector<std::string> events) {
    WebhookDispatcherOptions options;
    options.endpoints.push_back({"http://127.0.0.1:9/hook", std::move(events), "secret"});
    return WebhookDispatcher::create(context, options);
}

PresenceEntry entry(std::string client, std::string user, std::string device = "") {
    return PresenceEntry{std::move(client), std::move(user), std::move(device), "node-a", 1700000000000, ""};
}

PresenceTransition transition(PresenceTransitionKind kind, std::string channel, PresenceEntry member,
                              std::string reason = "") {
    return PresenceTransition{kind, std::move(channel), std::move(member), std::move(reason), 1700000000123};
}

// What the stream got once the loop ran the appends, as JSON, with the random ids checked and removed.
std::vector<json> settledEvents(const RecordingStream& stream, std::size_t expected) {
    auto deadline = std::chrono::steady_clock::now() + 2s;
    while (stream.appended().size() < expected && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(2ms);
    std::this_thread::sleep_for(20ms);  // anything more would come now
    std::vector<json> events;
    for (const auto& event : stream.appended()) {
        json parsed = json::parse(event.json);
        EXPECT_EQ(parsed.value("name", ""), event.name);
        EXPECT_EQ(parsed.value("id", "").size(), 32u);
        parsed.erase("id");
        events.push_back(std::move(parsed));
    }
    return events;
}

TEST(WebhookEventSource, PresenceTransitionsBecomeEventsWithTheirKindsFields) {
    testing::EngineLoop loop;
    RecordingStream stream(100);
    auto source = std::make_shared<WebhookEventSource>(
        loop.context(), stream,
        dispatcherFor(loop.context(), {"user_online", "user_offline", "channel_occupied", "channel_vacated",
                                       "member_added", "member_removed"}));
    source->presenceChanged({
        transition(PresenceTransitionKind::MemberAdded, "room:1", entry("c1", "alice", "phone")),
        transition(PresenceTransitionKind::ChannelOccupied, "room:1", entry("c1", "alice", "phone")),
        transition(PresenceTransitionKind::MemberRemoved, "room:1", entry("c2", "", ""), "expired"),
        transition(PresenceTransitionKind::ChannelVacated, "room:1", entry("c2", "", ""), "expired"),
        transition(PresenceTransitionKind::UserOnline, "$online", entry("c1", "alice", "phone")),
        transition(PresenceTransitionKind::UserOffline, "$online", entry("c1", "alice", "phone"), "disconnected"),
    });
    auto events = settledEvents(stream, 6);
    std::int64_t at = 1700000000123;
    EXPECT_EQ(events, (std::vector<json>{
                          {{"name", "member_added"},
                           {"time_ms", at},
                           {"user", "alice"},
                           {"channel", "room:1"},
                           {"client", "c1"},
                           {"device", "phone"},
                           {"node", "node-a"}},
                          {{"name", "channel_occupied"},
                           {"time_ms", at},
                           {"user", "alice"},
                           {"channel", "room:1"},
                           {"client", "c1"},
                           {"node", "node-a"}},
                          {{"name", "member_removed"},
                           {"time_ms", at},
                           {"channel", "room:1"},
                           {"client", "c2"},
                           {"node", "node-a"},
                           {"reason", "expired"}},
                          {{"name", "channel_vacated"},
                           {"time_ms", at},
                           {"channel", "room:1"},
                           {"client", "c2"},
                           {"node", "node-a"},
                           {"reason", "expired"}},
                          {{"name", "user_online"},
                           {"time_ms", at},
                           {"user", "alice"},
                           {"client", "c1"},
                           {"device", "phone"},
                           {"node", "node-a"}},
                          {{"name", "user_offline"},
                           {"time_ms", at},
                           {"user", "alice"},
                           {"client", "c1"},
                           {"device", "phone"},
                           {"node", "node-a"},
                           {"reason", "disconnected"}},
                      }));
}

TEST(WebhookEventSource, OnlyWantedKindsAndOnlyNewsAreAppended) {
    testing::EngineLoop loop;
    RecordingStream stream(100);
    auto source = std::make_shared<WebhookEventSource>(loop.context(), stream,
                                                       dispatcherFor(loop.context(), {"user_online", "member_added"}));
    EXPECT_TRUE(source->wantsTransitionsOf("$online", false));
    EXPECT_TRUE(source->wantsTransitionsOf("room:1", true));
    EXPECT_FALSE(source->wantsTransitionsOf("plain:1", false)) << "no presence there";
    EXPECT_FALSE(source->wantsTransitionsOf("$user:alice", false));
    source->presenceChanged({
        transition(PresenceTransitionKind::MemberAdded, "$online", entry("c1", "alice")),  // $online's members: no
        transition(PresenceTransitionKind::MemberAdded, "$user:alice", entry("c1", "alice")),
        transition(PresenceTransitionKind::ChannelOccupied, "room:1", entry("c1", "alice")),  // not wanted
        transition(PresenceTransitionKind::UserOffline, "$online", entry("c1", "alice")),     // not wanted
        transition(PresenceTransitionKind::UserOnline, "$online", entry("c1", "alice")),
        transition(PresenceTransitionKind::MemberAdded, "room:1", entry("c1", "alice")),
    });
    auto events = settledEvents(stream, 2);
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].value("name", ""), "user_online");
    EXPECT_EQ(events[1].value("name", ""), "member_added");
}

TEST(WebhookEventSource, WhatFindsTheStreamFullIsCountedAsDropped) {
    testing::EngineLoop loop;
    RecordingStream stream(2);
    auto source = std::make_shared<WebhookEventSource>(loop.context(), stream,
                                                       dispatcherFor(loop.context(), {"message_unacked"}));
    std::vector<WebhookEvent> events(5);
    for (auto& event : events) event.kind = WebhookEventKind::MessageUnacked;
    source->add(std::move(events));
    auto deadline = std::chrono::steady_clock::now() + 2s;
    while (source->stats().appended + source->stats().droppedStreamFull < 5 &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(2ms);
    EXPECT_EQ(source->stats().appended, 2u);
    EXPECT_EQ(source->stats().droppedStreamFull, 3u);
    EXPECT_EQ(source->stats().droppedUnavailable, 0u);
}

}  // namespace
}  // namespace wspush
