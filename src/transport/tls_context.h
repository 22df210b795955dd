// The public listener's TLS credentials (tls.cert, tls.key). A reload builds a whole new context
// and swaps it in: a handshake under way keeps the context it began with, and a certificate that
// does not load leaves the served one in place.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <variant>

#include <boost/asio/ssl/context.hpp>

#include "wspush/config.h"

namespace wspush {

using TlsContext = boost::asio::ssl::context;

// A server context for `config`: its certificate chain and key (checked to match), TLS 1.2 or 1.3
// at least, no renegotiation. The error names the file and OpenSSL's reason.
std::variant<std::shared_ptr<TlsContext>, std::string> loadTlsContext(const TlsConfig& config);

class TlsContextStore {
public:
    explicit TlsContextStore(std::shared_ptr<TlsContext> context) : context_(std::move(context)) {}

    // Read by the accepting loop for every connection; replaced by loop 0 on SIGHUP.
    std::shared_ptr<TlsContext> current() const { return context_.load(std::memory_order_acquire); }
    void replace(std::shared_ptr<TlsContext> context) { context_.store(std::move(context), std::memory_order_release); }

private:
    std::atomic<std::shared_ptr<TlsContext>> context_;
};

}  // namespace wspush
