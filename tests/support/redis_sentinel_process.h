// Runs a real redis-sentinel for the failover tests: a free loopback port, its own temporary
// directory holding the config file (Sentinel rewrites it, so it must be writable), output in a
// log file there. It monitors one master under one name with short timeouts, so a failover in a
// test takes a few seconds: down-after-milliseconds 1000, failover-timeout 3000.
//
// When redis-sentinel is not on PATH the constructor throws: a test that needs it fails with that
// message rather than skip (scripts/install-deps.sh test installs it).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "engine/redis/redis_reply.h"

namespace wspush::testing {

class RedisSentinelProcess {
public:
    // Starts a Sentinel that monitors 127.0.0.1:`masterPort` as `masterName` with `quorum`, and
    // waits until it answers PING. Throws std::runtime_error with its log when it does not start.
    RedisSentinelProcess(const std::string& masterName, unsigned short masterPort, int quorum);
    ~RedisSentinelProcess();  // kills the Sentinel, removes the directory

    RedisSentinelProcess(const RedisSentinelProcess&) = delete;
    RedisSentinelProcess& operator=(const RedisSentinelProcess&) = delete;

    unsigned short port() const { return port_; }
    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

    // One command over a fresh blocking connection; a failure to connect or to read is an Error
    // reply starting with "TEST:".
    RedisReply command(const std::vector<std::string>& argv) const;
    // A field of `SENTINEL MASTER <name>` ("num-slaves", "num-other-sentinels", "flags", …), or ""
    // when the Sentinel does not answer or has no such field.
    std::string masterField(const std::string& masterName, const std::string& field) const;
    // The port of the master the Sentinel currently names (SENTINEL GET-MASTER-ADDR-BY-NAME), 0 if none.
    unsigned short masterPort(const std::string& masterName) const;

    std::string logText() const;

private:
    bool launch(const std::string& masterName, unsigned short masterPort, int quorum);

    std::filesystem::path directory_;
    unsigned short port_ = 0;
    pid_t pid_ = -1;
};

}  // namespace wspush::testing
