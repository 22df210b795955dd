// A clustered Broker for unit tests: several engines (one per Node) share one FakeCluster, which
// hands each publication to every subscribed node's handler and routes control messages by node
// name, synchronously, on the caller's thread. Failures and shard health are set by the test.
// No history is kept: history() answers the position alone.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "wspush/broker.h"

namespace wspush::fakes {

class FakeCluster {
public:
    struct Member {
        std::string name;
        BrokerEventHandler* handler = nullptr;
        std::set<std::string, std::less<>> channels;
    };

    // Set by tests: every publish, subscribe, history and nodes() call fails with it.
    std::optional<BrokerError> failure;
    std::vector<EngineShardHealth> health{{"127.0.0.1:6379", true, ""}};
    std::vector<std::string> controls;  // every control payload sent, in order

    Member& join() {
        std::lock_guard lock(mutex_);
        members_.push_back(std::make_unique<Member>());
        return *members_.back();
    }

    // Hands `publication` to every member subscribed to its channel; returns how many.
    std::uint64_t deliver(const PublicationPtr& publication) {
        std::vector<BrokerEventHandler*> handlers;
        {
            std::lock_guard lock(mutex_);
            for (const auto& member : members_)
                if (member->channels.contains(publication->channel)) handlers.push_back(member->handler);
        }
        for (BrokerEventHandler* handler : handlers) handler->onPublication(publication);
        return handlers.size();
    }

    void control(std::string_view target, const std::string& payload) {
        std::vector<BrokerEventHandler*> handlers;
        {
            std::lock_guard lock(mutex_);
            controls.push_back(payload);
            for (const auto& member : members_)
                if (target.empty() || member->name == target) handlers.push_back(member->handler);
        }
        for (BrokerEventHandler* handler : handlers) handler->onControl(payload);
    }

    std::uint64_t nextOffset(const std::string& channel) {
        std::lock_guard lock(mutex_);
        return ++offsets_[channel];
    }

    void heartbeat(NodeHeartbeat heartbeat) {
        std::lock_guard lock(mutex_);
        heartbeats_[heartbeat.name] = std::move(heartbeat);
    }
    std::vector<NodeHeartbeat> heartbeats() {
        std::lock_guard lock(mutex_);
        std::vector<NodeHeartbeat> list;
        for (const auto& [name, heartbeat] : heartbeats_) list.push_back(heartbeat);
        return list;
    }

    std::mutex mutex_;

private:
    std::vector<std::unique_ptr<Member>> members_;
    std::map<std::string, std::uint64_t> offsets_;
    std::map<std::string, NodeHeartbeat> heartbeats_;
};

class FakeClusterBroker final : public Broker {
public:
    explicit FakeClusterBroker(FakeCluster& cluster) : cluster_(cluster), member_(cluster.join()) {}

    const char* name() const override { return "fake-cluster"; }
    bool clustered() const override { return true; }
    void setEventHandler(BrokerEventHandler* handler, std::string nodeName) override {
        std::lock_guard lock(cluster_.mutex_);
        member_.handler = handler;
        member_.name = std::move(nodeName);
    }
    void publish(PublishRequest request, PublishCompletion done) override {
        if (cluster_.failure) return done(*cluster_.failure);
        auto publication = std::make_shared<Publication>();
        publication->channel = request.channel;
        publication->offset = cluster_.nextOffset(request.channel);
        publication->epoch = "fake";
        publication->mid = "m" + std::to_string(publication->offset);
        publication->data = std::move(request.data);
        publication->qos = request.qos;
        if (request.reportOrigin) publication->reportOrigin = std::make_shared<ReportOrigin>(*request.reportOrigin);
        std::uint64_t nodes = cluster_.deliver(publication);
        done(Published{publication, false, nodes});
    }
    void publishEvent(std::string_view channel, std::string frame) override {
        auto event = std::make_shared<Publication>();
        event->channel = std::string(channel);
        event->data = std::move(frame);
        event->event = true;
        cluster_.deliver(event);
    }
    void trimHistory(std::string_view, StreamPosition) override {}  // keeps no history
    void subscribe(std::string_view channel, SubscribeCompletion done) override {
        if (cluster_.failure) return done(*cluster_.failure);
        {
            std::lock_guard lock(cluster_.mutex_);
            member_.channels.insert(std::string(channel));
        }
        done(std::nullopt);
    }
    void unsubscribe(std::string_view channel) override {
        std::lock_guard lock(cluster_.mutex_);
        if (auto it = member_.channels.find(channel); it != member_.channels.end()) member_.channels.erase(it);
    }
    void history(std::string_view, HistoryQuery, HistoryCompletion done) override {
        if (cluster_.failure) return done(*cluster_.failure);
        done(HistoryPage{StreamPosition{0, "fake"}, {}});
    }
    EngineStats stats() const override { return {}; }
    std::vector<EngineShardHealth> health() const override {
        std::lock_guard lock(cluster_.mutex_);
        return cluster_.health;
    }
    void publishControl(std::string_view target, std::string payload) override { cluster_.control(target, payload); }
    void heartbeat(NodeHeartbeat heartbeat, std::chrono::milliseconds) override {
        cluster_.heartbeat(std::move(heartbeat));
    }
    void nodes(NodesCompletion done) override {
        if (cluster_.failure) return done(*cluster_.failure);
        done(cluster_.heartbeats());
    }

private:
    FakeCluster& cluster_;
    FakeCluster::Member& member_;
};

}  // namespace wspush::fakes
