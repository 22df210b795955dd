// wspush-bench: pieces shared by every part of the load generator that do not need Asio:
// options, the clock, the latency histogram, /proc readers, the target protocols, the latency
// stamp carried in every payload, and the report (table + one JSON line).
#pragma once

#include <time.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace bench {

using json = nlohmann::ordered_json;

// CLOCK_MONOTONIC in nanoseconds: the same clock in every process of the machine, so a stamp
// written by the publisher process can be compared with the arrival time in a worker process.
inline std::int64_t nowNs() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}
inline std::int64_t secondsToNs(double s) {
    return static_cast<std::int64_t>(s * 1e9);
}

// ---------------------------------------------------------------------------------------------
// Options

struct Options {
    std::string scenario;  // idle | fanout | publish | churn | recover
    std::string host = "127.0.0.1";
    unsigned port = 8080;
    unsigned apiPort = 0;              // 0: same as port
    std::string target = "wspush";     // wspush | nchan | ws
    unsigned threads = 1;              // event loops per process
    unsigned processes = 1;            // subscriber worker processes (1: in-process)
    std::uint64_t connections = 1000;  // recover: 1
    std::uint64_t channels = 1;
    double duration = 10;  // idle: hold time; publish/churn: run time; fanout: see messages
    std::uint64_t messages = 1000;
    bool messagesSet = false;
    std::size_t size = 100;       // total payload bytes
    double rate = 0;              // publications per second, 0: as fast as allowed
    unsigned inflight = 8;        // fanout: outstanding publish requests at most
    unsigned publishers = 1;      // HTTP keep-alive connections
    unsigned pipeline = 0;        // requests in flight per publisher connection (0: auto)
    double timeout = 30;          // fanout: wait for deliveries after the last publish; recover: for recovery
    unsigned concurrency = 10;    // churn: parallel connect/subscribe/disconnect loops
    bool uniqueChannels = false;  // churn: a new channel name per cycle
    bool deflate = false;         // offer permessage-deflate
    unsigned qos = 0;             // wspush: the publications' QoS (0, 1 or 2); subscribers answer 1 and 2
    unsigned batch = 1;           // wspush, fanout and recover: publications per request (POST /api/batch when > 1)
    int serverPid = 0;            // 0: no server RSS/CPU figures; else the first of serverPids
    std::vector<int> serverPids;  // --server-pid A,B,...: RSS and CPU figures are their sums
    // --servers: the WebSocket endpoints the subscribers spread over (idle, fanout), in blocks:
    // connection i goes to servers[i * S / N]. Empty: --host:--port only. Publishing still goes to
    // --host:--api-port.
    std::vector<std::pair<std::string, unsigned>> servers;
    // Source addresses (e.g. 127.0.0.2, 127.0.0.3): subscriber connections take them in turn,
    // so that more than one address's ~28,000 ephemeral ports serve one server address. Empty:
    // the kernel's choice.
    std::vector<std::string> localAddresses;
    std::string channelPrefix = "bench";
    std::string token;                  // wspush: sent in every `connect` ("" : none)
    unsigned connectConcurrency = 256;  // handshakes in progress at once, per process
    double connectTimeout = 10;         // per connection: TCP + WebSocket handshake + subscribe
    double settle = 1;                  // idle: wait after the last subscription before measuring RSS
    double maxTime = 0;                 // global deadline in seconds (0: computed from the options)
    std::string runTag;                 // set by main: makes --unique-channels names unique across runs
};

// Parses argv; on error returns the message (the caller prints usage).
std::optional<std::string> parseOptions(int argc, char** argv, Options& options);
extern const char* kUsage;

std::string channelName(const Options& options, std::uint64_t index);
// Which of options.servers (0 when there are none) subscriber connection `index` uses.
std::size_t serverIndexOf(const Options& options, std::uint64_t index);

// ---------------------------------------------------------------------------------------------
// Latency histogram: log-linear buckets (HDR-like, 1/128 relative precision), fixed size,
// allocated once. Values are nanoseconds. One per event-loop thread, merged at the end.

class Histogram {
public:
    static constexpr int kSubBits = 7;
    static constexpr std::uint64_t kSub = 1u << kSubBits;
    static constexpr int kMaxBits = 42;  // ~73 minutes in ns; larger values land in the last bucket
    static constexpr std::size_t kBuckets = kSub + (kMaxBits - kSubBits) * kSub;

    Histogram() : buckets_(kBuckets, 0) {}

    void record(std::uint64_t value) {
        ++buckets_[index(value)];
        ++count_;
        sum_ += value;
        if (value > max_) max_ = value;
        if (value < min_) min_ = value;
    }
    void merge(const Histogram& other);

    std::uint64_t count() const { return count_; }
    std::uint64_t max() const { return count_ ? max_ : 0; }
    std::uint64_t min() const { return count_ ? min_ : 0; }
    double mean() const { return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0; }
    // The value below which `percent` % of the recorded values fall (the bucket's upper edge, capped by max).
    std::uint64_t percentile(double percent) const;

    json toJson() const;  // sparse: {"count","sum","min","max","b":[[i,n],...]}
    static Histogram fromJson(const json& j);

private:
    static std::size_t index(std::uint64_t v) {
        if (v < kSub) return static_cast<std::size_t>(v);
        int msb = 63 - __builtin_clzll(v);
        if (msb >= kMaxBits) return kBuckets - 1;
        int shift = msb - kSubBits;
        return static_cast<std::size_t>(kSub + static_cast<std::uint64_t>(shift) * kSub + ((v >> shift) - kSub));
    }
    static std::uint64_t upperEdge(std::size_t i);

    std::vector<std::uint64_t> buckets_;
    std::uint64_t count_ = 0;
    std::uint64_t sum_ = 0;
    std::uint64_t max_ = 0;
    std::uint64_t min_ = ~std::uint64_t{0};
};

// ---------------------------------------------------------------------------------------------
// /proc and getrusage

std::optional<std::uint64_t> readRssBytes(int pid);  // VmRSS of /proc/PID/status
std::optional<double> readCpuSeconds(int pid);       // utime+stime of /proc/PID/stat
double selfCpuSeconds();                             // getrusage(RUSAGE_SELF): user+system
// Time the threads of PID spent runnable but waiting for a CPU (sum of /proc/PID/task/*/schedstat,
// second field). A large value next to a small CPU figure means the process was starved.
std::optional<double> readRunQueueWaitSeconds(int pid);

// Raises RLIMIT_NOFILE to its hard limit; returns the resulting soft limit.
std::uint64_t raiseDescriptorLimit();

// ---------------------------------------------------------------------------------------------
// Target protocols. Everything that differs between the servers under test is here; the
// clients only call these.

struct Target {
    std::string_view name;
    // WebSocket request-target of a subscriber of `channel`.
    std::string (*subscribeTarget)(std::string_view channel);
    // Sent right after the WebSocket handshake ("" when subscribing is implied by the URL);
    // `token`: the connection token (--token), "" for none.
    std::string (*subscribeFrame)(std::string_view channel, std::string_view token);
    // True: the subscription counts once a frame containing "type":"subscribed" arrives (a
    // frame with "type":"error" or "type":"disconnect" fails it). False: the handshake is enough.
    bool waitsForSubscribed;
    // Appends the HTTP request-target of a publication to `channel`.
    void (*appendPublishTarget)(std::string& out, std::string_view channel);
    // Appends the HTTP body publishing `payload` (a JSON object) to `channel` with QoS `qos`
    // (only wspush has QoS; the others are refused --qos 1/2 by parseOptions).
    void (*appendPublishBody)(std::string& out, std::string_view channel, std::string_view payload, unsigned qos);
};

const Target* findTarget(std::string_view name);

// ---------------------------------------------------------------------------------------------
// The latency stamp. Every published payload is {"t":<CLOCK_MONOTONIC ns at send>,"s":<seq>,"p":"xx..."}
// padded to the requested size; receivers find it by scanning bytes (no JSON parser), in either
// key order (older wspush versions re-serialized the payload with sorted keys: {"p":"xx..","s":<seq>,"t":<ns>}).

void appendPayload(std::string& out, std::int64_t sentNs, std::uint64_t seq, std::size_t size);
// Decimal digits of `v`, without a heap allocation of their own.
void appendUnsigned(std::string& out, std::uint64_t v);

// Finds the next stamp in [begin, end); returns the position after it, or nullptr when none is left.
const char* findStamp(const char* begin, const char* end, std::int64_t& sentNs, std::uint64_t& seq);

// ---------------------------------------------------------------------------------------------
// Report: one row per figure in a human table, and the same figures in one JSON line.

class Report {
public:
    explicit Report(std::string scenario);
    // A figure: shown in the table as `label  text`, and in the JSON line under `key`.
    void add(const std::string& key, json value, std::string label, std::string text);
    // JSON only.
    void addJson(const std::string& key, json value) { json_[key] = std::move(value); }
    // Table only (a heading or a note).
    void note(std::string label, std::string text) { rows_.emplace_back(std::move(label), std::move(text)); }
    void print() const;  // table, then the JSON line, on stdout
    bool measured() const { return json_.value("measured", false); }

private:
    json json_;
    std::vector<std::pair<std::string, std::string>> rows_;
};

// Formatting helpers for the table.
std::string fmtCount(double v);  // 1234567 -> "1,234,567"
std::string fmtDouble(double v, int decimals);
std::string fmtBytes(double bytes);  // "12.3 KiB"
double round3(double v);             // for the JSON line

}  // namespace bench
