// Runs the real wspushd binary for integration tests: a config file and a ready file in a private
// temporary directory, loopback ephemeral ports, output captured in a log file that is printed
// when the test that owns the daemon fails. The binary is the build's wspushd, or the one named
// by the environment variable WSPUSH_TEST_DAEMON.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace wspush::testing {

struct DaemonOptions {
    std::vector<std::string> extraArgs;              // appended after --config/--ready-file
    std::map<std::string, std::string> environment;  // set in the daemon's environment
    std::chrono::milliseconds readyTimeout{10'000};
};

class DaemonProcess {
public:
    // The config every test starts from: loopback ephemeral port, anonymous clients that may name
    // their user, debug logging, two event loops (so cross-loop delivery is exercised).
    static nlohmann::json baseConfig();

    // Starts the daemon with `configOverrides` merged (RFC 7386 merge patch) over baseConfig()
    // and waits for its ready file. Throws std::runtime_error (with the daemon's output) when the
    // daemon exits or is not ready in time; GoogleTest reports that as a test failure.
    explicit DaemonProcess(const nlohmann::json& configOverrides = nlohmann::json::object(),
                           DaemonOptions options = {});
    ~DaemonProcess();  // SIGKILLs the daemon if it still runs; prints the log if the test failed

    DaemonProcess(const DaemonProcess&) = delete;
    DaemonProcess& operator=(const DaemonProcess&) = delete;

    unsigned short port() const { return port_; }        // public listener: /ws, /healthz (+ API if not split)
    unsigned short apiPort() const { return apiPort_; }  // API listener (== port() unless api.listen is set)
    pid_t pid() const { return pid_; }
    const nlohmann::json& config() const { return config_; }
    // The config file the daemon reads (again on SIGHUP): tests rewrite it to reload.
    std::filesystem::path configPath() const { return directory_ / "config.json"; }
    // A folder of the daemon's own, removed with it: for key files the config names.
    const std::filesystem::path& directory() const { return directory_; }

    // Everything the daemon wrote to stdout and stderr so far.
    std::string logText() const;

    // Sends `signal` to the daemon; false if it already exited.
    bool terminate(int signal);
    // Waits for the daemon to exit: its exit code, 128 + signal number if a signal killed it,
    // or nullopt if it still runs after `timeout`.
    std::optional<int> waitExit(std::chrono::milliseconds timeout);
    bool running();

private:
    [[noreturn]] void failToStart(const std::string& what);

    std::filesystem::path directory_;
    std::filesystem::path logPath_;
    nlohmann::json config_;
    pid_t pid_ = -1;
    std::optional<int> exitCode_;
    unsigned short port_ = 0;
    unsigned short apiPort_ = 0;
};

// Runs wspushd to completion with `args` (e.g. --check-config), for tests of its command line.
struct CommandResult {
    std::optional<int> exitCode;  // nullopt: killed after the timeout
    std::string out;
    std::string err;
};
CommandResult runDaemonCommand(const std::vector<std::string>& args,
                               const std::map<std::string, std::string>& environment = {},
                               std::chrono::milliseconds timeout = std::chrono::milliseconds(10'000));

// Writes `content` to a new file in a directory that lives as long as the returned object.
class TemporaryFile {
public:
    explicit TemporaryFile(const std::string& content, const std::string& name = "file");
    ~TemporaryFile();
    TemporaryFile(const TemporaryFile&) = delete;
    TemporaryFile& operator=(const TemporaryFile&) = delete;
    std::string path() const { return path_.string(); }

private:
    std::filesystem::path directory_;
    std::filesystem::path path_;
};

}  // namespace wspush::testing
