// A blocking HTTP/1.1 client for integration tests (Beast, private io_context, bounded waits).
// One object keeps one keep-alive connection to 127.0.0.1:port and reconnects when the server
// closed it, so tests that publish thousands of times do not open thousands of connections.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <nlohmann/json.hpp>

namespace wspush::testing {

using Headers = std::map<std::string, std::string>;

struct HttpResult {
    unsigned status = 0;  // 0: no response (connection failed or timed out; see error)
    std::string body;
    Headers headers;  // names as the server sent them
    std::string error;

    // The body parsed as JSON (discarded value if it is not JSON).
    nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
    std::string header(const std::string& name) const;  // case-insensitive; "" when absent
};

class HttpTestClient {
public:
    explicit HttpTestClient(unsigned short port, std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
    ~HttpTestClient();
    HttpTestClient(const HttpTestClient&) = delete;
    HttpTestClient& operator=(const HttpTestClient&) = delete;

    HttpResult get(const std::string& path, const Headers& headers = {});
    HttpResult post(const std::string& path, const std::string& body,
                    const std::string& contentType = "application/json", const Headers& headers = {});
    HttpResult postJson(const std::string& path, const nlohmann::json& body, const Headers& headers = {}) {
        return post(path, body.dump(), "application/json", headers);
    }
    HttpResult request(const std::string& method, const std::string& path, const std::string& body,
                       const Headers& headers);

    // Writes `rawRequests` concatenated in a single write on a fresh connection and reads
    // `rawRequests.size()` responses from it, in order (HTTP pipelining).
    std::vector<HttpResult> pipeline(const std::vector<std::string>& rawRequests);

private:
    using Clock = std::chrono::steady_clock;

    bool ensureConnected(Clock::time_point deadline, std::string& error);
    bool runUntil(const bool& done, Clock::time_point deadline);
    void disconnect();

    unsigned short port_;
    std::chrono::milliseconds timeout_;
    boost::asio::io_context ioc_;
    std::optional<boost::beast::tcp_stream> stream_;
    boost::beast::flat_buffer buffer_;
};

// One-shot helpers on a fresh connection.
HttpResult httpGet(unsigned short port, const std::string& path, const Headers& headers = {});
HttpResult httpPostJson(unsigned short port, const std::string& path, const nlohmann::json& body,
                        const Headers& headers = {});

// The value of a Prometheus sample without labels (`name value`) in /metrics text.
std::optional<double> metricValue(const std::string& metricsText, const std::string& name);

}  // namespace wspush::testing
