#include "support/http_test_client.h"

#include <algorithm>
#include <cctype>
#include <sstream>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace wspush::testing {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

namespace {

bool equalsIgnoringCase(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

HttpResult toResult(const http::response<http::string_body>& response) {
    HttpResult result;
    result.status = response.result_int();
    result.body = response.body();
    for (const auto& field : response) result.headers[std::string(field.name_string())] = std::string(field.value());
    return result;
}

}  // namespace

std::string HttpResult::header(const std::string& name) const {
    for (const auto& [key, value] : headers)
        if (equalsIgnoringCase(key, name)) return value;
    return "";
}

HttpTestClient::HttpTestClient(unsigned short port, std::chrono::milliseconds timeout)
    : port_(port), timeout_(timeout) {}

HttpTestClient::~HttpTestClient() {
    disconnect();
    ioc_.restart();
    for (int round = 0; round < 100 && ioc_.poll() > 0; ++round) {
    }
}

bool HttpTestClient::runUntil(const bool& done, Clock::time_point deadline) {
    while (!done) {
        if (Clock::now() >= deadline) return false;
        ioc_.restart();
        if (ioc_.run_one_until(deadline) == 0 && Clock::now() < deadline) return done;
    }
    return true;
}

void HttpTestClient::disconnect() {
    if (!stream_) return;
    beast::error_code ignored;
    stream_->socket().close(ignored);
    ioc_.restart();
    for (int round = 0; round < 100 && ioc_.poll() > 0; ++round) {
    }
    stream_.reset();
    buffer_.clear();
}

bool HttpTestClient::ensureConnected(Clock::time_point deadline, std::string& error) {
    if (stream_ && stream_->socket().is_open()) return true;
    stream_.emplace(ioc_);
    buffer_.clear();
    bool done = false;
    beast::error_code ec;
    stream_->async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port_), [&](beast::error_code e) {
        ec = e;
        done = true;
    });
    if (!runUntil(done, deadline)) {
        disconnect();
        error = "connect timed out";
        return false;
    }
    if (ec) {
        error = "connect: " + ec.message();
        stream_.reset();
        return false;
    }
    return true;
}

HttpResult HttpTestClient::request(const std::string& method, const std::string& path, const std::string& body,
                                   const Headers& headers) {
    auto deadline = Clock::now() + timeout_;
    HttpResult failure;
    // A kept-alive connection the server has meanwhile closed fails before it gets any response;
    // then the request is sent once more on a new connection.
    for (int attempt = 0; attempt < 2; ++attempt) {
        bool reused = stream_.has_value();
        if (!ensureConnected(deadline, failure.error)) return failure;

        http::request<http::string_body> request;
        request.method_string(method);
        request.target(path);
        request.version(11);
        request.set(http::field::host, "127.0.0.1:" + std::to_string(port_));
        for (const auto& [name, value] : headers) request.set(name, value);
        if (!body.empty() || method == "POST" || method == "PUT") {
            request.body() = body;
            request.prepare_payload();
        }

        bool written = false;
        beast::error_code writeError;
        http::async_write(*stream_, request, [&](beast::error_code e, std::size_t) {
            writeError = e;
            written = true;
        });
        if (!runUntil(written, deadline)) {
            disconnect();
            failure.error = "write timed out";
            return failure;
        }

        http::response<http::string_body> response;
        bool read = false;
        beast::error_code readError;
        http::async_read(*stream_, buffer_, response, [&](beast::error_code e, std::size_t) {
            readError = e;
            read = true;
        });
        if (!runUntil(read, deadline)) {
            disconnect();
            failure.error = "read timed out";
            return failure;
        }
        if (readError || writeError) {
            bool nothingReceived = readError == http::error::end_of_stream ||
                                   readError == net::error::connection_reset || readError == net::error::eof ||
                                   writeError;
            failure.error = "request failed: " + (writeError ? writeError : readError).message();
            disconnect();
            if (reused && nothingReceived) continue;
            return failure;
        }
        if (!response.keep_alive()) disconnect();
        return toResult(response);
    }
    return failure;
}

HttpResult HttpTestClient::get(const std::string& path, const Headers& headers) {
    return request("GET", path, "", headers);
}

HttpResult HttpTestClient::post(const std::string& path, const std::string& body, const std::string& contentType,
                                const Headers& headers) {
    Headers all = headers;
    if (!contentType.empty()) all.emplace("Content-Type", contentType);
    return request("POST", path, body, all);
}

std::vector<HttpResult> HttpTestClient::pipeline(const std::vector<std::string>& rawRequests) {
    disconnect();
    auto deadline = Clock::now() + timeout_;
    std::vector<HttpResult> results;
    std::string error;
    if (!ensureConnected(deadline, error)) return results;

    std::string all;
    for (const auto& raw : rawRequests) all += raw;
    bool written = false;
    beast::error_code writeError;
    net::async_write(stream_->socket(), net::buffer(all), [&](beast::error_code e, std::size_t) {
        writeError = e;
        written = true;
    });
    if (!runUntil(written, deadline) || writeError) {
        disconnect();
        return results;
    }
    for (std::size_t i = 0; i < rawRequests.size(); ++i) {
        http::response<http::string_body> response;
        bool read = false;
        beast::error_code readError;
        http::async_read(*stream_, buffer_, response, [&](beast::error_code e, std::size_t) {
            readError = e;
            read = true;
        });
        if (!runUntil(read, deadline) || readError) break;
        results.push_back(toResult(response));
    }
    disconnect();
    return results;
}

HttpResult httpGet(unsigned short port, const std::string& path, const Headers& headers) {
    HttpTestClient client(port);
    return client.get(path, headers);
}

HttpResult httpPostJson(unsigned short port, const std::string& path, const nlohmann::json& body,
                        const Headers& headers) {
    HttpTestClient client(port);
    return client.postJson(path, body, headers);
}

std::optional<double> metricValue(const std::string& metricsText, const std::string& name) {
    std::istringstream lines(metricsText);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.size() > name.size() && line.compare(0, name.size(), name) == 0 && line[name.size()] == ' ')
            return std::stod(line.substr(name.size() + 1));
    }
    return std::nullopt;
}

}  // namespace wspush::testing
