// The engine seam for publishing: assigns offsets and fans publications out to every node.
// The in-memory engine (MemoryBroker) implements it now; a Redis engine implements the same
// contract for several nodes.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <variant>

#include "wspush/codes.h"
#include "wspush/publication.h"

namespace wspush {

// Receives what the broker delivers to this node.
//
// Thread affinity: called from whichever thread the broker delivers on (any thread for
// MemoryBroker: the publisher's); the handler must not block and must not call back into the
// broker. Ordering: for one channel, calls are made one at a time and in offset order.
class BrokerEventHandler {
public:
    virtual ~BrokerEventHandler() = default;
    virtual void onPublication(const PublicationPtr& publication) = 0;
};

struct BrokerError {
    ApiErrorCode code = ApiErrorCode::Internal;
    std::string message;
};

struct PublishRequest {
    PublishRequest(std::string channel_, std::string data_, int qos_ = 0, std::string mid_ = {},
                   std::shared_ptr<DeliveryReport> report_ = nullptr)
        : channel(std::move(channel_)),
          data(std::move(data_)),
          qos(qos_),
          mid(std::move(mid_)),
          report(std::move(report_)) {}

    std::string channel;  // already validated by the caller
    std::string data;     // compact JSON
    int qos = 0;
    std::string mid;                         // the publisher's own message id; empty: the engine makes one
    std::shared_ptr<DeliveryReport> report;  // travels with the publication on this node only
};

using PublishResult = std::variant<PublicationPtr, BrokerError>;
using PublishCompletion = std::function<void(PublishResult)>;
using PositionCompletion = std::function<void(std::variant<StreamPosition, BrokerError>)>;

class Broker {
public:
    virtual ~Broker() = default;

    // "memory", "redis": for /api/info and the startup log.
    virtual const char* name() const = 0;

    // Registers the node's handler. Called once, before any other member.
    virtual void setEventHandler(BrokerEventHandler* handler) = 0;

    // Appends `request` to its channel's stream: assigns the next offset, a mid and a timestamp,
    // delivers the publication to the handler of every node that subscribed to the channel, then
    // completes. Atomic per channel: two publishes never get the same offset and offsets have no gaps.
    // `done` may run on any thread, possibly before publish returns; callers dispatch to their own.
    virtual void publish(PublishRequest request, PublishCompletion done) = 0;

    // Node-level interest in a channel (the first local subscriber appeared / the last one left).
    // An engine that fans out across nodes (Redis) starts or stops receiving the channel here;
    // MemoryBroker delivers every publication to its one node and ignores them.
    virtual void subscribe(std::string_view channel) = 0;
    virtual void unsubscribe(std::string_view channel) = 0;

    // The channel's current position. `done` as for publish.
    virtual void position(std::string_view channel, PositionCompletion done) = 0;
};

}  // namespace wspush
