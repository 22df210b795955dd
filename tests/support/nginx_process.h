// Runs Debian's nginx with the configuration that ships, docker/nginx/wspush.conf, for integration
// tests: rendered by docker/nginx/render-conf.sh (the only step between the file and what runs)
// into a private temporary directory that is also nginx's prefix, with loopback ports the kernel
// just handed out, the test's certificate, and the nodes' listeners as upstreams. nginx runs in
// the foreground of its own process group (master and workers), its stderr and stdout (error and
// access logs) in a file that is printed when the test that owns it fails.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "support/test_certificate.h"

namespace wspush::testing {

// Runs docker/nginx/render-conf.sh OUT_FILE with `environment` (the WSPUSH_NGINX_* variables;
// none of the test process's WSPUSH_* ones).
struct RenderResult {
    std::optional<int> exitCode;  // nullopt: killed after 10 s
    std::string output;           // stdout and stderr
};
RenderResult renderNginxConf(const std::map<std::string, std::string>& environment, const std::filesystem::path& out);
// docker/nginx/wspush.conf, the template the script renders.
std::filesystem::path nginxConfTemplate();

struct NginxOptions {
    std::vector<std::string> wsUpstreams;   // the nodes' public listeners, "127.0.0.1:port"
    std::vector<std::string> apiUpstreams;  // the nodes' API listeners
    TestCertificate certificate;            // served on the public (TLS) side
    std::chrono::milliseconds readyTimeout{10'000};
};

class NginxProcess {
public:
    // The nginx binary: $WSPUSH_TEST_NGINX, else `nginx` on PATH, else /usr/sbin/nginx (not on a
    // normal user's PATH); "" when there is none.
    static std::string binary();

    // Renders the config, starts nginx and waits until both listeners accept connections. Throws
    // std::runtime_error (with the script's or nginx's output) when either fails.
    explicit NginxProcess(NginxOptions options);
    ~NginxProcess();  // stops nginx (its whole process group); prints its log if the test failed

    NginxProcess(const NginxProcess&) = delete;
    NginxProcess& operator=(const NginxProcess&) = delete;

    unsigned short publicPort() const { return publicPort_; }  // TLS: /ws and /healthz
    unsigned short apiPort() const { return apiPort_; }        // plain HTTP: the API
    // The rendered nginx.conf, as nginx reads it.
    std::filesystem::path configPath() const { return directory_ / "nginx.conf"; }
    std::string configText() const;
    // nginx's error log (stderr) and access log (stdout) so far.
    std::string logText() const;

private:
    // Renders and starts on the current ports; false when nginx exited because a port was taken
    // meanwhile (then the caller picks others). Throws on any other failure.
    bool launch(const NginxOptions& options);
    void stop();
    [[noreturn]] void failToStart(const std::string& what);

    std::filesystem::path directory_;
    unsigned short publicPort_ = 0;
    unsigned short apiPort_ = 0;
    pid_t pid_ = -1;  // the master, leader of its process group
};

}  // namespace wspush::testing
