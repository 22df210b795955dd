#include "support/daemon_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>

#include "support/child_environment.h"

extern char** environ;

namespace wspush::testing {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

std::filesystem::path makeTemporaryDirectory() {
    std::string pattern = (std::filesystem::temp_directory_path() / "wspush-it-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
    return pattern;
}

std::string readWholeFile(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

void writeWholeFile(const std::filesystem::path& path, const std::string& content) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out) throw std::runtime_error("cannot write " + path.string());
}

// WSPUSH_TEST_DAEMON runs the suite against another build of the daemon (a sanitizer build, say).
std::string daemonPath() {
    const char* override = std::getenv("WSPUSH_TEST_DAEMON");
    return override != nullptr && *override != '\0' ? override : WSPUSH_DAEMON_PATH;
}

// fork + exec of the daemon with stdout and stderr redirected to files. Everything the child
// needs is prepared before fork, so the child only makes async-signal-safe calls.
pid_t spawnDaemon(std::vector<std::string> args, const std::map<std::string, std::string>& environment,
                  const std::filesystem::path& stdoutPath, const std::filesystem::path& stderrPath) {
    args.insert(args.begin(), daemonPath());
    std::vector<std::string> env = childEnvironment(environment);
    std::vector<char*> argv = pointersTo(args);
    std::vector<char*> envp = pointersTo(env);
    std::string outPath = stdoutPath.string();
    std::string errPath = stderrPath.string();
    pid_t parent = getpid();

    pid_t pid = fork();
    if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
        // A crashed or killed test run must not leave daemons behind.
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(126);
        int out = open(outPath.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        int err = outPath == errPath ? out : open(errPath.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (out < 0 || err < 0) _exit(126);
        dup2(out, STDOUT_FILENO);
        dup2(err, STDERR_FILENO);
        // The test process holds client sockets (not close-on-exec); a daemon inheriting them would
        // keep connections of other tests half-open.
        if (close_range(3, ~0U, 0) != 0)
            for (int fd = 3; fd < 65536; ++fd) close(fd);
        execve(argv[0], argv.data(), envp.data());
        _exit(127);
    }
    return pid;
}

// waitpid with a deadline: the decoded exit status, or nullopt if the child still runs.
std::optional<int> waitForChild(pid_t pid, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (true) {
        int status = 0;
        pid_t result = waitpid(pid, &status, WNOHANG);
        if (result == pid) {
            if (WIFEXITED(status)) return WEXITSTATUS(status);
            if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
            return -1;
        }
        if (result < 0) return -1;  // not our child any more: nothing to wait for
        if (Clock::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

}  // namespace

json DaemonProcess::baseConfig() {
    return json{
        {"listen", "127.0.0.1:0"},
        {"threads", 2},
        {"client", {{"allow_anonymous", true}, {"trust_client_user", true}}},
        {"log", {{"level", "debug"}}},
    };
}

DaemonProcess::DaemonProcess(const json& configOverrides, DaemonOptions options)
    : directory_(makeTemporaryDirectory()), logPath_(directory_ / "wspushd.log"), config_(baseConfig()) {
    config_.merge_patch(configOverrides);
    auto configPath = directory_ / "config.json";
    auto readyPath = directory_ / "ready.json";
    writeWholeFile(configPath, config_.dump(2));

    std::vector<std::string> args{"--config", configPath.string(), "--ready-file", readyPath.string()};
    args.insert(args.end(), options.extraArgs.begin(), options.extraArgs.end());
    pid_ = spawnDaemon(args, options.environment, logPath_, logPath_);

    auto deadline = Clock::now() + options.readyTimeout;
    while (true) {
        // The daemon writes the ready file under another name and renames it: it is whole or absent.
        if (std::filesystem::exists(readyPath)) {
            json ready = json::parse(readWholeFile(readyPath), nullptr, false);
            if (ready.is_object() && ready.contains("port") && ready.contains("api_port")) {
                port_ = ready["port"].get<unsigned short>();
                apiPort_ = ready["api_port"].get<unsigned short>();
                return;
            }
        }
        if (auto code = waitForChild(pid_, std::chrono::milliseconds(0))) {
            exitCode_ = code;
            failToStart("wspushd exited with " + std::to_string(*code) + " before it was ready");
        }
        if (Clock::now() >= deadline) {
            kill(pid_, SIGKILL);
            exitCode_ = waitForChild(pid_, std::chrono::milliseconds(2000));
            failToStart("wspushd was not ready within the timeout");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

void DaemonProcess::failToStart(const std::string& what) {
    // The destructor will not run for a throwing constructor: clean up here.
    std::string message = what + "; its output:\n" + logText();
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
    throw std::runtime_error(message);
}

DaemonProcess::~DaemonProcess() {
    if (pid_ > 0 && !exitCode_) {
        kill(pid_, SIGKILL);
        exitCode_ = waitForChild(pid_, std::chrono::milliseconds(5000));
    }
    if (::testing::Test::HasFailure())
        std::cerr << "----- wspushd output -----\n" << logText() << "----- end of wspushd output -----\n";
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
}

std::string DaemonProcess::logText() const {
    return readWholeFile(logPath_);
}

bool DaemonProcess::terminate(int signal) {
    if (!running()) return false;
    return kill(pid_, signal) == 0;
}

std::optional<int> DaemonProcess::waitExit(std::chrono::milliseconds timeout) {
    if (!exitCode_) exitCode_ = waitForChild(pid_, timeout);
    return exitCode_;
}

bool DaemonProcess::running() {
    if (!exitCode_) exitCode_ = waitForChild(pid_, std::chrono::milliseconds(0));
    return !exitCode_.has_value();
}

CommandResult runDaemonCommand(const std::vector<std::string>& args,
                               const std::map<std::string, std::string>& environment,
                               std::chrono::milliseconds timeout) {
    auto directory = makeTemporaryDirectory();
    auto outPath = directory / "stdout";
    auto errPath = directory / "stderr";
    pid_t pid = spawnDaemon(args, environment, outPath, errPath);
    CommandResult result;
    result.exitCode = waitForChild(pid, timeout);
    if (!result.exitCode) {
        kill(pid, SIGKILL);
        waitForChild(pid, std::chrono::milliseconds(5000));
    }
    result.out = readWholeFile(outPath);
    result.err = readWholeFile(errPath);
    std::error_code ignored;
    std::filesystem::remove_all(directory, ignored);
    return result;
}

TemporaryFile::TemporaryFile(const std::string& content, const std::string& name)
    : directory_(makeTemporaryDirectory()), path_(directory_ / name) {
    writeWholeFile(path_, content);
}

TemporaryFile::~TemporaryFile() {
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
}

}  // namespace wspush::testing
