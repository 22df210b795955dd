#include "worker.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "ws_clients.h"

namespace bench {

// ---------------------------------------------------------------------------------------------
// Lines

bool LineReader::fill(int timeoutMs) {
    if (eof_) return false;
    pollfd p{fd_, POLLIN, 0};
    int n = ::poll(&p, 1, timeoutMs);
    if (n < 0) return errno == EINTR;
    if (n == 0) return true;
    char chunk[65536];
    ssize_t got = ::read(fd_, chunk, sizeof chunk);
    if (got < 0) {
        if (errno == EINTR || errno == EAGAIN) return true;
        eof_ = true;
        return false;
    }
    if (got == 0) {
        eof_ = true;
        return false;
    }
    buffer_.append(chunk, static_cast<std::size_t>(got));
    return true;
}

std::optional<json> LineReader::next() {
    for (;;) {
        auto newline = buffer_.find('\n');
        if (newline == std::string::npos) return std::nullopt;
        std::string line = buffer_.substr(0, newline);
        buffer_.erase(0, newline + 1);
        json j = json::parse(line, nullptr, false);
        if (!j.is_discarded() && j.is_object()) return j;
    }
}

bool writeLine(int fd, const json& message) {
    std::string text = message.dump() + "\n";
    std::size_t done = 0;
    while (done < text.size()) {
        ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        done += static_cast<std::size_t>(n);
    }
    return true;
}

// ---------------------------------------------------------------------------------------------
// The worker

void runWorker(const Options& o, const Target& target, const WorkerSpec& spec, int commandFd, int reportFd) {
    LineReader commands(commandFd);
    auto cpu = [&]() -> json { return spec.ownProcess ? json(selfCpuSeconds()) : json(nullptr); };

    if (o.scenario == "churn") {
        ChurnCounters counters =
            runChurn(o, target, spec.churnConcurrency, spec.index, spec.churnEndNs, spec.deadlineNs);
        writeLine(reportFd, json{{"event", "final"}, {"churn", counters.toJson()}, {"cpu", cpu()}});
        return;
    }

    SubscriberPool pool(o, target, spec.first, spec.count);
    pool.start();
    bool stop = false;
    bool aborted = false;
    auto readCommands = [&](auto onCommand) -> bool {
        if (!commands.fill(20)) return false;
        while (auto c = commands.next()) onCommand(*c);
        return true;
    };
    auto handle = [&](const json& c) {
        std::string cmd = c.value("cmd", "");
        if (cmd == "stop")
            stop = true;
        else if (cmd == "expect")
            pool.expect(c.value("per_channel", std::vector<std::uint64_t>{}));
    };

    while (!pool.settled() && !stop) {
        if (!aborted && nowNs() >= spec.connectEndNs) {
            pool.abortConnecting();
            aborted = true;
        }
        if (nowNs() >= spec.deadlineNs) break;
        if (!readCommands(handle)) return;  // the controller is gone
    }
    writeLine(
        reportFd,
        json{{"event", "ready"}, {"connected", pool.connectedNow()}, {"failed", pool.failedNow()}, {"cpu", cpu()}});

    bool reported = false;
    while (!stop && nowNs() < spec.deadlineNs) {
        if (!readCommands(handle)) return;
        if (!reported && pool.complete()) {
            writeLine(reportFd, json{{"event", "complete"}, {"t", pool.completeNs()}});
            reported = true;
        }
    }
    SubscriberCounters counters = pool.stop();
    writeLine(reportFd, json{{"event", "final"}, {"counters", counters.toJson()}, {"cpu", cpu()}});
}

// ---------------------------------------------------------------------------------------------
// The controller's side

void Workers::spawn(const Options& options, const Target& target, const std::vector<WorkerSpec>& specs) {
    bool threads = specs.size() == 1;
    pid_t parent = getpid();
    handles_.reserve(specs.size());
    for (const WorkerSpec& spec : specs) {
        int command[2];
        int report[2];
        if (pipe2(command, O_CLOEXEC) != 0 || pipe2(report, O_CLOEXEC) != 0) {
            std::perror("wspush-bench: pipe");
            std::_Exit(1);
        }
        WorkerHandle& h = handles_.emplace_back();
        h.spec = spec;
        h.spec.ownProcess = !threads;
        h.commandFd = command[1];
        h.reports.emplace(report[0]);
        if (threads) {
            int in = command[0];
            int out = report[1];
            WorkerSpec s = h.spec;
            h.thread = std::thread([&options, &target, s, in, out] {
                runWorker(options, target, s, in, out);
                ::close(out);
                ::close(in);
            });
            continue;
        }
        std::fflush(stdout);
        std::fflush(stderr);
        pid_t pid = fork();
        if (pid < 0) {
            std::perror("wspush-bench: fork");
            std::_Exit(1);
        }
        if (pid == 0) {
            // The worker must not outlive the controller.
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent) std::_Exit(1);
            for (const WorkerHandle& other : handles_) {
                ::close(other.commandFd);
                ::close(other.reports->fd());
            }
            runWorker(options, target, h.spec, command[0], report[1]);
            std::fflush(stderr);
            std::_Exit(0);  // no destructors: the connections simply go with the process
        }
        h.pid = pid;
        ::close(command[0]);
        ::close(report[1]);
    }
}

void Workers::broadcast(const json& command) {
    for (WorkerHandle& h : handles_)
        if (!h.gone) writeLine(h.commandFd, command);
}

void Workers::poll(int timeoutMs) {
    std::vector<pollfd> fds;
    std::vector<WorkerHandle*> owners;
    for (WorkerHandle& h : handles_) {
        if (h.gone) continue;
        fds.push_back(pollfd{h.reports->fd(), POLLIN, 0});
        owners.push_back(&h);
    }
    if (fds.empty()) return;
    int n = ::poll(fds.data(), fds.size(), timeoutMs);
    if (n <= 0) return;
    for (std::size_t i = 0; i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        WorkerHandle& h = *owners[i];
        if (!h.reports->fill(0)) h.gone = true;
        while (auto message = h.reports->next()) {
            std::string event = message->value("event", "");
            if (event == "ready")
                h.ready = *message;
            else if (event == "complete") {
                h.complete = true;
                h.completeNs = message->value("t", std::int64_t{0});
            } else if (event == "final")
                h.final = *message;
        }
    }
}

bool Workers::allReady() const {
    for (const auto& h : handles_)
        if (!h.ready) return false;
    return true;
}
bool Workers::allComplete() const {
    for (const auto& h : handles_)
        if (!h.complete) return false;
    return true;
}
bool Workers::allFinal() const {
    for (const auto& h : handles_)
        if (!h.final) return false;
    return true;
}
bool Workers::allGone() const {
    for (const auto& h : handles_)
        if (!h.gone) return false;
    return true;
}

std::vector<pid_t> Workers::pids() const {
    std::vector<pid_t> result;
    for (const auto& h : handles_)
        if (h.pid > 0) result.push_back(h.pid);
    return result;
}

void Workers::killAll() {
    for (const auto& h : handles_)
        if (h.pid > 0) ::kill(h.pid, SIGKILL);
}

void Workers::reap() {
    for (auto& h : handles_) ::close(h.commandFd);  // EOF: a worker still waiting for commands exits
    auto until = nowNs() + 3'000'000'000LL;
    for (auto& h : handles_) {
        if (h.pid <= 0) continue;
        for (;;) {
            int status = 0;
            pid_t r = ::waitpid(h.pid, &status, WNOHANG);
            if (r != 0) break;
            if (nowNs() >= until) {
                ::kill(h.pid, SIGKILL);
                ::waitpid(h.pid, &status, 0);
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
    // Threads: they return once "final" is sent or the command pipe is closed. A thread stuck
    // past that is left to the process exit (main ends with _exit).
    for (auto& h : handles_)
        if (h.thread.joinable()) {
            if (h.final || h.gone)
                h.thread.join();
            else
                h.thread.detach();
        }
}

}  // namespace bench
