// One webhook endpoint's HTTP client: POSTs one body at a time to one URL and reports the status
// or why there was none.
//
// Thread model: lives on one io_context (the webhook dispatcher's loop); post() and stop() are
// called there and `done` runs there, never inside post(). Nothing blocks the loop: the host is
// resolved, connected to, TLS-handshaken, written to and read from asynchronously, and the whole
// exchange is bounded by one deadline (`timeout`), after which the connection is closed.
//
// The connection is kept alive between requests when the receiver allows it. A kept connection
// the receiver closed while idle fails on the next request; that request is then sent once more
// on a new connection before anything is reported.
//
// https: boost::asio::ssl with SNI; with `tlsVerify` the receiver's chain is verified against the
// system CA store and its certificate must name the URL's host (RFC 6125).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "wspush/config.h"

namespace boost::asio {
class io_context;
}

namespace wspush {

struct WebhookClientOptions {
    std::chrono::steady_clock::duration timeout = std::chrono::seconds(5);
    bool tlsVerify = true;
    // Not user config: tests trust their self-signed certificate (PEM) instead of the system store.
    std::string trustedCertificatePem;
};

struct WebhookResponse {
    unsigned status = 0;  // 0: no response
    std::string error;    // why there is no response; empty when there is one
    bool ok() const { return status >= 200 && status <= 299; }
};

class WebhookClient {
public:
    using Done = std::function<void(WebhookResponse)>;

    static std::shared_ptr<WebhookClient> create(boost::asio::io_context& context, WebhookUrl url,
                                                 WebhookClientOptions options);
    virtual ~WebhookClient() = default;

    // Sends `body` (JSON) signed with `signature` (the X-Wspush-Signature value). One at a time:
    // the next post() comes after `done` ran. `done` runs exactly once, stop() included.
    virtual void post(std::string body, std::string signature, Done done) = 0;
    // Closes the connection; a request in flight completes with an error. Idempotent.
    virtual void stop() = 0;
};

}  // namespace wspush
