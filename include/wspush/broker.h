// The engine contract (v2): what the node needs from the engine that orders, keeps and fans out
// publications. The in-memory engine (MemoryBroker) implements it for one node; an engine for
// several nodes (RedisBroker) implements the same contract and must pass the same typed contract
// suite (tests/engine/broker_contract_test.cpp). Only Node calls it, and only server.cpp knows
// which engine runs.
//
// Completions: every `done` runs exactly once, on any thread (for MemoryBroker: synchronously on
// the caller's, before the call returns; for Redis: on the event loop it was started on). Callers dispatch
// to their own loop and never block or call back into the engine from inside a completion.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "wspush/codes.h"
#include "wspush/latency_histogram.h"
#include "wspush/publication.h"

namespace boost::asio {
class io_context;
}

namespace wspush {

// Receives what the engine delivers to this node.
//
// Thread affinity: called from whichever thread the engine delivers on (MemoryBroker: the
// publisher's); the handler must not block and must not call back into the engine.
// Ordering: for one channel, calls are made one at a time and in offset order, and a call for a
// publication is made before the publish of it completes.
class BrokerEventHandler {
public:
    virtual ~BrokerEventHandler() = default;
    // A publication published on this node with a DeliveryReport carries it (`report`); one
    // published on another node whose publisher waits for a report carries `reportOrigin`.
    virtual void onPublication(const PublicationPtr& publication) = 0;
    // A control message for this node (sent to it by name, or to every node): see
    // Broker::publishControl. No order is promised between control messages and publications.
    virtual void onControl(std::string_view payload) = 0;
};

// Why an engine call failed. `code` is the HTTP API code it maps to: Unavailable (503) when the
// engine's storage cannot be reached (retry later), Internal otherwise.
struct BrokerError {
    ApiErrorCode code = ApiErrorCode::Internal;
    std::string message;
};

// How a channel keeps its history: the namespace's `history_size` and `history_ttl`.
struct HistoryPolicy {
    std::size_t size = 0;  // publications kept; 0: no history
    std::chrono::milliseconds ttl{0};
    // 0: no bound. Otherwise the oldest publications go while those kept hold more than this many
    // bytes of data and mids (a user's inbox); the newest one always stays.
    std::size_t maxBytes = 0;
};

struct PublishRequest {
    std::string channel{};  // already validated by the caller
    std::string data{};     // compact JSON, never containing a raw newline
    int qos = 0;
    std::string mid{};  // the publisher's own message id; empty: the engine makes one
    HistoryPolicy history{};
    // Non-empty: a publish of this channel with the same key within `idempotencyWindow` is not
    // published again; it completes with the first one's publication and `duplicate` set.
    std::string idempotencyKey{};
    std::chrono::milliseconds idempotencyWindow{0};
    // Stays on this node: set on the publication handed to this node's handler, never kept in
    // history (a kept report would hold its waiting request for history_ttl). Engines of one node
    // (clustered() false) attach it; engines of several nodes ignore it and carry `reportOrigin`.
    std::shared_ptr<DeliveryReport> report{};
    // For engines of several nodes: handed, with the publication, to every node that receives it
    // (never kept in history), so that each of them reports back to the publishing node.
    std::optional<ReportOrigin> reportOrigin{};
};

struct Published {
    // For a duplicate: the first publication's channel, offset, epoch, mid and ts (no data).
    PublicationPtr publication;
    bool duplicate = false;
    // How many nodes (this one included) received it: the parts a delivery report waits for on
    // an engine of several nodes. Engines of one node answer 0 (their `report` is attached).
    std::uint64_t nodes = 0;
};

// A window of a channel's history. Forward (the default): offsets above `since`, ascending
// (`since` 0: from the oldest kept). Reverse: offsets below `since`, descending (`since` 0: from
// the newest). At most `limit` publications; 0 asks for the position alone.
struct HistoryQuery {
    std::uint64_t since = 0;
    std::size_t limit = 0;
    bool reverse = false;
};

struct HistoryPage {
    StreamPosition position;  // the channel's position when the window was read
    std::vector<PublicationPtr> publications;
};

// Publications and byte counts an engine holds, for /metrics. Engines of several nodes count
// what they see from this node (Redis: nothing of the history kept in Redis).
struct EngineStats {
    std::uint64_t historyPublications = 0;
    std::uint64_t historyBytes = 0;
    std::uint64_t streams = 0;
    // Engines of several nodes: publications this node found missing in what it received, and
    // how many such gaps it filled from history (the rest reach subscribers as lost state).
    std::uint64_t gapsFound = 0;
    std::uint64_t gapsRepaired = 0;
    std::uint64_t shardsDown = 0;  // storage shards not reachable now
    // Engines with storage shards (Redis): what each shard's commands cost, since the start.
    struct Shard {
        std::string name;                // e.g. "127.0.0.1:6379", or the Sentinel master's name
        bool up = false;                 // reachable now (EngineShardHealth::ok)
        LatencySnapshot commandLatency;  // command sent → reply read
        std::uint64_t errorReplies = 0;  // commands the server answered with an error
        std::uint64_t failures = 0;      // commands with no reply: not connected, lost, timed out
    };
    std::vector<Shard> shards;
};

// Whether the engine can reach one of its storage shards: for /healthz and /readyz.
struct EngineShardHealth {
    std::string shard;  // e.g. "127.0.0.1:6379"
    bool ok = false;
    std::string error;  // why not, when !ok
};

// What a node says about itself to the others, refreshed periodically (/api/nodes).
struct NodeHeartbeat {
    std::string name;
    std::string info;  // a JSON object, e.g. {"address":…,"connections":…}
};

using PublishResult = std::variant<Published, BrokerError>;
using PublishCompletion = std::function<void(PublishResult)>;
using SubscribeCompletion = std::function<void(std::optional<BrokerError>)>;
using HistoryCompletion = std::function<void(std::variant<HistoryPage, BrokerError>)>;
using NodesCompletion = std::function<void(std::variant<std::vector<NodeHeartbeat>, BrokerError>)>;

class Broker {
public:
    virtual ~Broker() = default;

    // "memory", "redis": for /api/info and the startup log.
    virtual const char* name() const = 0;

    // True when several nodes may share this engine: cluster-wide answers (/api/nodes, delivery
    // reports with `nodes`) come from it; false for an engine of one node.
    virtual bool clustered() const = 0;

    // Registers the node's handler and the node's name (unique among the nodes sharing the
    // engine: control messages are addressed by it). Called once, before any other member.
    virtual void setEventHandler(BrokerEventHandler* handler, std::string nodeName) = 0;

    // Starts the engine's own work (connections, timers) on `loop`: an engine that does I/O does
    // all of it there, on that loop's thread (docs/architecture.md, rule 6). Called once, after
    // setEventHandler and before any publish. stop() ends it (idempotent) and completes what is
    // pending with errors; call it from another thread while `loop` still runs, or once the
    // loop's threads have returned, and before `loop` is destroyed.
    virtual void start(boost::asio::io_context& /*loop*/) {}
    virtual void stop() {}

    // Appends `request` to its channel's stream and hands it to every subscribed node's handler,
    // then completes. Atomic per channel: the idempotency check, the next offset, the history
    // append and the hand-off happen as one step, so offsets are gap-free within an epoch, the
    // history holds exactly the offsets handed off, and a duplicate key never takes an offset.
    // The stream (offset, epoch, history) outlives its subscribers while it holds history; a
    // stream that was forgotten comes back under a new epoch, with offsets from 1.
    virtual void publish(PublishRequest request, PublishCompletion done) = 0;

    // Hands `frame` to the handler of every node subscribed to `channel`, as a publication with
    // `event` set and `data` = frame (this node's handler synchronously for an engine of one node).
    // At most once, no history, no offset, no order with the channel's publications: for join and
    // leave pushes, which a client that missed them recovers by asking for presence.
    virtual void publishEvent(std::string_view channel, std::string frame) = 0;

    // Drops the publications of `channel`'s history up to and including `upTo.offset` when
    // `upTo.epoch` is the stream's epoch (nothing otherwise): what every reader has got (a user's
    // inbox, once each of its devices acknowledged it). The position is not changed. At most
    // once, no answer: a later trim covers one that was lost.
    virtual void trimHistory(std::string_view channel, StreamPosition upTo) = 0;

    // Node-level interest in a channel (the node's first local subscriber appeared / its last one
    // left). `done` runs once this node receives every publication of the channel made after it
    // runs (Redis: once SUBSCRIBE is confirmed), or with an error (then nothing is received).
    // The node serializes subscribe and unsubscribe per channel: never two subscribes of one
    // channel without an unsubscribe between them. unsubscribe never fails and never blocks.
    virtual void subscribe(std::string_view channel, SubscribeCompletion done) = 0;
    virtual void unsubscribe(std::string_view channel) = 0;

    // Reads a window of the channel's history and its position, atomically with respect to
    // publishing: the page and the position describe one moment of the stream. A channel without
    // history answers an empty page with its position ({0, new epoch} for a channel never seen).
    virtual void history(std::string_view channel, HistoryQuery query, HistoryCompletion done) = 0;

    virtual EngineStats stats() const = 0;

    // One entry per storage shard (none for an engine without storage of its own). Thread-safe.
    virtual std::vector<EngineShardHealth> health() const = 0;

    // Hands `payload` to the handler's onControl on node `target`, or on every node (this one
    // included) when `target` is empty. At most once, no acknowledgement, no order across nodes:
    // for work that tolerates a lost message or has its own timeout (delivery reports, a
    // disconnect request of the API).
    virtual void publishControl(std::string_view target, std::string payload) = 0;

    // Keeps `heartbeat` for `ttl`; nodes() lists every heartbeat not expired, this node's among them.
    virtual void heartbeat(NodeHeartbeat heartbeat, std::chrono::milliseconds ttl) = 0;
    virtual void nodes(NodesCompletion done) = 0;
};

}  // namespace wspush
