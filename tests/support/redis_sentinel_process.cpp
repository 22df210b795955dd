#include "support/redis_sentinel_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "support/redis_server_process.h"

namespace wspush::testing {

namespace {

constexpr int kPortAttempts = 5;
constexpr auto kStartTimeout = std::chrono::seconds(5);

}  // namespace

RedisSentinelProcess::RedisSentinelProcess(const std::string& masterName, unsigned short masterPort, int quorum) {
    if (findOnPath("redis-sentinel").empty()) {
        throw std::runtime_error(
            "redis-sentinel is not on PATH: the failover tests need a real Sentinel "
            "(apt-get install redis-sentinel, or scripts/install-deps.sh test)");
    }
    char pattern[] = "/tmp/wspush-sentinel-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
    directory_ = pattern;
    for (int attempt = 0; attempt < kPortAttempts; ++attempt) {
        port_ = pickFreePort();
        if (launch(masterName, masterPort, quorum)) return;
    }
    std::string log = logText();
    std::filesystem::remove_all(directory_);
    throw std::runtime_error("redis-sentinel did not start after " + std::to_string(kPortAttempts) +
                             " attempts; its log:\n" + log);
}

RedisSentinelProcess::~RedisSentinelProcess() {
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
    }
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
}

bool RedisSentinelProcess::launch(const std::string& masterName, unsigned short masterPort, int quorum) {
    // Written anew for each attempt: Sentinel rewrites its config (its id, the replicas and
    // Sentinels it found), and a failed attempt must not leave another port in it.
    auto configPath = directory_ / "sentinel.conf";
    {
        std::ofstream config(configPath, std::ios::trunc);
        config << "port " << port_ << "\n"
               << "bind 127.0.0.1\n"
               << "daemonize no\n"
               << "protected-mode no\n"
               << "dir " << directory_.string() << "\n"
               << "sentinel resolve-hostnames no\n"
               << "sentinel monitor " << masterName << " 127.0.0.1 " << masterPort << " " << quorum << "\n"
               << "sentinel down-after-milliseconds " << masterName << " 1000\n"
               << "sentinel failover-timeout " << masterName << " 3000\n"
               << "sentinel parallel-syncs " << masterName << " 1\n";
    }
    std::string program = findOnPath("redis-sentinel");
    std::string logPath = (directory_ / "sentinel.log").string();
    std::vector<std::string> args = {"redis-sentinel", configPath.string()};
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);

    pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
        int log = ::open(logPath.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (log >= 0) {
            ::dup2(log, STDOUT_FILENO);
            ::dup2(log, STDERR_FILENO);
        }
        for (int fd = 3; fd < 1024; ++fd) ::close(fd);  // the test's sockets are not close-on-exec
        ::execv(program.c_str(), argv.data());
        ::_exit(127);
    }
    pid_ = pid;

    auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
    while (std::chrono::steady_clock::now() < deadline) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {  // exited: the port was taken, or bad config
            pid_ = -1;
            return false;
        }
        if (!command({"PING"}).isErrorWith("TEST:")) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return false;
}

RedisReply RedisSentinelProcess::command(const std::vector<std::string>& argv) const {
    return blockingCommand(port_, argv);
}

std::string RedisSentinelProcess::masterField(const std::string& masterName, const std::string& field) const {
    RedisReply reply = command({"SENTINEL", "MASTER", masterName});
    if (!reply.isArray()) return {};
    // A flat list of field, value, field, value… (RESP2).
    for (std::size_t i = 0; i + 1 < reply.elements.size(); i += 2) {
        if (reply.elements[i].asString() == field) return std::string(reply.elements[i + 1].asString().value_or(""));
    }
    return {};
}

unsigned short RedisSentinelProcess::masterPort(const std::string& masterName) const {
    RedisReply reply = command({"SENTINEL", "GET-MASTER-ADDR-BY-NAME", masterName});
    if (!reply.isArray() || reply.elements.size() != 2) return 0;
    return static_cast<unsigned short>(reply.elements[1].asInteger().value_or(0));
}

std::string RedisSentinelProcess::logText() const {
    std::ifstream log(directory_ / "sentinel.log");
    std::stringstream text;
    text << log.rdbuf();
    return text.str();
}

}  // namespace wspush::testing
