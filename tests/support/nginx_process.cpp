#include "support/nginx_process.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>

#include "support/child_environment.h"
#include "support/redis_server_process.h"  // findOnPath, pickFreePort

extern char** environ;

namespace wspush::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kPortAttempts = 5;

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

std::string joined(const std::vector<std::string>& words) {
    std::string out;
    for (const auto& word : words) out += (out.empty() ? "" : " ") + word;
    return out;
}

// Ours without WSPUSH_* variables (a developer's shell must not change what the test renders),
// plus `extra`.
// fork + exec with stdout and stderr appended to `logPath` (O_APPEND, so nginx's own opening of
// /dev/stdout for the access log and its writes to stderr never overwrite each other). The child
// leads a process group of its own, so that nginx's workers can be stopped with their master,
// and dies with the test process. Everything is prepared before fork: the child only makes
// async-signal-safe calls.
pid_t spawn(std::vector<std::string> args, const std::map<std::string, std::string>& environment,
            const std::filesystem::path& logPath) {
    std::vector<std::string> env = childEnvironment(environment);
    std::vector<char*> argv = pointersTo(args);
    std::vector<char*> envp = pointersTo(env);
    std::string log = logPath.string();
    pid_t parent = getpid();

    pid_t pid = fork();
    if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(126);
        int out = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (out < 0) _exit(126);
        dup2(out, STDOUT_FILENO);
        dup2(out, STDERR_FILENO);
        // The test's client sockets must not stay open in nginx (half-open connections).
        if (close_range(3, ~0U, 0) != 0)
            for (int fd = 3; fd < 65536; ++fd) close(fd);
        execve(argv[0], argv.data(), envp.data());
        _exit(127);
    }
    setpgid(pid, pid);  // as the child does: whichever runs first, the group exists before stop()
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
        if (result < 0) return -1;
        if (Clock::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

bool acceptsConnections(unsigned short port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    bool connected = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
    ::close(fd);
    return connected;
}

}  // namespace

RenderResult renderNginxConf(const std::map<std::string, std::string>& environment, const std::filesystem::path& out) {
    auto log = out.parent_path() / (out.filename().string() + ".render.log");
    std::filesystem::remove(log);
    pid_t render = spawn({"/bin/sh", WSPUSH_NGINX_RENDER_SCRIPT, out.string()}, environment, log);
    RenderResult result;
    result.exitCode = waitForChild(render, std::chrono::milliseconds(10'000));
    if (!result.exitCode) {
        kill(render, SIGKILL);
        waitForChild(render, std::chrono::milliseconds(2000));
    }
    result.output = readWholeFile(log);
    std::filesystem::remove(log);
    return result;
}

std::filesystem::path nginxConfTemplate() {
    return std::filesystem::path(WSPUSH_NGINX_RENDER_SCRIPT).parent_path() / "wspush.conf";
}

std::string NginxProcess::binary() {
    const char* override = std::getenv("WSPUSH_TEST_NGINX");
    if (override != nullptr && *override != '\0') return override;
    std::string onPath = findOnPath("nginx");
    if (!onPath.empty()) return onPath;
    return ::access("/usr/sbin/nginx", X_OK) == 0 ? "/usr/sbin/nginx" : "";
}

NginxProcess::NginxProcess(NginxOptions options) {
    if (binary().empty()) throw std::runtime_error("nginx is not installed (scripts/install-deps.sh test installs it)");
    std::string pattern = (std::filesystem::temp_directory_path() / "wspush-nginx-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
    directory_ = pattern;
    // Started as root, nginx's workers run as another user: they must reach their temp paths.
    ::chmod(directory_.c_str(), 0755);
    writeWholeFile(directory_ / "cert.pem", options.certificate.certificatePem);
    writeWholeFile(directory_ / "key.pem", options.certificate.privateKeyPem);
    ::chmod((directory_ / "key.pem").c_str(), 0600);

    for (int attempt = 0; attempt < kPortAttempts; ++attempt) {
        publicPort_ = pickFreePort();
        do apiPort_ = pickFreePort();
        while (apiPort_ == publicPort_);
        if (launch(options)) return;
    }
    failToStart("nginx could not listen on a free port in " + std::to_string(kPortAttempts) + " attempts");
}

bool NginxProcess::launch(const NginxOptions& options) {
    std::map<std::string, std::string> environment{
        {"WSPUSH_NGINX_PUBLIC_LISTEN", "127.0.0.1:" + std::to_string(publicPort_)},
        {"WSPUSH_NGINX_API_LISTEN", "127.0.0.1:" + std::to_string(apiPort_)},
        {"WSPUSH_NGINX_WS_UPSTREAMS", joined(options.wsUpstreams)},
        {"WSPUSH_NGINX_API_UPSTREAMS", joined(options.apiUpstreams)},
        {"WSPUSH_NGINX_CERT", (directory_ / "cert.pem").string()},
        {"WSPUSH_NGINX_KEY", (directory_ / "key.pem").string()},
        {"WSPUSH_NGINX_PREFIX", directory_.string()},
    };
    RenderResult rendered = renderNginxConf(environment, configPath());
    if (rendered.exitCode != 0) failToStart("render-conf.sh failed:\n" + rendered.output);

    pid_ = spawn({binary(), "-p", directory_.string(), "-c", configPath().string(), "-g", "daemon off;"}, {},
                 directory_ / "nginx.log");
    auto deadline = Clock::now() + options.readyTimeout;
    while (true) {
        if (auto code = waitForChild(pid_, std::chrono::milliseconds(0))) {
            pid_ = -1;
            if (logText().find("Address already in use") != std::string::npos) return false;
            failToStart("nginx exited with " + std::to_string(*code) + " before it was ready");
        }
        if (acceptsConnections(publicPort_) && acceptsConnections(apiPort_)) return true;
        if (Clock::now() >= deadline) failToStart("nginx did not accept connections within the timeout");
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

void NginxProcess::stop() {
    if (pid_ <= 0) return;
    // SIGTERM: nginx's fast shutdown; the master waits for its workers, then exits.
    kill(-pid_, SIGTERM);
    if (!waitForChild(pid_, std::chrono::milliseconds(5000))) {
        kill(-pid_, SIGKILL);
        waitForChild(pid_, std::chrono::milliseconds(5000));
    }
    pid_ = -1;
}

void NginxProcess::failToStart(const std::string& what) {
    // The destructor will not run for a throwing constructor: clean up here.
    stop();
    std::string message = what + "; nginx's output:\n" + logText();
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
    throw std::runtime_error(message);
}

NginxProcess::~NginxProcess() {
    stop();
    if (::testing::Test::HasFailure())
        std::cerr << "----- nginx output -----\n" << logText() << "----- end of nginx output -----\n";
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
}

std::string NginxProcess::configText() const {
    return readWholeFile(configPath());
}

std::string NginxProcess::logText() const {
    return readWholeFile(directory_ / "nginx.log");
}

}  // namespace wspush::testing
