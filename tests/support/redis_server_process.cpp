#include "support/redis_server_process.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace wspush::testing {

namespace {

constexpr int kPortAttempts = 5;
constexpr auto kStartTimeout = std::chrono::seconds(5);

struct ContextFree {
    void operator()(redisContext* context) const { redisFree(context); }
};
struct ReplyFree {
    void operator()(redisReply* reply) const { freeReplyObject(reply); }
};

RedisReply testError(std::string message) {
    RedisReply reply;
    reply.type = RedisReply::Type::Error;
    reply.string = "TEST: " + std::move(message);
    return reply;
}

}  // namespace

std::string findOnPath(const std::string& program) {
    const char* path = std::getenv("PATH");
    std::stringstream directories(path ? path : "/usr/local/bin:/usr/bin:/bin");
    std::string directory;
    while (std::getline(directories, directory, ':')) {
        auto candidate = std::filesystem::path(directory) / program;
        if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    }
    return {};
}

unsigned short pickFreePort() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    socklen_t length = sizeof(address);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        ::close(fd);
        throw std::runtime_error(std::string("bind: ") + std::strerror(errno));
    }
    ::close(fd);
    return ntohs(address.sin_port);
}

RedisReply blockingCommand(unsigned short port, const std::vector<std::string>& argv) {
    timeval timeout{1, 0};
    std::unique_ptr<redisContext, ContextFree> context(redisConnectWithTimeout("127.0.0.1", port, timeout));
    if (!context) return testError("out of memory");
    if (context->err != 0) return testError(std::string("connect: ") + context->errstr);
    redisSetTimeout(context.get(), timeout);
    std::vector<const char*> pointers;
    std::vector<std::size_t> lengths;
    for (const auto& argument : argv) {
        pointers.push_back(argument.data());
        lengths.push_back(argument.size());
    }
    std::unique_ptr<redisReply, ReplyFree> reply(static_cast<redisReply*>(
        redisCommandArgv(context.get(), static_cast<int>(argv.size()), pointers.data(), lengths.data())));
    if (!reply) return testError(std::string("command: ") + context->errstr);
    return RedisReply::fromHiredis(*reply);
}

RedisServerProcess::RedisServerProcess(std::vector<std::string> extraArgs) : extraArgs_(std::move(extraArgs)) {
    if (findOnPath("redis-server").empty()) {
        throw std::runtime_error(
            "redis-server is not on PATH: the Redis client tests need a real server "
            "(apt-get install redis-server, or scripts/install-deps.sh test)");
    }
    char pattern[] = "/tmp/wspush-redis-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
    directory_ = pattern;
    for (int attempt = 0; attempt < kPortAttempts; ++attempt) {
        port_ = pickFreePort();
        if (launch()) return;
    }
    std::string log = logText();
    std::filesystem::remove_all(directory_);
    throw std::runtime_error("redis-server did not start after " + std::to_string(kPortAttempts) +
                             " attempts; its log:\n" + log);
}

RedisServerProcess::~RedisServerProcess() {
    if (pid_ > 0) {
        signalAndWait(SIGKILL);
    }
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
}

bool RedisServerProcess::launch() {
    std::vector<std::string> args = {"redis-server",
                                     "--port",
                                     std::to_string(port_),
                                     "--bind",
                                     "127.0.0.1",
                                     "--save",
                                     "",
                                     "--appendonly",
                                     "no",
                                     "--dir",
                                     directory_.string(),
                                     "--daemonize",
                                     "no",
                                     "--logfile",
                                     "",
                                     "--protected-mode",
                                     "no"};
    args.insert(args.end(), extraArgs_.begin(), extraArgs_.end());
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    std::string program = findOnPath("redis-server");
    std::string logPath = (directory_ / "redis.log").string();

    pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
        int log = ::open(logPath.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (log >= 0) {
            ::dup2(log, STDOUT_FILENO);
            ::dup2(log, STDERR_FILENO);
        }
        // The test process holds sockets and descriptors that are not close-on-exec.
        for (int fd = 3; fd < 1024; ++fd) ::close(fd);
        ::execv(program.c_str(), argv.data());
        ::_exit(127);
    }
    pid_ = pid;

    auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
    while (std::chrono::steady_clock::now() < deadline) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {  // exited: the port was taken, or bad args
            pid_ = -1;
            return false;
        }
        // Any answer counts: with --requirepass, PING answers NOAUTH.
        RedisReply pong = command({"PING"});
        if (!pong.isErrorWith("TEST:")) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    signalAndWait(SIGKILL);
    return false;
}

void RedisServerProcess::signalAndWait(int signal) {
    if (pid_ <= 0) return;
    ::kill(pid_, signal);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
}

void RedisServerProcess::pause() {
    if (pid_ > 0) ::kill(pid_, SIGSTOP);
}

void RedisServerProcess::resume() {
    if (pid_ > 0) ::kill(pid_, SIGCONT);
}

void RedisServerProcess::stop() {
    resume();  // a stopped process would not act on SIGTERM
    signalAndWait(SIGTERM);
}

void RedisServerProcess::kill() {
    signalAndWait(SIGKILL);
}

void RedisServerProcess::start() {
    if (pid_ > 0) return;
    // The port may be in TIME_WAIT for a moment; redis-server sets SO_REUSEADDR, so a bounded
    // retry covers the rare case where it is still taken.
    for (int attempt = 0; attempt < kPortAttempts; ++attempt) {
        if (launch()) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    throw std::runtime_error("redis-server did not start again on port " + std::to_string(port_) + "; its log:\n" +
                             logText());
}

RedisReply RedisServerProcess::command(const std::vector<std::string>& argv) const {
    return blockingCommand(port_, argv);
}

std::string RedisServerProcess::logText() const {
    std::ifstream log(directory_ / "redis.log");
    std::stringstream text;
    text << log.rdbuf();
    return text.str();
}

}  // namespace wspush::testing
