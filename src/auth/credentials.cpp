#include "auth/credentials.h"

namespace wspush {

std::variant<Credentials, ConfigError> loadCredentials(const Config& config) {
    Credentials credentials{config.api.keys, nullptr};
    if (!config.client.token.enabled()) return credentials;
    auto verifier = TokenVerifier::load(config.client.token);
    if (auto* error = std::get_if<ConfigError>(&verifier)) return std::move(*error);
    credentials.tokens = std::get<std::shared_ptr<const TokenVerifier>>(std::move(verifier));
    return credentials;
}

}  // namespace wspush
