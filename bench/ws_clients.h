// The WebSocket side of the generator: a pool of long-lived subscribers (idle, fanout, publish)
// and the churn loops. Beast stays inside ws_clients.cpp.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common.h"

namespace bench {

struct SubscriberCounters {
    std::uint64_t connections = 0;  // planned
    std::uint64_t connected = 0;    // subscribed
    std::uint64_t failed = 0;       // never got subscribed (refused, handshake, error reply, timeout)
    std::uint64_t dropped = 0;      // closed after subscribing, before the end of the run
    std::uint64_t messages = 0;     // stamped messages received, duplicates included
    std::uint64_t unique = 0;       // messages with a sequence number above the last one seen
    std::uint64_t duplicates = 0;   // sequence number not above the last one seen (dup or reordered)
    std::uint64_t gaps = 0;         // sequence numbers skipped (lost, unless published with an error)
    std::uint64_t expected = 0;     // deliveries announced by expect()
    // QoS >= 1 (wspush): frames with "dup":true (a resend; one that repeats a sequence number
    // already seen counts here, not as a duplicate), answers sent (ack, rec, comp), the WebSocket
    // frames that carried them, and error replies received after subscribing (e.g. 113).
    std::uint64_t resent = 0;
    std::uint64_t answers = 0;
    std::uint64_t answerFrames = 0;
    std::uint64_t errorReplies = 0;
    std::map<int, std::uint64_t> dropCodes;  // close code of dropped connections (0: no close frame)
    std::string firstError;
    Histogram latency;      // publish stamp -> receive, ns (unique messages)
    Histogram connectTime;  // TCP connect -> subscribed, ns

    json toJson() const;
    static SubscriberCounters fromJson(const json& j);
    void merge(const SubscriberCounters& other);
};

// Connections with global indices [first, first + count): connection i subscribes to channel
// i % channels and lives on loop i % threads.
class SubscriberPool {
public:
    SubscriberPool(const Options& options, const Target& target, std::uint64_t first, std::uint64_t count);
    ~SubscriberPool();

    void start();            // starts the loops; connections open, paced by --connect-concurrency
    bool settled() const;    // every connection is subscribed or failed
    void abortConnecting();  // fails every connection not yet subscribed
    std::uint64_t connectedNow() const;
    std::uint64_t failedNow() const;

    // After publishing: how many messages each channel got. From then on the pool knows when
    // every connection has all of its messages (or is gone).
    void expect(const std::vector<std::uint64_t>& perChannel);
    bool complete() const;
    std::int64_t completeNs() const;  // when the last expected message arrived

    SubscriberCounters stop();  // stops the loops (connections stay open until destruction)

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

struct ChurnCounters {
    std::uint64_t cycles = 0;
    std::uint64_t failures = 0;
    std::map<std::string, std::uint64_t>
        failureKinds;  // step that failed: connect, handshake, subscribe, close, timeout
    std::string firstError;
    Histogram cycleTime;  // ns, successful cycles

    json toJson() const;
    static ChurnCounters fromJson(const json& j);
    void merge(const ChurnCounters& other);
};

// Runs `concurrency` connect/subscribe/disconnect loops on --threads event loops until `endNs`
// (cycles in progress finish, bounded by --connect-timeout); gives up at `deadlineNs`.
ChurnCounters runChurn(const Options& options, const Target& target, unsigned concurrency, unsigned workerIndex,
                       std::int64_t endNs, std::int64_t deadlineNs);

}  // namespace bench
