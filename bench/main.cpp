// wspush-bench: the load generator of wspush. See bench/README.md.
//
// The controller (this file) plans a run, starts the subscriber workers (worker.h) or, for
// recover, the recovery clients (recovery_clients.h), drives the publisher (publisher.h) on its
// own thread, reads the server's RSS and CPU from /proc, and prints the figures: a table, then
// one JSON line.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <thread>

#include "common.h"
#include "publisher.h"
#include "recovery_clients.h"
#include "worker.h"
#include "ws_clients.h"

namespace bench {
namespace {

constexpr std::int64_t kSecond = 1'000'000'000;
constexpr std::int64_t kQosSettleNs = 200'000'000;  // fanout, QoS >= 1: see runFanout

std::string qosText(unsigned qos) {
    if (qos == 1) return "1 (at least once: subscribers answer ack)";
    if (qos == 2) return "2 (exactly once: subscribers answer rec, then comp to the server's rel)";
    return "0 (at most once)";
}

// QoS answers and resends, as seen by the subscribers (keys prefixed for the publish scenario).
void addQosFigures(Report& r, const Options& o, const SubscriberCounters& c, const std::string& prefix) {
    r.add(prefix + "resent_frames", c.resent, prefix.empty() ? "resent frames" : "subscriber resent frames",
          fmtCount(static_cast<double>(c.resent)) +
              " (\"dup\":true; a resend of a message already received is not counted as duplicated)");
    r.addJson(prefix + "qos_answers", c.answers);
    r.addJson(prefix + "qos_answer_frames", c.answerFrames);
    r.addJson(prefix + "qos_error_replies", c.errorReplies);
    if (o.qos > 0)
        r.note(prefix.empty() ? "QoS answers" : "subscriber QoS answers",
               fmtCount(static_cast<double>(c.answers)) + " in " + fmtCount(static_cast<double>(c.answerFrames)) +
                   " frame(s)" +
                   (c.errorReplies
                        ? ", " + fmtCount(static_cast<double>(c.errorReplies)) + " error replies (see first error)"
                        : ""));
}

// How long connecting may take before the stragglers are failed.
double connectPhaseSeconds(const Options& o, std::uint64_t connections) {
    return o.connectTimeout + 20 + static_cast<double>(connections) / 500.0;
}

void sleepUntil(std::int64_t ns) {
    while (nowNs() < ns)
        std::this_thread::sleep_for(std::chrono::nanoseconds(std::min<std::int64_t>(ns - nowNs(), 50'000'000)));
}

// The global deadline: whatever happens, the process ends by then.
void startWatchdog(std::int64_t deadlineNs, const std::string& scenario, std::vector<pid_t> workers) {
    std::thread([deadlineNs, scenario, workers] {
        sleepUntil(deadlineNs);
        for (pid_t pid : workers) ::kill(pid, SIGKILL);
        std::fprintf(stderr, "wspush-bench: global deadline (--max-time) reached; giving up\n");
        std::printf("{\"scenario\":\"%s\",\"error\":\"deadline reached\"}\n", scenario.c_str());
        std::fflush(stdout);
        std::_Exit(3);
    }).detach();
}

std::vector<WorkerSpec> subscriberSpecs(const Options& o, std::uint64_t connections, std::int64_t connectEndNs,
                                        std::int64_t deadlineNs) {
    std::vector<WorkerSpec> specs;
    unsigned p = o.processes;
    for (unsigned i = 0; i < p; ++i) {
        WorkerSpec s;
        s.index = i;
        s.first = connections * i / p;
        s.count = connections * (i + 1) / p - s.first;
        s.connectEndNs = connectEndNs;
        s.deadlineNs = deadlineNs;
        specs.push_back(s);
    }
    return specs;
}

SubscriberCounters gatherCounters(Workers& workers) {
    SubscriberCounters total;
    for (auto& h : workers.handles())
        if (h.final) total.merge(SubscriberCounters::fromJson(h.final->value("counters", json::object())));
    return total;
}

// CPU of worker processes (thread workers are part of the controller's own getrusage).
double workerCpu(Workers& workers, bool final) {
    double sum = 0;
    for (auto& h : workers.handles()) {
        const auto& message = final ? h.final : h.ready;
        if (message && (*message)["cpu"].is_number()) sum += (*message)["cpu"].get<double>();
    }
    return sum;
}

struct ServerSample {
    std::optional<std::uint64_t> rss;
    std::optional<double> cpu;
    std::optional<double> wait;  // run-queue wait
};
// With several --server-pid (several nodes), the sums; a figure is missing if any pid lacks it.
ServerSample sampleServer(const Options& o) {
    if (o.serverPids.empty()) return {};
    ServerSample sum{std::uint64_t{0}, 0.0, 0.0};
    for (int pid : o.serverPids) {
        auto rss = readRssBytes(pid);
        auto cpu = readCpuSeconds(pid);
        auto wait = readRunQueueWaitSeconds(pid);
        if (rss && sum.rss)
            *sum.rss += *rss;
        else
            sum.rss.reset();
        if (cpu && sum.cpu)
            *sum.cpu += *cpu;
        else
            sum.cpu.reset();
        if (wait && sum.wait)
            *sum.wait += *wait;
        else
            sum.wait.reset();
    }
    return sum;
}

// Run-queue wait of the bench: this process and its worker processes.
double benchWait(Workers& workers) {
    double sum = readRunQueueWaitSeconds(getpid()).value_or(0);
    for (pid_t pid : workers.pids()) sum += readRunQueueWaitSeconds(pid).value_or(0);
    return sum;
}

// "waited N s for a CPU": shows when a figure was limited by other load on the machine.
void addWaits(Report& r, const ServerSample& before, const ServerSample& after, double benchWaitSeconds,
              double window) {
    std::string text;
    if (before.wait && after.wait) {
        double w = *after.wait - *before.wait;
        r.addJson("server_runqueue_wait_seconds", round3(w));
        text = "server " + fmtDouble(w, 2) + " s";
    }
    r.addJson("bench_runqueue_wait_seconds", round3(benchWaitSeconds));
    text += (text.empty() ? "" : ", ") + std::string("bench ") + fmtDouble(benchWaitSeconds, 2) + " s";
    if (window > 0) text += " (window " + fmtDouble(window, 2) + " s; large = CPU contention)";
    r.note("waited for a CPU", text);
}

std::string us(std::uint64_t ns) {
    return fmtDouble(static_cast<double>(ns) / 1000.0, 1);
}
double usValue(std::uint64_t ns) {
    return round3(static_cast<double>(ns) / 1000.0);
}

void addLatency(Report& r, const std::string& prefix, const std::string& label, const Histogram& h) {
    r.add(prefix + "_p50_us", usValue(h.percentile(50)), label + " p50", us(h.percentile(50)) + " us");
    r.add(prefix + "_p99_us", usValue(h.percentile(99)), label + " p99", us(h.percentile(99)) + " us");
    r.add(prefix + "_p999_us", usValue(h.percentile(99.9)), label + " p99.9", us(h.percentile(99.9)) + " us");
    r.add(prefix + "_max_us", usValue(h.max()), label + " max", us(h.max()) + " us");
    r.addJson(prefix + "_mean_us", round3(h.mean() / 1000.0));
    r.addJson(prefix + "_samples", h.count());
}

void addRunHeader(Report& r, const Options& o) {
    std::string where = o.host + ":" + std::to_string(o.port);
    if (o.servers.size() > 1) {
        where = "subscribers on";
        for (std::size_t i = 0; i < o.servers.size(); ++i)
            where += (i ? ", " : " ") + o.servers[i].first + ":" + std::to_string(o.servers[i].second);
        where += "; publishing to " + o.host + ":" + std::to_string(o.apiPort);
    }
    r.add("target", o.target, "target",
          o.target + " at " + where +
              (o.servers.size() <= 1 && o.apiPort != o.port ? " (api " + std::to_string(o.apiPort) + ")" : ""));
    if (o.servers.size() > 1) r.addJson("servers", o.servers.size());
    r.add("processes", o.processes, "generator",
          std::to_string(o.processes) + " process(es) x " + std::to_string(o.threads) + " thread(s)" +
              (o.deflate ? ", deflate offered" : ""));
    r.addJson("threads", o.threads);
    r.addJson("deflate", o.deflate);
}

void addConnectFigures(Report& r, const Options& o, const SubscriberCounters& c, double connectSeconds) {
    r.add("connections", o.connections, "connections",
          fmtCount(static_cast<double>(o.connections)) + " over " + fmtCount(static_cast<double>(o.channels)) +
              " channel(s)");
    r.addJson("channels", o.channels);
    r.add("connected", c.connected, "connected",
          fmtCount(static_cast<double>(c.connected)) + " (failed " + fmtCount(static_cast<double>(c.failed)) + ")");
    r.addJson("failed", c.failed);
    r.add("connect_seconds", round3(connectSeconds), "connect phase",
          fmtDouble(connectSeconds, 2) + " s (" +
              fmtCount(connectSeconds > 0 ? static_cast<double>(c.connected) / connectSeconds : 0) + " conn/s)");
    r.add("connect_p50_ms", round3(static_cast<double>(c.connectTime.percentile(50)) / 1e6),
          "connect+subscribe p50/p99",
          fmtDouble(static_cast<double>(c.connectTime.percentile(50)) / 1e6, 2) + " / " +
              fmtDouble(static_cast<double>(c.connectTime.percentile(99)) / 1e6, 2) + " ms");
    r.addJson("connect_p99_ms", round3(static_cast<double>(c.connectTime.percentile(99)) / 1e6));
    if (!c.firstError.empty()) r.add("first_error", c.firstError, "first error", c.firstError);
}

void addDrops(Report& r, const SubscriberCounters& c) {
    std::string codes;
    json codesJson = json::object();
    for (const auto& [code, n] : c.dropCodes) {
        codes += (codes.empty() ? "" : ", ") + std::to_string(n) + " x " +
                 (code == 0 ? std::string("no close frame") : "close " + std::to_string(code));
        codesJson[std::to_string(code)] = n;
    }
    r.add("dropped", c.dropped, "dropped after subscribing",
          fmtCount(static_cast<double>(c.dropped)) + (codes.empty() ? "" : " (" + codes + ")"));
    r.addJson("drop_codes", codesJson);
}

// Failed cycles or clients, by the step or check that failed (churn, recover), and the first error.
void addFailures(Report& r, std::uint64_t failures, const std::map<std::string, std::uint64_t>& failureKinds,
                 const std::string& firstError) {
    std::string kinds;
    json kindsJson = json::object();
    for (const auto& [k, v] : failureKinds) {
        kinds += (kinds.empty() ? "" : ", ") + k + " " + std::to_string(v);
        kindsJson[k] = v;
    }
    r.add("failures", failures, "failures",
          fmtCount(static_cast<double>(failures)) + (kinds.empty() ? "" : " (" + kinds + ")"));
    r.addJson("failure_kinds", kindsJson);
    if (!firstError.empty()) r.add("first_error", firstError, "first error", firstError);
}

// Fanout and recover publish --messages publications with the same settings; only their
// deadline differs.
PublishPlan messagesPlan(const Options& o, std::int64_t deadlineNs) {
    PublishPlan plan;
    plan.messages = o.messages;
    plan.rate = o.rate;
    plan.connections = o.publishers;
    plan.pipeline = o.pipeline;
    plan.inflight = o.inflight;
    plan.size = o.size;
    plan.batch = o.batch;
    plan.channels = o.channels;
    plan.deadlineNs = deadlineNs;
    return plan;
}

void addBenchCpu(Report& r, double seconds, double windowSeconds, const std::string& what) {
    r.add("bench_cpu_seconds", round3(seconds), "bench CPU (" + what + ")",
          fmtDouble(seconds, 2) + " s" +
              (windowSeconds > 0 ? " (" + fmtDouble(100 * seconds / windowSeconds, 0) + "% of one core)" : ""));
}

// ---------------------------------------------------------------------------------------------

Report runIdle(const Options& o, const Target& target, std::int64_t deadlineNs) {
    Report r("idle");
    addRunHeader(r, o);
    ServerSample before = sampleServer(o);
    std::int64_t t0 = nowNs();
    std::int64_t connectEnd = t0 + secondsToNs(connectPhaseSeconds(o, o.connections));
    Workers workers;
    workers.spawn(o, target, subscriberSpecs(o, o.connections, connectEnd, deadlineNs));
    startWatchdog(deadlineNs, o.scenario, workers.pids());
    workers.waitUntil([&] { return workers.allReady(); }, connectEnd + 5 * kSecond);
    std::int64_t t1 = nowNs();
    ServerSample connected = sampleServer(o);
    sleepUntil(t1 + secondsToNs(o.settle));
    ServerSample settled = sampleServer(o);
    sleepUntil(t1 + secondsToNs(std::max(o.duration, o.settle)));
    workers.broadcast(json{{"cmd", "stop"}});
    workers.waitUntil([&] { return workers.allFinal(); }, nowNs() + 15 * kSecond);
    std::int64_t t2 = nowNs();
    double benchCpu = selfCpuSeconds() + workerCpu(workers, true);
    SubscriberCounters c = gatherCounters(workers);

    double connectSeconds = static_cast<double>(t1 - t0) / 1e9;
    addConnectFigures(r, o, c, connectSeconds);
    r.add("hold_seconds", round3(static_cast<double>(t2 - t1) / 1e9), "held",
          fmtDouble(static_cast<double>(t2 - t1) / 1e9, 2) + " s");
    addDrops(r, c);
    if (before.rss && settled.rss) {
        double delta = static_cast<double>(*settled.rss) - static_cast<double>(*before.rss);
        double per = c.connected ? delta / static_cast<double>(c.connected) : 0;
        r.add("server_rss_before_bytes", *before.rss, "server RSS before", fmtBytes(static_cast<double>(*before.rss)));
        r.add("server_rss_after_bytes", *settled.rss, "server RSS connected",
              fmtBytes(static_cast<double>(*settled.rss)) + " (after " + fmtDouble(o.settle, 1) + " s settle)");
        r.add("server_rss_delta_bytes", delta, "server RSS delta", fmtBytes(delta));
        r.add("server_rss_per_connection_bytes", std::llround(per), "server RSS per connection",
              fmtCount(per) + " B = " + fmtDouble(per / 1024, 2) + " KiB");
    }
    if (before.cpu && connected.cpu) {
        double cpu = *connected.cpu - *before.cpu;
        r.add("server_cpu_connect_seconds", round3(cpu), "server CPU, connect phase",
              fmtDouble(cpu, 2) + " s (" +
                  fmtDouble(c.connected ? cpu * 1e6 / static_cast<double>(c.connected) : 0, 1) + " us per connection)");
    }
    addBenchCpu(r, benchCpu, 0, "whole run");
    r.add("measured", c.connected > 0, "measured", c.connected > 0 ? "yes" : "NO: no connection was made");
    workers.reap();
    return r;
}

Report runFanout(const Options& o, const Target& target, std::int64_t deadlineNs) {
    Report r("fanout");
    addRunHeader(r, o);
    std::int64_t t0 = nowNs();
    std::int64_t connectEnd = t0 + secondsToNs(connectPhaseSeconds(o, o.connections));
    Workers workers;
    workers.spawn(o, target, subscriberSpecs(o, o.connections, connectEnd, deadlineNs));
    startWatchdog(deadlineNs, o.scenario, workers.pids());
    workers.waitUntil([&] { return workers.allReady(); }, connectEnd + 5 * kSecond);
    double connectSeconds = static_cast<double>(nowNs() - t0) / 1e9;
    // Targets that do not confirm subscriptions register them asynchronously: give them a moment.
    if (!target.waitsForSubscribed) std::this_thread::sleep_for(std::chrono::milliseconds(500));

    ServerSample before = sampleServer(o);
    double benchCpu0 = selfCpuSeconds() + workerCpu(workers, false);
    double benchWait0 = benchWait(workers);
    PublishResult pub = runPublisher(o, target, messagesPlan(o, deadlineNs - secondsToNs(o.timeout) - 5 * kSecond));

    workers.broadcast(json{{"cmd", "expect"}, {"per_channel", pub.okPerChannel}});
    bool complete = workers.waitUntil([&] { return workers.allComplete(); }, nowNs() + secondsToNs(o.timeout));
    std::int64_t tEnd = nowNs();
    if (complete) {
        tEnd = 0;
        for (auto& h : workers.handles()) tEnd = std::max(tEnd, h.completeNs);
    }
    // QoS >= 1: the server still handles the answers to the last deliveries (ack, rec/comp) after
    // they arrived; its CPU is read a little later so that this work counts too.
    if (o.qos > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(kQosSettleNs));
    ServerSample after = sampleServer(o);
    double benchCpuController = selfCpuSeconds();
    double benchWaitFanout = benchWait(workers) - benchWait0;
    workers.broadcast(json{{"cmd", "stop"}});
    workers.waitUntil([&] { return workers.allFinal(); }, nowNs() + 15 * kSecond);
    double benchCpu = benchCpuController + workerCpu(workers, true) - benchCpu0;
    SubscriberCounters c = gatherCounters(workers);

    addConnectFigures(r, o, c, connectSeconds);
    std::string rateText = o.rate > 0 ? fmtCount(o.rate) + "/s" : "max (inflight " + std::to_string(o.inflight) + ")";
    r.add("messages", o.messages, "messages",
          fmtCount(static_cast<double>(o.messages)) + " x " + std::to_string(o.size) + " B, rate " + rateText);
    r.add("qos", o.qos, "qos", qosText(o.qos));
    r.add(
        "batch", o.batch, "publications per request",
        o.batch > 1 ? std::to_string(o.batch) + " (POST /api/batch: bursts of " + std::to_string(o.batch) + ")" : "1");
    r.addJson("size", o.size);
    r.addJson("rate", o.rate);
    r.addJson("inflight", o.inflight);
    r.addJson("publishers", o.publishers);
    r.addJson("pipeline", o.pipeline);
    if (o.channels < o.publishers)
        r.note("note", "only " + std::to_string(o.channels) +
                           " of the publisher connections are used: channel c goes through connection c % publishers");
    double publishSeconds = static_cast<double>(pub.endNs - pub.startNs) / 1e9;
    r.add("published_ok", pub.ok, "published",
          fmtCount(static_cast<double>(pub.ok)) + " ok, " + fmtCount(static_cast<double>(pub.errors)) + " errors, " +
              fmtCount(static_cast<double>(pub.unconfirmed)) + " unconfirmed in " + fmtDouble(publishSeconds, 2) +
              " s (" + fmtCount(publishSeconds > 0 ? static_cast<double>(pub.ok) / publishSeconds : 0) + " req/s)");
    r.addJson("publish_errors", pub.errors);
    r.addJson("publish_unconfirmed", pub.unconfirmed);
    r.addJson("publish_resent", pub.resent);
    r.addJson("publish_reconnects", pub.reconnects);
    if (pub.resent > 0)
        r.note("publish resent", fmtCount(static_cast<double>(pub.resent)) +
                                     " after the server closed a keep-alive connection "
                                     "(a server that had processed them delivers duplicates)");
    r.addJson("publish_seconds", round3(publishSeconds));
    if (o.rate > 0)
        r.add("publish_max_lag_ms", round3(pub.maxLagMs), "publisher behind schedule",
              "max " + fmtDouble(pub.maxLagMs, 1) + " ms");
    if (!pub.firstError.empty()) r.add("publish_first_error", pub.firstError, "publish error", pub.firstError);
    if (pub.aborted) r.add("publish_aborted", pub.abortReason, "publish ABORTED", pub.abortReason);

    std::uint64_t lost = c.expected > c.unique ? c.expected - c.unique : 0;
    r.add("expected", c.expected, "expected deliveries", fmtCount(static_cast<double>(c.expected)));
    r.add("received", c.messages, "received",
          fmtCount(static_cast<double>(c.messages)) + " (unique " + fmtCount(static_cast<double>(c.unique)) +
              ", duplicated " + fmtCount(static_cast<double>(c.duplicates)) +
              (c.resent ? ", resent " + fmtCount(static_cast<double>(c.resent)) : "") + ")");
    r.addJson("unique", c.unique);
    r.addJson("duplicated", c.duplicates);
    addQosFigures(r, o, c, "");
    std::uint64_t extra = c.unique > c.expected ? c.unique - c.expected : 0;
    r.add("lost", lost, "lost",
          fmtCount(static_cast<double>(lost)) +
              (complete ? "" : " (timed out after " + fmtDouble(o.timeout, 0) + " s)") +
              (extra ? " (+" + fmtCount(static_cast<double>(extra)) + " deliveries of unconfirmed publications)" : ""));
    r.addJson("unexpected", extra);
    r.addJson("complete", complete);
    addDrops(r, c);
    double window = static_cast<double>(tEnd - pub.startNs) / 1e9;
    double perSecond = window > 0 ? static_cast<double>(c.unique) / window : 0;
    r.add("deliveries_per_second", std::llround(perSecond), "deliveries/s",
          fmtCount(perSecond) + " (over " + fmtDouble(window, 2) + " s, first publish to last delivery)");
    r.addJson("window_seconds", round3(window));
    addLatency(r, "latency", "latency", c.latency);
    if (before.cpu && after.cpu) {
        double cpu = *after.cpu - *before.cpu;
        r.add("server_cpu_seconds", round3(cpu), "server CPU",
              fmtDouble(cpu, 2) + " s (" + fmtDouble(window > 0 ? 100 * cpu / window : 0, 0) + "% of one core)" +
                  (o.qos > 0 ? ", read 0.2 s after the last delivery" : ""));
        double perCpu = cpu > 0 ? static_cast<double>(c.unique) / cpu : 0;
        r.add("deliveries_per_server_cpu_second", std::llround(perCpu), "deliveries per server CPU-s",
              fmtCount(perCpu));
    }
    if (before.rss && after.rss) r.addJson("server_rss_bytes", *after.rss);
    addBenchCpu(r, benchCpu, window, "publishing window");
    addWaits(r, before, after, benchWaitFanout, window);
    if (benchCpu > 0)
        r.addJson("deliveries_per_bench_cpu_second", std::llround(static_cast<double>(c.unique) / benchCpu));
    bool measured = c.connected > 0 && !pub.aborted && pub.ok > 0;
    r.add("measured", measured, "measured",
          measured           ? "yes"
          : c.connected == 0 ? "NO: no subscriber connected"
          : pub.aborted ? "NO: publishing stopped early (" + pub.abortReason + "); figures cover what was published"
                        : "NO: nothing was published");
    workers.reap();
    return r;
}

Report runPublish(const Options& o, const Target& target, std::int64_t deadlineNs) {
    Report r("publish");
    addRunHeader(r, o);
    // The subscriber's options outlive this function: its thread may still run when it returns.
    auto* sub = new Options(o);
    sub->processes = 1;
    std::int64_t connectEnd = nowNs() + secondsToNs(connectPhaseSeconds(o, 1));
    Workers workers;
    workers.spawn(*sub, target, subscriberSpecs(*sub, 1, connectEnd, deadlineNs));
    startWatchdog(deadlineNs, o.scenario, workers.pids());
    workers.waitUntil([&] { return workers.allReady(); }, connectEnd + 5 * kSecond);
    if (!target.waitsForSubscribed) std::this_thread::sleep_for(std::chrono::milliseconds(500));

    ServerSample before = sampleServer(o);
    double benchCpu0 = selfCpuSeconds();
    double benchWait0 = benchWait(workers);
    PublishPlan plan;
    plan.durationNs = secondsToNs(o.duration);
    plan.rate = o.rate;
    plan.connections = o.publishers;
    plan.pipeline = o.pipeline;
    plan.inflight = o.publishers * o.pipeline;
    plan.size = o.size;
    plan.channels = o.channels;
    plan.deadlineNs = deadlineNs - 10 * kSecond;
    PublishResult pub = runPublisher(o, target, plan);
    ServerSample after = sampleServer(o);
    double benchCpu = selfCpuSeconds() - benchCpu0;
    double benchWaitPublish = benchWait(workers) - benchWait0;

    workers.broadcast(json{{"cmd", "expect"}, {"per_channel", pub.okPerChannel}});
    bool complete =
        workers.waitUntil([&] { return workers.allComplete(); }, nowNs() + secondsToNs(std::min(o.timeout, 5.0)));
    workers.broadcast(json{{"cmd", "stop"}});
    workers.waitUntil([&] { return workers.allFinal(); }, nowNs() + 15 * kSecond);
    SubscriberCounters c = gatherCounters(workers);

    r.add("publishers", o.publishers, "publisher connections",
          std::to_string(o.publishers) + " keep-alive, pipeline " + std::to_string(o.pipeline));
    if (o.channels < o.publishers)
        r.note("note", "only " + std::to_string(o.channels) +
                           " of the publisher connections are used: channel c goes through connection c % publishers");
    r.addJson("pipeline", o.pipeline);
    r.add("qos", o.qos, "qos", qosText(o.qos));
    r.add("size", o.size, "payload",
          std::to_string(o.size) + " B over " + fmtCount(static_cast<double>(o.channels)) + " channel(s)" +
              (o.rate > 0 ? ", rate " + fmtCount(o.rate) + "/s" : ""));
    r.addJson("channels", o.channels);
    double seconds = static_cast<double>(pub.endNs - pub.startNs) / 1e9;
    double rps = seconds > 0 ? static_cast<double>(pub.ok) / seconds : 0;
    r.add("requests_ok", pub.ok, "requests",
          fmtCount(static_cast<double>(pub.ok)) + " ok, " + fmtCount(static_cast<double>(pub.errors)) + " errors, " +
              fmtCount(static_cast<double>(pub.unconfirmed)) + " unconfirmed in " + fmtDouble(seconds, 2) + " s");
    r.addJson("errors", pub.errors);
    r.addJson("unconfirmed", pub.unconfirmed);
    r.addJson("reconnects", pub.reconnects);
    r.addJson("resent", pub.resent);
    r.addJson("seconds", round3(seconds));
    r.add("requests_per_second", std::llround(rps), "requests/s", fmtCount(rps));
    if (!pub.firstError.empty()) r.add("first_error", pub.firstError, "first error", pub.firstError);
    if (pub.aborted) r.add("aborted", pub.abortReason, "ABORTED", pub.abortReason);
    addLatency(r, "request_latency", "request latency", pub.latency);
    if (before.cpu && after.cpu) {
        double cpu = *after.cpu - *before.cpu;
        r.add("server_cpu_seconds", round3(cpu), "server CPU",
              fmtDouble(cpu, 2) + " s (" + fmtDouble(seconds > 0 ? 100 * cpu / seconds : 0, 0) + "% of one core)");
        double perCpu = cpu > 0 ? static_cast<double>(pub.ok) / cpu : 0;
        r.add("requests_per_server_cpu_second", std::llround(perCpu), "requests per server CPU-s", fmtCount(perCpu));
    }
    std::uint64_t lost = c.expected > c.unique ? c.expected - c.unique : 0;
    r.addJson("subscriber_connected", c.connected);
    if (c.connected == 0) r.note("subscriber", "NOT connected: " + c.firstError);
    r.add("subscriber_received", c.unique, "subscriber (channel 0)",
          fmtCount(static_cast<double>(c.unique)) + " of " + fmtCount(static_cast<double>(c.expected)) + " received" +
              (complete ? "" : " (incomplete after grace)") + ", latency p50 " + us(c.latency.percentile(50)) +
              " us, p99 " + us(c.latency.percentile(99)) + " us");
    r.addJson("subscriber_expected", c.expected);
    r.addJson("subscriber_lost", lost);
    r.addJson("subscriber_dropped", c.dropped);
    r.addJson("subscriber_latency_p50_us", usValue(c.latency.percentile(50)));
    r.addJson("subscriber_latency_p99_us", usValue(c.latency.percentile(99)));
    addQosFigures(r, o, c, "subscriber_");
    addBenchCpu(r, benchCpu, seconds, "publishing, incl. subscriber");
    addWaits(r, before, after, benchWaitPublish, seconds);
    bool measured = !pub.aborted && pub.ok > 0;
    r.add("measured", measured, "measured", measured ? "yes" : "NO: publishing failed");
    workers.reap();
    return r;
}

Report runChurnScenario(const Options& o, const Target& target, std::int64_t deadlineNs) {
    Report r("churn");
    addRunHeader(r, o);
    ServerSample before = sampleServer(o);
    std::int64_t t0 = nowNs();
    std::int64_t end = t0 + secondsToNs(o.duration);
    std::vector<WorkerSpec> specs;
    for (unsigned i = 0; i < o.processes; ++i) {
        WorkerSpec s;
        s.index = i;
        s.churnConcurrency = o.concurrency * (i + 1) / o.processes - o.concurrency * i / o.processes;
        s.churnEndNs = end;
        s.deadlineNs = deadlineNs - 2 * kSecond;
        if (s.churnConcurrency > 0) specs.push_back(s);
    }
    Workers workers;
    workers.spawn(o, target, specs);
    startWatchdog(deadlineNs, o.scenario, workers.pids());
    double benchWait0 = benchWait(workers);
    double benchWaitChurn = 0;
    // Read the workers' run-queue wait before they exit: just before the end of the run.
    sleepUntil(end - 100'000'000);
    benchWaitChurn = benchWait(workers) - benchWait0;
    workers.waitUntil([&] { return workers.allFinal(); }, deadlineNs - kSecond);
    std::int64_t t1 = nowNs();
    ServerSample after = sampleServer(o);
    double benchCpu = selfCpuSeconds() + workerCpu(workers, true);

    ChurnCounters c;
    for (auto& h : workers.handles())
        if (h.final) c.merge(ChurnCounters::fromJson(h.final->value("churn", json::object())));
    double seconds = static_cast<double>(t1 - t0) / 1e9;
    double rate = seconds > 0 ? static_cast<double>(c.cycles) / seconds : 0;
    r.add("concurrency", o.concurrency, "concurrency",
          std::to_string(o.concurrency) + " loops" +
              (o.uniqueChannels ? ", a new channel per cycle"
                                : ", over " + fmtCount(static_cast<double>(o.channels)) + " channel(s)"));
    r.addJson("unique_channels", o.uniqueChannels);
    r.add("cycles", c.cycles, "cycles",
          fmtCount(static_cast<double>(c.cycles)) + " in " + fmtDouble(seconds, 2) + " s");
    r.addJson("seconds", round3(seconds));
    r.add("cycles_per_second", std::llround(rate), "cycles/s", fmtCount(rate));
    addFailures(r, c.failures, c.failureKinds, c.firstError);
    addLatency(r, "cycle", "cycle time", c.cycleTime);
    if (before.cpu && after.cpu) {
        double cpu = *after.cpu - *before.cpu;
        r.add("server_cpu_seconds", round3(cpu), "server CPU",
              fmtDouble(cpu, 2) + " s (" + fmtDouble(c.cycles ? cpu * 1e6 / static_cast<double>(c.cycles) : 0, 1) +
                  " us per cycle)");
    }
    if (before.rss && after.rss) {
        double delta = static_cast<double>(*after.rss) - static_cast<double>(*before.rss);
        r.add("server_rss_delta_bytes", delta, "server RSS change",
              fmtBytes(static_cast<double>(*before.rss)) + " -> " + fmtBytes(static_cast<double>(*after.rss)) + " (" +
                  (delta >= 0 ? "+" : "") + fmtBytes(delta) + ")");
        r.addJson("server_rss_after_bytes", *after.rss);
    }
    addBenchCpu(r, benchCpu, seconds, "whole run");
    addWaits(r, before, after, benchWaitChurn, seconds);
    r.add("measured", c.cycles > 0, "measured", c.cycles > 0 ? "yes" : "NO: not one cycle succeeded");
    workers.reap();
    return r;
}

// Nearest-rank percentile of one value per client, in milliseconds (exact: no histogram).
double percentileMs(std::vector<std::int64_t> values, double percent) {
    if (values.empty()) return 0;
    std::sort(values.begin(), values.end());
    auto rank = static_cast<std::size_t>(std::ceil(percent / 100.0 * static_cast<double>(values.size())));
    return static_cast<double>(values[std::clamp<std::size_t>(rank, 1, values.size()) - 1]) / 1e6;
}

Report runRecover(const Options& o, const Target& target, std::int64_t deadlineNs) {
    Report r("recover");
    addRunHeader(r, o);
    startWatchdog(deadlineNs, o.scenario, {});
    std::int64_t t0 = nowNs();
    std::int64_t connectEnd = t0 + secondsToNs(connectPhaseSeconds(o, o.connections));
    RecoveryClients clients(o, target, o.connections);
    auto waitFor = [](auto done, std::int64_t untilNs) {
        while (!done() && nowNs() < untilNs) std::this_thread::sleep_for(std::chrono::milliseconds(2));
        return done();
    };
    // Phase 1: connect, subscribe, note the position, unsubscribe.
    clients.start();
    if (!waitFor([&] { return clients.settled(); }, connectEnd)) {
        clients.abortConnecting();
        waitFor([&] { return clients.settled(); }, nowNs() + 5 * kSecond);
    }
    double connectSeconds = static_cast<double>(nowNs() - t0) / 1e9;
    std::uint64_t parked = clients.parkedNow();

    // Phase 2: publish what the clients miss.
    PublishResult pub;
    if (parked > 0) {
        // Bounded by the global deadline only: --timeout bounds the recovery that follows, and
        // a tight --max-time shortens that wait instead of refusing to publish.
        pub = runPublisher(o, target, messagesPlan(o, deadlineNs - 5 * kSecond));
    }
    bool published = parked > 0 && !pub.aborted && pub.ok > 0;

    // Phase 3: every client subscribes again with since = its position, all at once.
    ServerSample before = sampleServer(o);
    double benchCpu0 = selfCpuSeconds();
    double benchWait0 = readRunQueueWaitSeconds(getpid()).value_or(0);
    bool complete = false;
    if (published) {
        clients.resubscribe(pub.okPerChannel);
        complete = waitFor([&] { return clients.finished(); },
                           std::min(nowNs() + secondsToNs(o.timeout), deadlineNs - 2 * kSecond));
    }
    ServerSample after = sampleServer(o);
    double benchCpu = selfCpuSeconds() - benchCpu0;
    double benchWaitRecover = readRunQueueWaitSeconds(getpid()).value_or(0) - benchWait0;
    RecoveryCounters c = clients.stop();

    r.add("clients", o.connections, "clients",
          fmtCount(static_cast<double>(o.connections)) + " over " + fmtCount(static_cast<double>(o.channels)) +
              " channel(s)");
    r.addJson("channels", o.channels);
    r.add("parked", c.parked, "parked",
          fmtCount(static_cast<double>(c.parked)) + " subscribed, noted the position, unsubscribed (in " +
              fmtDouble(connectSeconds, 2) + " s)");
    r.addJson("connect_seconds", round3(connectSeconds));
    double publishSeconds = static_cast<double>(pub.endNs - pub.startNs) / 1e9;
    r.add("messages", o.messages, "published while away",
          fmtCount(static_cast<double>(o.messages)) + " x " + std::to_string(o.size) + " B" +
              (o.batch > 1 ? " in batches of " + std::to_string(o.batch) : "") + ": " +
              fmtCount(static_cast<double>(pub.ok)) + " ok, " + fmtCount(static_cast<double>(pub.errors)) +
              " errors, " + fmtCount(static_cast<double>(pub.unconfirmed)) + " unconfirmed in " +
              fmtDouble(publishSeconds, 2) + " s");
    r.addJson("size", o.size);
    r.addJson("batch", o.batch);
    r.addJson("published_ok", pub.ok);
    r.addJson("publish_errors", pub.errors);
    r.addJson("publish_unconfirmed", pub.unconfirmed);
    r.addJson("publish_seconds", round3(publishSeconds));
    if (!pub.firstError.empty()) r.note("publish error", pub.firstError);
    if (pub.aborted) r.note("publish ABORTED", pub.abortReason);
    std::uint64_t missedMin = 0, missedMax = 0;
    if (!pub.okPerChannel.empty()) {
        auto [lo, hi] = std::minmax_element(pub.okPerChannel.begin(), pub.okPerChannel.end());
        missedMin = *lo;
        missedMax = *hi;
    }
    r.add("missed_per_client", missedMin, "missed per client",
          fmtCount(static_cast<double>(missedMin)) +
              (missedMax != missedMin ? " to " + fmtCount(static_cast<double>(missedMax)) : std::string()) +
              (missedMax == 1 ? " publication" : " publications"));
    r.addJson("missed_per_client_max", missedMax);
    r.add("recovered", c.recovered, "recovered",
          fmtCount(static_cast<double>(c.recovered)) + " of " + fmtCount(static_cast<double>(c.clients)) +
              " clients (\"recovered\":true, then exactly since+1 .. T in order)");
    addFailures(r, c.failed, c.failureKinds, c.firstError);
    auto ms = [](double v) { return fmtDouble(v, 2) + " ms"; };
    double p50 = percentileMs(c.recoverNs, 50), p99 = percentileMs(c.recoverNs, 99),
           max = percentileMs(c.recoverNs, 100);
    r.add("recover_p50_ms", round3(p50), "to the last recovered message p50", ms(p50));
    r.add("recover_p99_ms", round3(p99), "to the last recovered message p99", ms(p99));
    r.add("recover_max_ms", round3(max), "to the last recovered message max",
          ms(max) + " (per client: subscribe with since sent -> message T read)");
    double sub50 = percentileMs(c.subscribedNs, 50), subMax = percentileMs(c.subscribedNs, 100);
    r.add("subscribed_p50_ms", round3(sub50), "to the subscribed reply p50/max", ms(sub50) + " / " + ms(subMax));
    r.addJson("subscribed_max_ms", round3(subMax));
    double total =
        c.lastDoneNs > c.firstSendNs && c.recovered > 0 ? static_cast<double>(c.lastDoneNs - c.firstSendNs) / 1e6 : 0;
    r.add("recover_total_ms", round3(total), "all clients recovered in",
          ms(total) + " (first subscribe sent -> last client's message T)" +
              (complete ? "" : ", NOT all: timed out after " + fmtDouble(o.timeout, 0) + " s or failed"));
    r.addJson("complete", complete);
    double perSecond = total > 0 ? static_cast<double>(c.messages) / (total / 1e3) : 0;
    r.add("recovered_messages", c.messages, "recovered messages",
          fmtCount(static_cast<double>(c.messages)) + " (" + fmtCount(perSecond) + "/s over that time)");
    r.addJson("recovered_messages_per_second", std::llround(perSecond));
    double window = total / 1e3;
    if (before.cpu && after.cpu) {
        double cpu = *after.cpu - *before.cpu;
        r.add("server_cpu_seconds", round3(cpu), "server CPU (recovery)",
              fmtDouble(cpu, 2) + " s (read every 10 ms by the kernel: coarse for short runs)");
    }
    if (after.rss) r.addJson("server_rss_bytes", *after.rss);
    addBenchCpu(r, benchCpu, window, "recovery phase");
    addWaits(r, before, after, benchWaitRecover, window);
    bool measured = published && c.failed == 0 && complete;
    r.add("measured", measured, "measured",
          measured       ? "yes"
          : parked == 0  ? "NO: no client parked (" + c.firstError + ")"
          : !published   ? "NO: publishing failed (" + (pub.aborted ? pub.abortReason : pub.firstError) + ")"
          : c.failed > 0 ? "NO: " + fmtCount(static_cast<double>(c.failed)) + " client(s) failed (see failures)"
                         : "NO: recovery did not complete");
    return r;
}

// The run's upper bound in seconds, from the options (unless --max-time).
double maxSeconds(const Options& o) {
    if (o.maxTime > 0) return o.maxTime;
    double connect = connectPhaseSeconds(o, o.connections) + 5;
    if (o.scenario == "idle") return connect + std::max(o.duration, o.settle) + 30;
    if (o.scenario == "fanout" || o.scenario == "recover") {  // connect, publish --messages, wait --timeout
        double publish = o.rate > 0 ? static_cast<double>(o.messages) / o.rate * 2 + 30 : 300;
        return connect + publish + o.timeout + 30;
    }
    if (o.scenario == "publish") return connectPhaseSeconds(o, 1) + 5 + o.duration + std::min(o.timeout, 5.0) + 40;
    return o.duration + o.connectTimeout + 20;  // churn
}

}  // namespace
}  // namespace bench

int main(int argc, char** argv) {
    using namespace bench;
    Options o;
    if (auto error = parseOptions(argc, argv, o)) {
        if (error->empty()) {
            std::fputs(kUsage, stdout);
            return 0;
        }
        std::fprintf(stderr, "wspush-bench: %s\n\n%s", error->c_str(), kUsage);
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN);
    o.runTag = std::to_string(getpid());
    const Target& target = *findTarget(o.target);

    // Descriptors: each worker process holds its share of the connections.
    std::uint64_t limit = raiseDescriptorLimit();
    std::uint64_t perProcess = 0;
    if (o.scenario == "idle" || o.scenario == "fanout" || o.scenario == "recover")
        perProcess = (o.connections + o.processes - 1) / o.processes;
    if (o.scenario == "churn") perProcess = (o.concurrency + o.processes - 1) / o.processes;
    if (o.processes == 1) perProcess += o.publishers;
    if (perProcess + 64 > limit) {
        std::uint64_t need = (o.connections + (limit - 64 - o.publishers) - 1) / (limit - 64 - o.publishers);
        std::fprintf(stderr,
                     "wspush-bench: %llu connections per process exceed the descriptor limit (%llu); use --processes "
                     "%llu or more\n",
                     static_cast<unsigned long long>(perProcess), static_cast<unsigned long long>(limit),
                     static_cast<unsigned long long>(std::max<std::uint64_t>(2, need)));
        return 2;
    }
    if ((o.scenario == "idle" || o.scenario == "fanout" || o.scenario == "recover") &&
        o.connections > 28000 * std::max<std::size_t>(1, o.localAddresses.size()))
        std::fprintf(stderr,
                     "wspush-bench: warning: %llu connections to one address may exhaust the ephemeral ports "
                     "(see /proc/sys/net/ipv4/ip_local_port_range; --local-addresses adds source addresses)\n",
                     static_cast<unsigned long long>(o.connections));
    for (int pid : o.serverPids)
        if (!readRssBytes(pid)) {
            std::fprintf(stderr, "wspush-bench: cannot read /proc/%d/status\n", pid);
            return 2;
        }

    std::int64_t deadline = nowNs() + secondsToNs(maxSeconds(o));
    Report report("?");
    if (o.scenario == "idle")
        report = runIdle(o, target, deadline);
    else if (o.scenario == "fanout")
        report = runFanout(o, target, deadline);
    else if (o.scenario == "publish")
        report = runPublish(o, target, deadline);
    else if (o.scenario == "recover")
        report = runRecover(o, target, deadline);
    else
        report = runChurnScenario(o, target, deadline);
    report.print();
    std::fflush(stderr);
    // Connections of in-process workers are not torn down one by one: the process ends here.
    // Exit status 1: the run produced no meaningful figure ("measured": false).
    std::_Exit(report.measured() ? 0 : 1);
}
