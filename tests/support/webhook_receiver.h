// A webhook receiver for tests: an HTTP/1.1 (or HTTPS) server on 127.0.0.1, port 0, that
// records every request, checks its X-Wspush-Signature against the secret, and answers as the
// test tells it (a status, or no answer at all). Keep-alive, like a real backend. Runs its own
// io_context on its own thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include "support/test_certificate.h"

namespace wspush::testing {

struct ReceivedWebhook {
    std::string target;
    std::string contentType;
    std::string signature;
    std::string body;
    bool signatureValid = false;
    std::size_t connection = 0;  // which accepted connection it came on, from 1
};

struct WebhookAnswer {
    unsigned status = 200;
    bool hang = false;        // never answer (the connection stays open until the client closes it)
    bool closeAfter = false;  // close the connection after answering, without saying so (an idle timeout)
};

class WebhookReceiver {
public:
    // Asked for every request, with its 0-based number in arrival order.
    using Responder = std::function<WebhookAnswer(std::size_t index)>;

    explicit WebhookReceiver(std::string secret, std::optional<TestCertificate> tls = std::nullopt);
    ~WebhookReceiver();
    WebhookReceiver(const WebhookReceiver&) = delete;
    WebhookReceiver& operator=(const WebhookReceiver&) = delete;

    unsigned short port() const { return port_; }
    // "http://127.0.0.1:<port><path>" ("https://" with TLS); `host` replaces 127.0.0.1.
    std::string url(const std::string& path = "/hook", const std::string& host = "127.0.0.1") const;

    void respondWith(Responder responder);
    std::vector<ReceivedWebhook> requests() const;
    std::size_t requestCount() const;
    std::size_t connections() const { return connections_.load(); }

    // Called on the receiver's thread by its sessions.
    WebhookAnswer record(ReceivedWebhook request);
    const std::string& secret() const { return secret_; }

private:
    void accept();

    std::string secret_;
    std::optional<boost::asio::ssl::context> tls_;  // before context_: its sessions' streams use it
    boost::asio::io_context context_;
    boost::asio::ip::tcp::acceptor acceptor_;
    unsigned short port_ = 0;
    mutable std::mutex mutex_;
    Responder responder_;
    std::vector<ReceivedWebhook> requests_;
    std::atomic<std::size_t> connections_{0};
    std::thread thread_;
};

}  // namespace wspush::testing
