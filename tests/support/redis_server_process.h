// Runs a real redis-server for the Redis client's tests: a free loopback port, its own temporary
// directory (--dir), no persistence unless asked, output in a log file there. Tests pause it
// (SIGSTOP) to wedge connections, kill and start it again to test reconnection, and check what
// Redis holds with command(), a blocking hiredis call (blocking is fine in a test).
//
// When redis-server is not on PATH the constructor throws: a test that needs Redis fails with
// that message rather than skip (scripts/install-deps.sh test installs it).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/redis/redis_connection.h"
#include "engine/redis/redis_reply.h"

namespace wspush::testing {

// Shared with RedisSentinelProcess.
// The full path of `program` on PATH, or "" when it is not there.
std::string findOnPath(const std::string& program);
// A port the kernel just handed out for loopback: free now, very likely still free in a moment
// (callers retry with another when it is not).
unsigned short pickFreePort();
// One command to 127.0.0.1:`port` over a fresh blocking hiredis connection (1 s timeouts). A failure
// to connect or to read is returned as an Error reply starting with "TEST:".
RedisReply blockingCommand(unsigned short port, const std::vector<std::string>& argv);

class RedisServerProcess {
public:
    // Starts redis-server with `--save "" --appendonly no`, then `extraArgs` (which may override
    // them, e.g. {"--appendonly", "yes"}), and waits until it answers PING. Throws
    // std::runtime_error with the server's log when it does not start.
    explicit RedisServerProcess(std::vector<std::string> extraArgs = {});
    ~RedisServerProcess();  // kills the server, removes the directory

    RedisServerProcess(const RedisServerProcess&) = delete;
    RedisServerProcess& operator=(const RedisServerProcess&) = delete;

    unsigned short port() const { return port_; }
    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
    RedisAddress redisAddress() const { return RedisAddress{"127.0.0.1", port_}; }
    pid_t pid() const { return pid_; }
    bool running() const { return pid_ > 0; }

    void pause();   // SIGSTOP: the kernel still accepts connections, nothing answers
    void resume();  // SIGCONT
    void stop();    // SIGTERM, and waits for the exit
    void kill();    // SIGKILL, and waits for the exit
    // Starts again on the same port and directory (after stop() or kill()), waits for PING.
    void start();

    // One command over a fresh blocking connection. A failure to connect or to read is
    // returned as an Error reply starting with "TEST:".
    RedisReply command(const std::vector<std::string>& argv) const;

    std::string logText() const;

private:
    // Starts the process on port_ and waits for PING; false (process reaped) when it did not
    // answer, e.g. the port was taken meanwhile.
    bool launch();
    void signalAndWait(int signal);

    std::vector<std::string> extraArgs_;
    std::filesystem::path directory_;
    unsigned short port_ = 0;
    pid_t pid_ = -1;
};

}  // namespace wspush::testing
