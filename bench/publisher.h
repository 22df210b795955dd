// The HTTP publisher: keep-alive HTTP/1.1 connections, optional pipelining, a fixed rate or as
// fast as the in-flight bound allows. Plain Asio and a hand-written response scanner: the
// generator must cost less per message than the server it measures.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common.h"

namespace bench {

struct PublishPlan {
    std::uint64_t messages = 0;   // 0: no count limit (then durationNs bounds the run)
    std::int64_t durationNs = 0;  // 0: no time limit
    double rate = 0;              // per second over all connections; 0: as fast as allowed
    unsigned connections = 1;
    unsigned pipeline = 1;  // requests in flight per connection
    unsigned inflight = 1;  // requests in flight over all connections
    std::size_t size = 100;
    unsigned batch = 1;  // publications per request (POST /api/batch when > 1)
    std::uint64_t channels = 1;
    std::int64_t deadlineNs = 0;  // abandon the run (aborted = true) at this time
};

struct PublishResult {
    std::uint64_t sent = 0;         // requests written (resends included)
    std::uint64_t ok = 0;           // publications answered 2xx (a batch counts its publications)
    std::uint64_t errors = 0;       // other answers
    std::uint64_t unconfirmed = 0;  // no answer: the connection broke with the request in flight
    std::uint64_t resent = 0;       // re-sent after the server closed a keep-alive connection
    std::uint64_t reconnects = 0;
    std::vector<std::uint64_t> okPerChannel;
    std::map<unsigned, std::uint64_t> statusCounts;
    std::string firstError;
    std::int64_t startNs = 0;
    std::int64_t endNs = 0;
    double maxLagMs = 0;  // fixed rate: how far behind schedule a request left
    Histogram latency;    // request written -> response parsed, ns
    bool aborted = false;
    std::string abortReason;
};

// Runs on the calling thread until the plan is done, every request answered, or the deadline.
PublishResult runPublisher(const Options& options, const Target& target, const PublishPlan& plan);

}  // namespace bench
