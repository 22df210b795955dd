#include "common.h"

#include <arpa/inet.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

namespace bench {

// ---------------------------------------------------------------------------------------------
// Options

const char* kUsage = R"(usage: wspush-bench SCENARIO [options]

scenarios:
  idle      hold --connections subscribed connections over --channels for --duration seconds;
            with --server-pid, the server's RSS per connection
  fanout    --connections subscribers over --channels; publish --messages of --size bytes at
            --rate per second (0: as fast as --inflight allows); deliveries, loss, latency,
            server CPU per delivery
  publish   HTTP publish requests for --duration seconds on --publishers keep-alive connections
            with --pipeline requests in flight each; one subscriber; req/s and server CPU
  churn     for --duration seconds, --concurrency loops of connect + subscribe + disconnect
  recover   wspush: --connections clients (default 1) subscribe, note the channel's position and
            unsubscribe; --messages publications of --size bytes are made; then all clients
            subscribe again at once with "since" and must recover exactly what they missed.
            Time per client to the last recovered message. The server must keep history
            (channel_defaults.history_size, recovery_max >= --messages; see bench/README.md)

target and connection:
  --target wspush|nchan|ws   server protocol (default wspush)
  --host H                   default 127.0.0.1
  --port N                   WebSocket port (default 8080)
  --api-port N               HTTP publish port (default: --port)
  --server-pid PID[,PID...]  read the server's RSS and CPU from /proc (optional); with several
                             pids (several nodes), the figures are their sums
  --servers H:P,H:P,...      idle, fanout: spread the subscribers over these WebSocket endpoints
                             (several nodes sharing a Redis engine), in contiguous blocks so that
                             every channel has subscribers on each; publishing still goes to
                             --host:--api-port (default: the first of these)
  --local-addresses A,B,...  idle, fanout: bind subscriber connections to these source
                             addresses in turn (loopback: 127.0.0.2, ...), each giving its own
                             ~28,000 ephemeral ports, for more connections to one server address
  --deflate                  offer permessage-deflate
  --qos 0|1|2                wspush, fanout and publish: publish with this QoS (default 0);
                             subscribers answer ack (1) or rec/comp (2)
  --batch N                  wspush, fanout and recover: N consecutive publications of a channel
                             per request (POST /api/batch; default 1): bursts of N for every
                             subscriber
  --channel-prefix P         channel names are P-0, P-1, ... (default bench)
  --token T                  wspush: send this connection token (a JWT) in every connect

load:
  --connections N            subscriber connections (default 1000; recover 1)
  --channels C               channels; connection i subscribes to channel i % C (default 1)
  --duration S               seconds (default 10)
  --messages M               fanout, recover: publications (default 1000; fanout: rate x duration
                             when only --rate and --duration are given)
  --size B                   payload bytes, stamp included (default 100)
  --rate R                   publications per second, round-robin over channels (0: max)
  --inflight K               fanout, recover: outstanding publish requests at most (default 8)
  --publishers P             HTTP keep-alive publisher connections (default 1)
  --pipeline K               requests in flight per publisher connection (default: fanout and
                             recover inflight/publishers, publish 1)
  --timeout S                fanout: wait this long for deliveries after publishing; recover: for
                             every client to recover (default 30)
  --concurrency W            churn: parallel loops (default 10)
  --unique-channels          churn: a never-used channel name in every cycle

generator:
  --threads T                event loops per process (default 1)
  --processes P              fork P subscriber worker processes with N/P connections each
  --connect-concurrency K    handshakes in progress at once per process (default 256)
  --connect-timeout S        per connection: connect + handshake + subscribe (default 10)
  --settle S                 idle: wait before the second RSS reading (default 1)
  --max-time S               hard deadline for the whole run (default: computed)

Prints a table, then one line of JSON starting with {"scenario":.
)";

namespace {

bool parseUnsigned(const std::string& text, std::uint64_t max, std::uint64_t& out) {
    if (text.empty() || text.size() > 19 || text.find_first_not_of("0123456789") != std::string::npos) return false;
    out = std::stoull(text);
    return out <= max;
}

bool parseSeconds(const std::string& text, double max, double& out) {
    char* end = nullptr;
    errno = 0;
    double v = std::strtod(text.c_str(), &end);
    if (text.empty() || errno != 0 || end != text.c_str() + text.size() || !std::isfinite(v) || v < 0 || v > max)
        return false;
    out = v;
    return true;
}

}  // namespace

std::optional<std::string> parseOptions(int argc, char** argv, Options& o) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty()) return "a scenario is required";
    bool pipelineSet = false;
    bool channelsSet = false;
    bool connectionsSet = false;
    bool hostSet = false;
    bool portSet = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        if (arg == "-h" || arg == "--help") return std::string();
        if (arg.rfind("--", 0) != 0) {
            if (!o.scenario.empty()) return "unexpected argument \"" + arg + "\"";
            o.scenario = arg;
            continue;
        }
        if (arg == "--deflate") {
            o.deflate = true;
            continue;
        }
        if (arg == "--unique-channels") {
            o.uniqueChannels = true;
            continue;
        }
        static const char* const kValued[] = {"--host",
                                              "--servers",
                                              "--local-addresses",
                                              "--target",
                                              "--channel-prefix",
                                              "--token",
                                              "--port",
                                              "--api-port",
                                              "--threads",
                                              "--processes",
                                              "--connections",
                                              "--channels",
                                              "--messages",
                                              "--size",
                                              "--inflight",
                                              "--publishers",
                                              "--pipeline",
                                              "--concurrency",
                                              "--connect-concurrency",
                                              "--server-pid",
                                              "--rate",
                                              "--duration",
                                              "--timeout",
                                              "--connect-timeout",
                                              "--settle",
                                              "--max-time",
                                              "--qos",
                                              "--batch"};
        if (std::find(std::begin(kValued), std::end(kValued), arg) == std::end(kValued))
            return "unknown option \"" + arg + "\"";
        if (i + 1 >= args.size()) return arg + " needs a value";
        const std::string& v = args[++i];
        std::uint64_t n = 0;
        double d = 0;
        auto number = [&](std::uint64_t min, std::uint64_t max) -> bool {
            return parseUnsigned(v, max, n) && n >= min;
        };
        auto bad = [&](const std::string& range) { return arg + ": invalid value \"" + v + "\" (" + range + ")"; };
        if (arg == "--host") {
            o.host = v;
            hostSet = true;
        } else if (arg == "--servers") {
            o.servers.clear();
            std::size_t start = 0;
            while (start <= v.size()) {
                std::size_t comma = v.find(',', start);
                std::string item = v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
                std::size_t colon = item.rfind(':');
                std::uint64_t p = 0;
                if (colon == std::string::npos || colon == 0 || !parseUnsigned(item.substr(colon + 1), 65535, p) ||
                    p == 0)
                    return bad("host:port,host:port,...");
                o.servers.emplace_back(item.substr(0, colon), static_cast<unsigned>(p));
                if (o.servers.size() > 64) return bad("at most 64 servers");
                if (comma == std::string::npos) break;
                start = comma + 1;
            }
        } else if (arg == "--local-addresses") {
            o.localAddresses.clear();
            std::size_t start = 0;
            while (start <= v.size()) {
                std::size_t comma = v.find(',', start);
                std::string item = v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
                in_addr parsed{};
                if (inet_pton(AF_INET, item.c_str(), &parsed) != 1) return bad("IPv4 addresses A,B,...");
                o.localAddresses.push_back(item);
                if (o.localAddresses.size() > 64) return bad("at most 64 addresses");
                if (comma == std::string::npos) break;
                start = comma + 1;
            }
        } else if (arg == "--target")
            o.target = v;
        else if (arg == "--channel-prefix") {
            if (v.empty() || v.size() > 64 ||
                v.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") !=
                    std::string::npos)
                return bad("1-64 of [A-Za-z0-9_.-]");
            o.channelPrefix = v;
        } else if (arg == "--token") {
            if (v.empty() || v.size() > 8192 ||
                v.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") !=
                    std::string::npos)
                return bad("a JWT: base64url parts joined by '.'");
            o.token = v;
        } else if (arg == "--port") {
            if (!number(1, 65535)) return bad("1-65535");
            o.port = static_cast<unsigned>(n);
            portSet = true;
        } else if (arg == "--api-port") {
            if (!number(1, 65535)) return bad("1-65535");
            o.apiPort = static_cast<unsigned>(n);
        } else if (arg == "--threads") {
            if (!number(1, 64)) return bad("1-64");
            o.threads = static_cast<unsigned>(n);
        } else if (arg == "--processes") {
            if (!number(1, 64)) return bad("1-64");
            o.processes = static_cast<unsigned>(n);
        } else if (arg == "--connections") {
            if (!number(1, 2'000'000)) return bad("1-2000000");
            o.connections = n;
            connectionsSet = true;
        } else if (arg == "--channels") {
            if (!number(1, 1'000'000)) return bad("1-1000000");
            o.channels = n;
            channelsSet = true;
        } else if (arg == "--messages") {
            if (!number(1, 1'000'000'000)) return bad("1-1e9");
            o.messages = n;
            o.messagesSet = true;
        } else if (arg == "--size") {
            if (!number(1, 16 * 1024 * 1024)) return bad("1-16777216");
            o.size = n;
        } else if (arg == "--inflight") {
            if (!number(1, 100'000)) return bad("1-100000");
            o.inflight = static_cast<unsigned>(n);
        } else if (arg == "--publishers") {
            if (!number(1, 1000)) return bad("1-1000");
            o.publishers = static_cast<unsigned>(n);
        } else if (arg == "--pipeline") {
            if (!number(1, 10'000)) return bad("1-10000");
            o.pipeline = static_cast<unsigned>(n);
            pipelineSet = true;
        } else if (arg == "--concurrency") {
            if (!number(1, 100'000)) return bad("1-100000");
            o.concurrency = static_cast<unsigned>(n);
        } else if (arg == "--connect-concurrency") {
            if (!number(1, 100'000)) return bad("1-100000");
            o.connectConcurrency = static_cast<unsigned>(n);
        } else if (arg == "--qos") {
            if (!number(0, 2)) return bad("0, 1 or 2");
            o.qos = static_cast<unsigned>(n);
        } else if (arg == "--batch") {
            if (!number(1, 1000)) return bad("1-1000");
            o.batch = static_cast<unsigned>(n);
        } else if (arg == "--server-pid") {
            o.serverPids.clear();
            std::size_t start = 0;
            while (true) {
                std::size_t comma = v.find(',', start);
                std::string item = v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
                if (!parseUnsigned(item, 1u << 30, n) || n < 1 || o.serverPids.size() >= 64)
                    return bad("a process id, or several separated by commas");
                o.serverPids.push_back(static_cast<int>(n));
                if (comma == std::string::npos) break;
                start = comma + 1;
            }
            o.serverPid = o.serverPids.front();
        } else if (arg == "--rate") {
            if (!parseSeconds(v, 1e8, d)) return bad("0-1e8");
            o.rate = d;
        } else if (arg == "--duration") {
            if (!parseSeconds(v, 86400, d) || d <= 0) return bad("seconds, >0, at most 86400");
            o.duration = d;
        } else if (arg == "--timeout") {
            if (!parseSeconds(v, 86400, d)) return bad("seconds, at most 86400");
            o.timeout = d;
        } else if (arg == "--connect-timeout") {
            if (!parseSeconds(v, 3600, d) || d <= 0) return bad("seconds, >0");
            o.connectTimeout = d;
        } else if (arg == "--settle") {
            if (!parseSeconds(v, 3600, d)) return bad("seconds");
            o.settle = d;
        } else if (arg == "--max-time") {
            if (!parseSeconds(v, 86400 * 2, d) || d <= 0) return bad("seconds, >0");
            o.maxTime = d;
        } else
            return "unknown option \"" + arg + "\"";
    }
    if (o.scenario.empty()) return "a scenario is required";
    if (o.scenario != "idle" && o.scenario != "fanout" && o.scenario != "publish" && o.scenario != "churn" &&
        o.scenario != "recover")
        return "unknown scenario \"" + o.scenario + "\"";
    if (!findTarget(o.target)) return "unknown target \"" + o.target + "\" (wspush, nchan or ws)";
    if (!o.servers.empty()) {
        if (o.scenario != "idle" && o.scenario != "fanout") return "--servers applies to idle and fanout";
        if (!hostSet) o.host = o.servers.front().first;
        if (!portSet) o.port = o.servers.front().second;
    }
    if (!o.localAddresses.empty() && o.scenario != "idle" && o.scenario != "fanout")
        return "--local-addresses applies to idle and fanout";
    if (o.apiPort == 0) o.apiPort = o.port;
    if (o.qos > 0 && o.target != "wspush") return "--qos 1 and 2 need --target wspush";
    if (!o.token.empty() && o.target != "wspush") return "--token needs --target wspush";
    if (o.scenario == "recover") {
        if (o.target != "wspush") return "recover needs --target wspush (nchan and ws have no recovery)";
        if (o.processes != 1) return "recover runs its clients in one process (--processes 1)";
        if (!connectionsSet) o.connections = 1;
    }
    if (o.batch > 1 && (o.target != "wspush" || (o.scenario != "fanout" && o.scenario != "recover")))
        return "--batch applies to fanout and recover with --target wspush";
    if (o.qos > 0 && o.scenario != "fanout" && o.scenario != "publish") return "--qos applies to fanout and publish";
    // Channel c is published over connection c % publishers (per-channel order): the publish
    // scenario needs at least one channel per publisher connection to use them all.
    if (o.scenario == "publish" && !channelsSet) o.channels = o.publishers;
    if (o.channels > o.connections && o.scenario != "publish" && o.scenario != "churn")
        return "--channels must not exceed --connections";
    if (o.scenario == "fanout" && !o.messagesSet && o.rate > 0) {
        // "--rate 50 --duration 5": 250 messages.
        double m = std::floor(o.rate * o.duration);
        o.messages = static_cast<std::uint64_t>(std::max(1.0, m));
    }
    if (!pipelineSet) {
        if (o.scenario == "fanout" || o.scenario == "recover")
            o.pipeline = (o.inflight + o.publishers - 1) / o.publishers;
        else
            o.pipeline = 1;
    }
    if (o.processes > 1 && o.connections < o.processes) return "--processes must not exceed --connections";
    return std::nullopt;
}

std::string channelName(const Options& options, std::uint64_t index) {
    return options.channelPrefix + "-" + std::to_string(index);
}

std::size_t serverIndexOf(const Options& options, std::uint64_t index) {
    if (options.servers.size() < 2 || options.connections == 0) return 0;
    auto s = static_cast<unsigned __int128>(index) * options.servers.size() / options.connections;
    return std::min<std::size_t>(static_cast<std::size_t>(s), options.servers.size() - 1);
}

// ---------------------------------------------------------------------------------------------
// Histogram

void Histogram::merge(const Histogram& other) {
    for (std::size_t i = 0; i < kBuckets; ++i) buckets_[i] += other.buckets_[i];
    if (other.count_ == 0) return;
    count_ += other.count_;
    sum_ += other.sum_;
    max_ = std::max(max_, other.max_);
    min_ = std::min(min_, other.min_);
}

std::uint64_t Histogram::upperEdge(std::size_t i) {
    if (i < kSub) return i;
    std::size_t shift = (i - kSub) / kSub;
    std::uint64_t sub = (i - kSub) % kSub;
    return ((kSub + sub + 1) << shift) - 1;
}

std::uint64_t Histogram::percentile(double percent) const {
    if (count_ == 0) return 0;
    auto rank = static_cast<std::uint64_t>(std::ceil(percent / 100.0 * static_cast<double>(count_)));
    if (rank < 1) rank = 1;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
        seen += buckets_[i];
        if (seen >= rank) return std::min(upperEdge(i), max_);
    }
    return max_;
}

json Histogram::toJson() const {
    json b = json::array();
    for (std::size_t i = 0; i < kBuckets; ++i)
        if (buckets_[i]) b.push_back(json::array({i, buckets_[i]}));
    return json{{"count", count_}, {"sum", sum_}, {"min", min()}, {"max", max()}, {"b", std::move(b)}};
}

Histogram Histogram::fromJson(const json& j) {
    Histogram h;
    if (!j.is_object()) return h;
    for (const auto& pair : j.value("b", json::array())) {
        auto i = pair.at(0).get<std::size_t>();
        if (i < kBuckets) h.buckets_[i] += pair.at(1).get<std::uint64_t>();
    }
    h.count_ = j.value("count", std::uint64_t{0});
    h.sum_ = j.value("sum", std::uint64_t{0});
    h.max_ = j.value("max", std::uint64_t{0});
    h.min_ = h.count_ ? j.value("min", std::uint64_t{0}) : ~std::uint64_t{0};
    return h;
}

// ---------------------------------------------------------------------------------------------
// /proc

std::optional<std::uint64_t> readRssBytes(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
    }
    return std::nullopt;
}

std::optional<double> readCpuSeconds(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // The command name may contain spaces and parentheses: fields are counted after the last ')'.
    auto close = text.rfind(')');
    if (close == std::string::npos) return std::nullopt;
    std::istringstream fields(text.substr(close + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    // After ")": field 3 (state) is the first; utime is field 14, stime 15.
    for (int n = 3; n <= 15 && (fields >> field); ++n) {
        if (n == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
        if (n == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
    }
    if (!fields) return std::nullopt;
    return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::optional<double> readRunQueueWaitSeconds(int pid) {
    std::error_code ec;
    std::filesystem::directory_iterator tasks("/proc/" + std::to_string(pid) + "/task", ec);
    if (ec) return std::nullopt;
    unsigned long long waitNs = 0;
    for (const auto& task : tasks) {
        std::ifstream in(task.path() / "schedstat");
        unsigned long long run = 0, wait = 0;
        if (in >> run >> wait) waitNs += wait;
    }
    return static_cast<double>(waitNs) / 1e9;
}

double selfCpuSeconds() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    auto seconds = [](const timeval& tv) {
        return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
    };
    return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

std::uint64_t raiseDescriptorLimit() {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
    if (limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
        getrlimit(RLIMIT_NOFILE, &limit);
    }
    return limit.rlim_cur;
}

// ---------------------------------------------------------------------------------------------
// Targets

namespace {

void appendJsonString(std::string& out, std::string_view s) {
    // Channel names are restricted to characters that need no escaping (see --channel-prefix).
    out += '"';
    out += s;
    out += '"';
}

const Target kTargets[] = {
    {
        "wspush",
        [](std::string_view) { return std::string("/ws"); },
        [](std::string_view channel, std::string_view token) {
            // Two commands in one frame, separated by '\n' (docs/protocol.md, Framing).
            std::string frame = R"({"id":1,"type":"connect")";
            if (!token.empty()) {
                frame += R"(,"token":)";
                appendJsonString(frame, token);  // base64url and dots: nothing to escape
            }
            frame += "}\n";
            frame += R"({"id":2,"type":"subscribe","channel":)";
            appendJsonString(frame, channel);
            frame += '}';
            return frame;
        },
        true,
        [](std::string& out, std::string_view) { out += "/api/publish"; },
        [](std::string& out, std::string_view channel, std::string_view payload, unsigned qos) {
            // "qos" always, 0 too: without it the namespace's default_qos would decide.
            out += R"({"channel":)";
            appendJsonString(out, channel);
            out += R"(,"qos":)";
            out += static_cast<char>('0' + qos);
            out += R"(,"data":)";
            out += payload;
            out += '}';
        },
    },
    {
        "nchan",
        [](std::string_view channel) { return "/sub/" + std::string(channel); },
        [](std::string_view, std::string_view) { return std::string(); },
        false,
        [](std::string& out, std::string_view channel) {
            out += "/pub/";
            out += channel;
        },
        [](std::string& out, std::string_view, std::string_view payload, unsigned) { out += payload; },
    },
    {
        "ws",
        [](std::string_view channel) { return "/ws?channel=" + std::string(channel); },
        [](std::string_view, std::string_view) { return std::string(); },
        false,
        [](std::string& out, std::string_view channel) {
            out += "/publish?channel=";
            out += channel;
        },
        [](std::string& out, std::string_view, std::string_view payload, unsigned) { out += payload; },
    },
};

}  // namespace

const Target* findTarget(std::string_view name) {
    for (const Target& t : kTargets)
        if (t.name == name) return &t;
    return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Stamp

void appendUnsigned(std::string& out, std::uint64_t v) {
    char digits[24];
    int n = 0;
    do {
        digits[n++] = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0) out += digits[--n];
}

namespace {
constexpr std::string_view kStampOpen = R"({"t":)";
constexpr std::string_view kTimeKey = R"("t":)";
constexpr std::string_view kSeqKey = R"(,"s":)";

// Parses decimal digits at p; returns the position after them, nullptr when there are none.
const char* parseDigits(const char* p, const char* end, std::uint64_t& v) {
    const char* start = p;
    v = 0;
    while (p < end && *p >= '0' && *p <= '9') v = v * 10 + static_cast<std::uint64_t>(*p++ - '0');
    return p == start ? nullptr : p;
}
}  // namespace

void appendPayload(std::string& out, std::int64_t sentNs, std::uint64_t seq, std::size_t size) {
    std::size_t start = out.size();
    out += kStampOpen;
    appendUnsigned(out, static_cast<std::uint64_t>(sentNs));
    out += kSeqKey;
    appendUnsigned(out, seq);
    out += R"(,"p":")";
    std::size_t used = out.size() - start + 2;  // the closing "}
    if (size > used) out.append(size - used, 'x');
    out += "\"}";
}

const char* findStamp(const char* begin, const char* end, std::int64_t& sentNs, std::uint64_t& seq) {
    // The key "t" is found on its own, in either order: nchan, ws and wspush pass the keys through
    // as sent ({"t":2,"s":1,"p":"xx.."}); wspush versions before e5336f5 sorted them ({"p":"xx..","s":1,"t":2}).
    // Nothing else matches "t": (the envelope has "type" and "ts"; the padding is 'x').
    const char* from = begin;
    while (from < end) {
        auto* hit = static_cast<const char*>(
            memmem(from, static_cast<std::size_t>(end - from), kTimeKey.data(), kTimeKey.size()));
        if (hit == nullptr) return nullptr;
        const char* p = hit + kTimeKey.size();
        std::uint64_t t = 0;
        const char* after = parseDigits(p, end, t);
        if (after != nullptr) {
            // Payload order: "t":T,"s":S
            if (static_cast<std::size_t>(end - after) > kSeqKey.size() &&
                std::memcmp(after, kSeqKey.data(), kSeqKey.size()) == 0) {
                const char* q = parseDigits(after + kSeqKey.size(), end, seq);
                if (q != nullptr) {
                    sentNs = static_cast<std::int64_t>(t);
                    return q;
                }
            }
            // Sorted order: "s":S,"t":T
            const char* q = hit;
            if (q > begin && q[-1] == ',') {
                const char* digitsEnd = q - 1;
                const char* d = digitsEnd;
                while (d > begin && d[-1] >= '0' && d[-1] <= '9') --d;
                if (d < digitsEnd && d - begin >= 4 && std::memcmp(d - 4, R"("s":)", 4) == 0) {
                    parseDigits(d, digitsEnd, seq);
                    sentNs = static_cast<std::int64_t>(t);
                    return after;
                }
            }
        }
        from = hit + 1;
    }
    return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Report

Report::Report(std::string scenario) {
    json_["scenario"] = std::move(scenario);
}

void Report::add(const std::string& key, json value, std::string label, std::string text) {
    json_[key] = std::move(value);
    rows_.emplace_back(std::move(label), std::move(text));
}

void Report::print() const {
    std::size_t width = 0;
    for (const auto& [label, text] : rows_) width = std::max(width, label.size());
    std::string out;
    for (const auto& [label, text] : rows_) {
        out += label;
        out.append(width + 2 - label.size(), ' ');
        out += text;
        out += '\n';
    }
    out += json_.dump();
    out += '\n';
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
}

std::string fmtCount(double v) {
    bool negative = v < 0;
    auto n = static_cast<std::uint64_t>(std::llround(std::fabs(v)));
    std::string digits = std::to_string(n);
    std::string out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return negative ? "-" + out : out;
}

std::string fmtDouble(double v, int decimals) {
    char text[64];
    std::snprintf(text, sizeof text, "%.*f", decimals, v);
    return text;
}

std::string fmtBytes(double bytes) {
    if (std::fabs(bytes) >= 1024.0 * 1024 * 1024) return fmtDouble(bytes / (1024.0 * 1024 * 1024), 2) + " GiB";
    if (std::fabs(bytes) >= 1024.0 * 1024) return fmtDouble(bytes / (1024.0 * 1024), 2) + " MiB";
    if (std::fabs(bytes) >= 1024.0) return fmtDouble(bytes / 1024.0, 2) + " KiB";
    return fmtDouble(bytes, 0) + " B";
}

double round3(double v) {
    return std::round(v * 1000.0) / 1000.0;
}

}  // namespace bench
