// What callers are checked against: the HTTP API's keys and the verifier of client tokens.
//
// Both rotate without a restart (SIGHUP reloads them from the config file), so nothing keeps a
// reference across calls: each check takes the current set, a snapshot that stays valid for as
// long as the check holds it, while a reload swaps in the next one.
#pragma once

#include <atomic>
#include <memory>
#include <variant>
#include <vector>

#include "auth/token_verifier.h"
#include "wspush/config.h"

namespace wspush {

struct Credentials {
    std::vector<ApiKey> apiKeys;                  // none: the API answers loopback clients only
    std::shared_ptr<const TokenVerifier> tokens;  // null: no token settings, tokens are refused
};

// The API keys of `config` and a verifier of its `client.token` settings (reading the key files
// it names); an error names the setting at fault.
std::variant<Credentials, ConfigError> loadCredentials(const Config& config);

// Read from every event loop, replaced from loop 0 (docs/architecture.md, rule 9).
class CredentialStore {
public:
    explicit CredentialStore(Credentials initial) : current_(std::make_shared<const Credentials>(std::move(initial))) {}

    std::shared_ptr<const Credentials> current() const { return current_.load(std::memory_order_acquire); }
    void replace(Credentials next) {
        current_.store(std::make_shared<const Credentials>(std::move(next)), std::memory_order_release);
    }

private:
    std::atomic<std::shared_ptr<const Credentials>> current_;
};

}  // namespace wspush
