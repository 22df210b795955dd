#include "engine/redis/redis_connection.h"

#include <sys/resource.h>

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/redis/redis_script.h"
#include "engine/redis/redis_test_loop.h"
#include "support/redis_server_process.h"

namespace wspush {
namespace {

using namespace std::chrono_literals;
using testing::fixedAddress;
using testing::RedisServerProcess;
using testing::runFor;
using testing::runUntil;

// Short timeouts keep every test to a few seconds; a loopback Redis answers in well under 1 ms.
RedisConnectionOptions fastOptions(RedisAddress address) {
    RedisConnectionOptions options;
    options.name = "test";
    options.address = fixedAddress(std::move(address));
    options.connectTimeout = 300ms;
    options.commandTimeout = 300ms;
    options.backoffMin = 20ms;
    options.backoffMax = 100ms;
    return options;
}

class RedisConnectionTest : public ::testing::Test {
protected:
    // A connection with counted events, started.
    std::shared_ptr<RedisConnection> connect(RedisConnectionOptions options) {
        RedisConnection::Events events;
        events.onReady = [this] { ++readyCount; };
        events.onDown = [this](const std::string& error) {
            ++downCount;
            lastDown = error;
        };
        auto connection = RedisConnection::create(context, std::move(options), std::move(events));
        connection->start();
        return connection;
    }

    // Runs one command to completion (bounded): its result, or nullopt when none came in time.
    std::optional<RedisResult> run(RedisConnection& connection, std::vector<std::string> argv) {
        std::optional<RedisResult> result;
        connection.command(std::move(argv), [&result](RedisResult r) { result = std::move(r); });
        runUntil(context, [&] { return result.has_value(); });
        return result;
    }

    static RedisReply replyOf(const std::optional<RedisResult>& result) {
        if (!result) return RedisReply{RedisReply::Type::Error, 0, "TEST: no result", {}};
        if (auto* failure = std::get_if<RedisFailure>(&*result)) {
            return RedisReply{RedisReply::Type::Error, 0, "TEST: failure " + failure->message, {}};
        }
        return std::get<RedisReply>(*result);
    }

    boost::asio::io_context context;
    int readyCount = 0;
    int downCount = 0;
    std::string lastDown;
};

TEST_F(RedisConnectionTest, RepliesOfEveryType) {
    RedisServerProcess server;
    auto connection = connect(fastOptions(server.redisAddress()));
    ASSERT_TRUE(runUntil(context, [&] { return connection->ready(); }));
    EXPECT_TRUE(connection->lastError().empty());

    RedisReply status = replyOf(run(*connection, {"SET", "key", std::string("bin\0ary", 7)}));
    EXPECT_EQ(status.type, RedisReply::Type::Status);
    EXPECT_EQ(status.asString(), "OK");

    RedisReply string = replyOf(run(*connection, {"GET", "key"}));
    EXPECT_EQ(string.type, RedisReply::Type::String);
    EXPECT_EQ(string.string, std::string("bin\0ary", 7));

    RedisReply nil = replyOf(run(*connection, {"GET", "missing"}));
    EXPECT_TRUE(nil.isNil());

    RedisReply integer = replyOf(run(*connection, {"INCRBY", "counter", "41"}));
    EXPECT_EQ(integer.type, RedisReply::Type::Integer);
    EXPECT_EQ(integer.asInteger(), 41);

    RedisReply error = replyOf(run(*connection, {"INCR", "key"}));
    EXPECT_TRUE(error.isError());
    EXPECT_TRUE(error.isErrorWith("ERR")) << error.describe();

    replyOf(run(*connection, {"RPUSH", "list", "a", "12"}));
    RedisReply array = replyOf(run(*connection, {"LRANGE", "list", "0", "-1"}));
    ASSERT_TRUE(array.isArray());
    ASSERT_EQ(array.elements.size(), 2u);
    EXPECT_EQ(array.elements[0].asString(), "a");
    EXPECT_EQ(array.elements[1].asInteger(), 12);  // a decimal String reads as an integer
    EXPECT_EQ(array.describe(), R"(["a","12"])");

    RedisReply nested = replyOf(run(*connection, {"EVAL", "return {1, {'x', false}}", "0"}));
    ASSERT_TRUE(nested.isArray());
    ASSERT_EQ(nested.elements.size(), 2u);
    EXPECT_EQ(nested.elements[0].asInteger(), 1);
    ASSERT_TRUE(nested.elements[1].isArray());
    EXPECT_TRUE(nested.elements[1].elements[1].isNil());
}

TEST_F(RedisConnectionTest, ThousandPipelinedCommandsCompleteInOrder) {
    RedisServerProcess server;
    auto connection = connect(fastOptions(server.redisAddress()));
    ASSERT_TRUE(runUntil(context, [&] { return connection->ready(); }));

    constexpr int kCommands = 1000;
    std::vector<std::int64_t> values;
    for (int i = 0; i < kCommands; ++i) {
        connection->command({"INCR", "sequence"}, [&values](RedisResult result) {
            auto* reply = std::get_if<RedisReply>(&result);
            values.push_back(reply && reply->asInteger() ? *reply->asInteger() : -1);
        });
    }
    ASSERT_TRUE(runUntil(context, [&] { return values.size() == kCommands; }));
    for (int i = 0; i < kCommands; ++i) ASSERT_EQ(values[i], i + 1) << "at " << i;
}

TEST_F(RedisConnectionTest, CommandWhileNotConnectedFailsAtOnce) {
    RedisServerProcess server;
    RedisConnection::Events events;
    auto connection = RedisConnection::create(context, fastOptions(server.redisAddress()), events);
    std::optional<RedisResult> result;
    connection->command({"PING"}, [&result](RedisResult r) { result = std::move(r); });
    ASSERT_TRUE(result.has_value());  // at once, without running the io_context
    auto* failure = std::get_if<RedisFailure>(&*result);
    ASSERT_NE(failure, nullptr);
    EXPECT_EQ(failure->message, "not connected: not started");
}

TEST_F(RedisConnectionTest, RefusedConnectionIsReportedOnceThenConnectsWhenTheServerAppears) {
    RedisServerProcess server;
    server.stop();  // its port is now refused
    auto connection = connect(fastOptions(server.redisAddress()));
    runFor(context, 400ms);  // several attempts at backoff 20 → 100 ms
    EXPECT_EQ(downCount, 1);
    EXPECT_FALSE(connection->ready());
    EXPECT_NE(connection->lastError().find("refused"), std::string::npos) << connection->lastError();

    std::optional<RedisResult> result;
    connection->command({"PING"}, [&result](RedisResult r) { result = std::move(r); });
    ASSERT_TRUE(result && std::holds_alternative<RedisFailure>(*result));
    EXPECT_EQ(std::get<RedisFailure>(*result).message.rfind("not connected: ", 0), 0u);

    server.start();
    ASSERT_TRUE(runUntil(
        context, [&] { return readyCount == 1; }, 2000ms));
    EXPECT_EQ(downCount, 1);
    EXPECT_EQ(replyOf(run(*connection, {"PING"})).asString(), "PONG");
}

TEST_F(RedisConnectionTest, PausedServerTimesOutTheCommandAndIsReconnectedAfterResume) {
    RedisServerProcess server;
    auto connection = connect(fastOptions(server.redisAddress()));
    ASSERT_TRUE(runUntil(context, [&] { return connection->ready(); }));

    server.pause();
    auto sent = std::chrono::steady_clock::now();
    std::optional<RedisResult> result;
    connection->command({"PING"}, [&result](RedisResult r) { result = std::move(r); });
    ASSERT_TRUE(runUntil(
        context, [&] { return result.has_value(); }, 2000ms));
    auto waited = std::chrono::steady_clock::now() - sent;
    ASSERT_TRUE(std::holds_alternative<RedisFailure>(*result));
    EXPECT_EQ(std::get<RedisFailure>(*result).message, "timeout");
    EXPECT_GE(waited, 250ms);
    EXPECT_LT(waited, 1000ms);
    EXPECT_EQ(downCount, 1);

    runFor(context, 500ms);  // attempts against the paused server fail quietly
    EXPECT_EQ(downCount, 1);
    EXPECT_EQ(readyCount, 1);

    server.resume();
    ASSERT_TRUE(runUntil(
        context, [&] { return readyCount == 2; }, 2000ms));
    EXPECT_EQ(replyOf(run(*connection, {"PING"})).asString(), "PONG");
}

TEST_F(RedisConnectionTest, KilledAndRestartedServerIsReconnected) {
    RedisServerProcess server;
    auto connection = connect(fastOptions(server.redisAddress()));
    ASSERT_TRUE(runUntil(context, [&] { return connection->ready(); }));

    server.kill();
    ASSERT_TRUE(runUntil(
        context, [&] { return downCount == 1; }, 1000ms));
    EXPECT_FALSE(connection->ready());

    server.start();
    ASSERT_TRUE(runUntil(
        context, [&] { return readyCount == 2; }, 2000ms));
    EXPECT_EQ(downCount, 1);
    EXPECT_EQ(replyOf(run(*connection, {"SET", "after", "restart"})).asString(), "OK");
    EXPECT_EQ(server.command({"GET", "after"}).asString(), "restart");
}

TEST_F(RedisConnectionTest, AuthenticatesAndSelectsTheDatabase) {
    RedisServerProcess server({"--requirepass", "secret"});
    auto options = fastOptions(server.redisAddress());
    options.password = "secret";
    options.db = 3;
    auto connection = connect(options);
    ASSERT_TRUE(runUntil(context, [&] { return connection->ready(); }));
    RedisReply info = replyOf(run(*connection, {"CLIENT", "INFO"}));
    ASSERT_TRUE(info.asString()) << info.describe();
    EXPECT_NE(info.string.find(" db=3 "), std::string::npos) << info.string;
}

TEST_F(RedisConnectionTest, WrongPasswordIsAFailedAttempt) {
    RedisServerProcess server({"--requirepass", "secret"});
    auto options = fastOptions(server.redisAddress());
    options.password = "wrong";
    auto connection = connect(options);
    ASSERT_TRUE(runUntil(context, [&] { return downCount == 1; }));
    runFor(context, 200ms);
    EXPECT_FALSE(connection->ready());
    EXPECT_EQ(readyCount, 0);
    EXPECT_EQ(downCount, 1);
    EXPECT_NE(lastDown.find("AUTH"), std::string::npos) << lastDown;
}

TEST_F(RedisConnectionTest, RequireMasterRefusesAReplica) {
    RedisServerProcess master;
    RedisServerProcess replica({"--replicaof", "127.0.0.1", std::to_string(master.port())});
    int sourceAsked = 0;
    auto options = fastOptions(replica.redisAddress());
    options.requireMaster = true;
    options.address = [&sourceAsked, address = replica.redisAddress()](auto found) {
        ++sourceAsked;
        found(address);
    };
    auto toReplica = connect(options);
    runFor(context, 400ms);
    EXPECT_FALSE(toReplica->ready());
    EXPECT_EQ(readyCount, 0);
    EXPECT_EQ(downCount, 1);
    EXPECT_NE(lastDown.find("not a master"), std::string::npos) << lastDown;
    EXPECT_GE(sourceAsked, 2);  // every retry asks the address source again

    auto masterOptions = fastOptions(master.redisAddress());
    masterOptions.requireMaster = true;
    auto toMaster = connect(masterOptions);
    EXPECT_TRUE(runUntil(context, [&] { return toMaster->ready(); }));
}

TEST_F(RedisConnectionTest, ScriptFallsBackToEvalAfterScriptFlush) {
    RedisServerProcess server;
    auto connection = connect(fastOptions(server.redisAddress()));
    ASSERT_TRUE(runUntil(context, [&] { return connection->ready(); }));
    RedisScript script("return ARGV[1] .. redis.call('INCR', KEYS[1])");

    std::optional<RedisResult> loaded;
    script.load(*connection, [&loaded](RedisResult r) { loaded = std::move(r); });
    ASSERT_TRUE(runUntil(context, [&] { return loaded.has_value(); }));
    EXPECT_EQ(replyOf(loaded).asString(), script.sha1());

    auto runScript = [&](std::string arg) {
        std::optional<RedisResult> result;
        script.run(*connection, {"runs"}, {std::move(arg)}, [&result](RedisResult r) { result = std::move(r); });
        runUntil(context, [&] { return result.has_value(); });
        return replyOf(result);
    };
    EXPECT_EQ(runScript("a").asString(), "a1");
    EXPECT_EQ(server.command({"SCRIPT", "FLUSH"}).asString(), "OK");
    EXPECT_EQ(runScript("b").asString(), "b2");  // NOSCRIPT never reaches the caller
    RedisReply exists = server.command({"SCRIPT", "EXISTS", script.sha1()});
    ASSERT_TRUE(exists.isArray());
    EXPECT_EQ(exists.elements.at(0).asInteger(), 1);  // EVAL cached it again
}

TEST_F(RedisConnectionTest, StopFailsPendingCommandsExactlyOnce) {
    RedisServerProcess server;
    auto connection = connect(fastOptions(server.redisAddress()));
    ASSERT_TRUE(runUntil(context, [&] { return connection->ready(); }));
    server.pause();
    std::vector<int> calls(10, 0);
    std::vector<std::string> failures(10);
    for (int i = 0; i < 10; ++i) {
        connection->command({"PING"}, [&calls, &failures, i](RedisResult result) {
            ++calls[i];
            if (auto* failure = std::get_if<RedisFailure>(&result)) failures[i] = failure->message;
        });
    }
    runFor(context, 20ms);  // the commands leave; the paused server does not answer
    connection->stop();
    connection->stop();  // idempotent
    runFor(context, 400ms);
    for (int i = 0; i < 10; ++i) {
        EXPECT_EQ(calls[i], 1) << i;
        EXPECT_EQ(failures[i], "stopped") << i;
    }
    EXPECT_FALSE(connection->ready());
    EXPECT_EQ(readyCount, 1);
    server.resume();
}

TEST_F(RedisConnectionTest, DeadAddressCostsAlmostNoCpu) {
    RedisServerProcess server;
    server.stop();  // refused at once, every attempt: the backoff alone keeps this cheap
    auto options = fastOptions(server.redisAddress());
    options.backoffMin = 50ms;
    options.backoffMax = 500ms;
    auto cpu = [] {
        rusage usage{};
        getrusage(RUSAGE_SELF, &usage);
        return std::chrono::seconds(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
               std::chrono::microseconds(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
    };
    auto connection = connect(options);
    auto before = cpu();
    // run() rather than runUntil(): the io_context sleeps until the next timer, as in production.
    context.run_for(3s);
    auto used = cpu() - before;
    EXPECT_LT(used, 300ms) << "CPU used over 3 s of a dead Redis";
    EXPECT_EQ(downCount, 1);
    EXPECT_FALSE(connection->ready());
}

}  // namespace
}  // namespace wspush
