// wspushd's command line: --check-config with its error reporting, environment overrides, and
// the --echo conformance mode.
#include <gtest/gtest.h>

#include "support/test_helpers.h"

namespace wspush::testing {
namespace {

using json = nlohmann::json;

constexpr int kExitConfigError = 2;

::testing::AssertionResult mentions(const std::string& output, const std::string& needle) {
    if (output.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "\"" << needle << "\" not in the output:\n" << output;
}

CommandResult checkConfig(const std::string& configText, const std::map<std::string, std::string>& environment = {}) {
    TemporaryFile config(configText, "config.json");
    return runDaemonCommand({"--check-config", "--config", config.path()}, environment);
}

TEST(CommandLine, CheckConfigAcceptsAValidConfig) {
    CommandResult result =
        checkConfig(R"({"websocket":{"ping_interval":15},"namespaces":{"chat":{"client_publish":true}}})");
    ASSERT_TRUE(result.exitCode) << "--check-config did not exit";
    EXPECT_EQ(*result.exitCode, 0) << result.err;
    EXPECT_TRUE(mentions(result.out, "config ok"));
}

TEST(CommandLine, CheckConfigNamesTheUnknownKeyAndExits2) {
    CommandResult result = checkConfig(R"({"websocket":{"ping_intervl":1}})");
    ASSERT_TRUE(result.exitCode);
    EXPECT_EQ(*result.exitCode, kExitConfigError);
    EXPECT_TRUE(mentions(result.err, "websocket.ping_intervl"));
}

TEST(CommandLine, CheckConfigNamesAKeyOfTheWrongTypeAndExits2) {
    CommandResult result = checkConfig(R"({"websocket":{"ping_interval":"fast"}})");
    ASSERT_TRUE(result.exitCode);
    EXPECT_EQ(*result.exitCode, kExitConfigError);
    EXPECT_TRUE(mentions(result.err, "websocket.ping_interval"));

    CommandResult nested = checkConfig(R"({"api":{"keys":["0123456789abcdef0123", 7]}})");
    ASSERT_TRUE(nested.exitCode);
    EXPECT_EQ(*nested.exitCode, kExitConfigError);
    EXPECT_TRUE(mentions(nested.err, "api.keys[1]"));
}

TEST(CommandLine, CheckConfigRefusesNestingBeyondTheLimitAndExits2) {
    // Ignored "_" keys may hold anything, but not 100,000 nested arrays.
    std::string deep = std::string(100'000, '[') + std::string(100'000, ']');
    CommandResult result = checkConfig(R"({"_comment":)" + deep + "}");
    ASSERT_TRUE(result.exitCode) << "--check-config did not exit";
    EXPECT_EQ(*result.exitCode, kExitConfigError);
    EXPECT_TRUE(mentions(result.err, "64 levels"));
}

TEST(CommandLine, CheckConfigRejectsAnInvalidEnvironmentOverride) {
    CommandResult result = checkConfig("{}", {{"WSPUSH_WEBSOCKET_PING_INTERVAL", "abc"}});
    ASSERT_TRUE(result.exitCode);
    EXPECT_EQ(*result.exitCode, kExitConfigError);
    EXPECT_TRUE(mentions(result.err, "WSPUSH_WEBSOCKET_PING_INTERVAL"));

    CommandResult wrongType = checkConfig("{}", {{"WSPUSH_WEBSOCKET_PING_INTERVAL", "\"soon\""}});
    ASSERT_TRUE(wrongType.exitCode);
    EXPECT_EQ(*wrongType.exitCode, kExitConfigError);
    EXPECT_TRUE(mentions(wrongType.err, "websocket.ping_interval"));

    CommandResult valid = checkConfig("{}", {{"WSPUSH_WEBSOCKET_PING_INTERVAL", "15"}});
    ASSERT_TRUE(valid.exitCode);
    EXPECT_EQ(*valid.exitCode, 0) << valid.err;
}

TEST(CommandLine, UnknownOptionsExit2) {
    CommandResult result = runDaemonCommand({"--no-such-option"});
    ASSERT_TRUE(result.exitCode);
    EXPECT_EQ(*result.exitCode, kExitConfigError);
    EXPECT_TRUE(mentions(result.err, "--no-such-option"));
}

TEST(CommandLine, EnvironmentOverridesReachTheRunningDaemon) {
    DaemonOptions options;
    options.environment["WSPUSH_WEBSOCKET_PING_INTERVAL"] = "7";
    DaemonProcess daemon(json::object(), options);
    WsTestClient client;
    auto connected = client.connectProtocol(daemon.port());
    ASSERT_TRUE(connected) << client.lastError();
    EXPECT_DOUBLE_EQ(connected->value("ping_interval", 0.0), 7.0) << connected->dump();
}

TEST(CommandLine, EchoModeSendsEveryMessageBackWithItsType) {
    DaemonOptions options;
    options.extraArgs.push_back("--echo");
    // No `connect` is expected in echo mode, so its timeout must not apply.
    DaemonProcess daemon(json{{"websocket", {{"connect_timeout", 0.3}}}}, options);
    WsTestClient client;
    ASSERT_TRUE(client.connect(daemon.port())) << client.lastError();

    const std::string text = "not a protocol message {";
    ASSERT_TRUE(client.sendText(text));
    auto textEcho = client.nextFrame();
    ASSERT_TRUE(textEcho) << client.lastError();
    EXPECT_EQ(textEcho->payload, text);
    EXPECT_FALSE(textEcho->binary);

    const std::string bytes("\x00\xff\x01\n\x80 binary", 12);
    ASSERT_TRUE(client.sendBinary(bytes));
    auto binaryEcho = client.nextFrame();
    ASSERT_TRUE(binaryEcho) << client.lastError();
    EXPECT_EQ(binaryEcho->payload, bytes);
    EXPECT_TRUE(binaryEcho->binary);

    const std::string command = R"({"id":1,"type":"connect"})";
    ASSERT_TRUE(client.sendText(command));
    auto commandEcho = client.nextFrame();
    ASSERT_TRUE(commandEcho);
    EXPECT_EQ(commandEcho->payload, command) << "echo mode speaks no protocol";

    EXPECT_TRUE(client.pumpFor(std::chrono::milliseconds(600))) << "closed by connect_timeout in echo mode";
}

}  // namespace
}  // namespace wspush::testing
