// A Lua script run with EVALSHA, its SHA-1 computed once here. Redis forgets scripts on restart,
// failover and SCRIPT FLUSH: on NOSCRIPT the script is sent whole with EVAL (which caches it
// again), so a caller never sees NOSCRIPT.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/redis/redis_connection.h"

namespace wspush {

class RedisScript {
public:
    explicit RedisScript(std::string source);

    const std::string& sha1() const { return sha1_; }
    const std::string& source() const { return *source_; }

    // EVALSHA sha1 numkeys keys… args…, falling back to EVAL on NOSCRIPT.
    void run(RedisConnection& connection, std::vector<std::string> keys, std::vector<std::string> args,
             RedisReplyHandler done) const;
    // The command that runs the script: EVALSHA when `cached`, else EVAL with the whole source.
    // For a script queued in a MULTI, whose NOSCRIPT only the EXEC reply tells: the caller runs
    // the transaction again with `cached` false.
    std::vector<std::string> command(std::vector<std::string> keys, std::vector<std::string> args,
                                     bool cached = true) const;
    // SCRIPT LOAD, for an owner that loads its scripts when a connection becomes ready.
    void load(RedisConnection& connection, RedisReplyHandler done) const;

private:
    // Shared with the NOSCRIPT fallbacks in flight, which may outlive this object.
    std::shared_ptr<const std::string> source_;
    std::string sha1_;
};

}  // namespace wspush
