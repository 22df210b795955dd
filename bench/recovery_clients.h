// The clients of the recover scenario (wspush only). Each one connects, subscribes, notes the
// channel's position (offset, epoch) from `subscribed`, and unsubscribes: it is "parked" while
// the controller publishes what it will miss. Then every client subscribes again at once with
// "since" = that position and checks that it gets exactly the publications since+1 .. T, in
// order, after `"recovered":true` (docs/protocol.md, subscribe). Beast stays inside
// recovery_clients.cpp.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common.h"

namespace bench {

struct RecoveryCounters {
    std::uint64_t clients = 0;    // planned
    std::uint64_t parked = 0;     // subscribed, position noted, unsubscribed
    std::uint64_t recovered = 0;  // "recovered":true and exactly since+1 .. T, in order
    std::uint64_t failed = 0;     // clients that failed, in whichever phase (each counted once)
    // The step or check that failed, per client: connect, handshake, subscribe, unsubscribe,
    // delivered_while_unsubscribed, resubscribe, not_recovered, epoch, position, order, gap,
    // duplicate, payload, beyond_last, closed, timeout.
    std::map<std::string, std::uint64_t> failureKinds;
    std::string firstError;
    std::uint64_t messages = 0;   // recovered messages received, over all clients
    std::uint64_t missedMin = 0;  // T - since, over the recovered clients
    std::uint64_t missedMax = 0;
    std::vector<std::int64_t> recoverNs;     // recovered clients: subscribe sent -> message T read
    std::vector<std::int64_t> subscribedNs;  // recovered clients: subscribe sent -> `subscribed` read
    std::int64_t firstSendNs = 0;            // the first of the second subscribes left
    std::int64_t lastDoneNs = 0;             // the last recovered client got its message T
};

// Clients [0, count): client i uses channel i % --channels and lives on loop i % --threads.
// Not thread-safe: one controller thread calls these, in this order.
class RecoveryClients {
public:
    RecoveryClients(const Options& options, const Target& target, std::uint64_t count);
    ~RecoveryClients();

    // Starts the loops; clients connect (paced by --connect-concurrency), subscribe, note the
    // position, unsubscribe. A client that takes longer than --connect-timeout for all that fails.
    void start();
    bool settled() const;  // every client is parked or has failed
    std::uint64_t parkedNow() const;
    void abortConnecting();  // fails every client not parked yet

    // Every parked client subscribes again with since = its position. `perChannel`: publications
    // made (2xx) per channel since the clients parked; a client whose `subscribed` reply has an
    // offset T other than since + that count fails ("position").
    void resubscribe(const std::vector<std::uint64_t>& perChannel);
    bool finished() const;  // every client has recovered or failed

    // Stops the loops. Clients not finished by then fail ("timeout"); without resubscribe(), clients
    // still parked count neither as recovered nor as failed.
    RecoveryCounters stop();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace bench
