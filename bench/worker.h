// Subscriber workers and the line protocol between them and the controller.
//
// A worker owns a share of the connections (a SubscriberPool, or churn loops). It runs either on a
// thread of the controller's process (--processes 1) or in a forked process (--processes P > 1,
// for more connections than one process may hold descriptors). Either way it talks to the
// controller through two pipes, one JSON object per line:
//
//   worker -> controller  {"event":"ready","connected":..,"failed":..,"cpu":..}
//                         {"event":"complete","t":<ns>}          every expected message arrived
//                         {"event":"final","counters":{..},"cpu":..}
//   controller -> worker  {"cmd":"expect","per_channel":[..]}    after publishing
//                         {"cmd":"stop"}
//
// A worker whose command pipe reaches EOF (the controller died) exits at once.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common.h"

namespace bench {

struct WorkerSpec {
    unsigned index = 0;
    std::uint64_t first = 0;        // subscribers: global index of the first connection
    std::uint64_t count = 0;        // subscribers: how many
    unsigned churnConcurrency = 0;  // churn: parallel loops
    bool ownProcess = false;        // report own CPU (getrusage) in "ready"/"final"
    std::int64_t connectEndNs = 0;  // subscribers: connections not subscribed by then fail
    std::int64_t churnEndNs = 0;
    std::int64_t deadlineNs = 0;
};

// Runs the worker to the end (returns after sending "final", or on EOF of commandFd).
void runWorker(const Options& options, const Target& target, const WorkerSpec& spec, int commandFd, int reportFd);

// Reads JSON lines from a descriptor without blocking longer than asked.
class LineReader {
public:
    explicit LineReader(int fd) : fd_(fd) {}
    int fd() const { return fd_; }
    // Reads what is available (waiting up to timeoutMs for something); false on EOF/error.
    bool fill(int timeoutMs);
    // The next complete line as JSON, if any (malformed lines are skipped).
    std::optional<json> next();
    bool eof() const { return eof_; }

private:
    int fd_;
    std::string buffer_;
    bool eof_ = false;
};

bool writeLine(int fd, const json& message);

// The controller's side of one worker.
struct WorkerHandle {
    WorkerSpec spec;
    pid_t pid = -1;
    std::thread thread;
    int commandFd = -1;  // controller writes
    std::optional<LineReader> reports;
    std::optional<json> ready;
    std::optional<json> final;
    bool complete = false;
    std::int64_t completeNs = 0;
    bool gone = false;  // EOF on its report pipe
};

class Workers {
public:
    // Starts one worker per spec: threads when there is one spec, processes otherwise.
    // Must be called before the controller starts any thread of its own (fork).
    void spawn(const Options& options, const Target& target, const std::vector<WorkerSpec>& specs);
    void broadcast(const json& command);
    // Reads reports until `done()` holds or `deadlineNs` passes; returns done().
    template <class Predicate>
    bool waitUntil(Predicate done, std::int64_t deadlineNs) {
        while (!done()) {
            if (nowNs() >= deadlineNs || allGone()) return done();
            poll(static_cast<int>(
                std::min<std::int64_t>(50, std::max<std::int64_t>(1, (deadlineNs - nowNs()) / 1'000'000))));
        }
        return true;
    }
    bool allReady() const;
    bool allComplete() const;
    bool allFinal() const;
    bool allGone() const;
    std::vector<WorkerHandle>& handles() { return handles_; }
    void killAll();  // SIGKILL to worker processes (the deadline)
    void reap();     // waits for worker processes / joins threads (bounded)
    std::vector<pid_t> pids() const;

private:
    void poll(int timeoutMs);
    std::vector<WorkerHandle> handles_;
};

}  // namespace bench
