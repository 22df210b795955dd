// Drives the config loader (parseConfig, src/config/config.cpp) from a config file's text, with
// environment overrides, and the parsers of addresses it uses (parseEndpoint, parseWebhookUrl,
// parseIpNetwork).
//
// Input: the file's text, then optionally a NUL byte and lines of NAME=value: the environment
// the loader sees (e.g. "WSPUSH_WEBSOCKET_PING_INTERVAL=5").
//
// Asserts, beyond "no crash, no leak, no UB" (a float too large for a duration is UB, not an error):
// - exactly one of a config and an error comes back; an error has a message;
// - a loaded config keeps the ranges the loader promises to validate (compression, QoS, sizes,
//   timeouts), which the daemon relies on without checking again;
// - loading is deterministic: the same input gives the same error, or a config again;
// - a webhook URL that parses round-trips through the parts it is used as (host header, target);
// - a network of proxy.trusted has a prefix its family allows, no host bits, and contains itself.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

#include "wspush/config.h"

namespace wspush {
namespace {

void check(bool condition, const char* what) {
    if (!condition) {
        std::fprintf(stderr, "fuzz_config: invariant broken: %s\n", what);
        std::abort();
    }
}

// The environment of the current input: EnvLookup is a plain function pointer, so it is global.
std::map<std::string, std::string>& environment() {
    static std::map<std::string, std::string> variables;
    return variables;
}

const char* lookUp(const char* name) {
    auto it = environment().find(name);
    return it == environment().end() ? nullptr : it->second.c_str();
}

void readEnvironment(std::string_view lines) {
    environment().clear();
    while (!lines.empty()) {
        auto newline = lines.find('\n');
        std::string_view line = lines.substr(0, newline);
        if (auto equals = line.find('='); equals != std::string_view::npos)
            environment()[std::string(line.substr(0, equals))] = std::string(line.substr(equals + 1));
        if (newline == std::string_view::npos) break;
        lines.remove_prefix(newline + 1);
    }
}

void checkRanges(const Config& config) {
    const auto& ws = config.websocket;
    check(ws.compression.level >= 0 && ws.compression.level <= 9, "compression level");
    check(ws.compression.window_bits >= 9 && ws.compression.window_bits <= 15, "window bits");
    check(ws.compression.mem_level >= 1 && ws.compression.mem_level <= 9, "mem level");
    check(ws.max_message_size >= 128, "max message size");
    check(ws.ping_interval.count() > 0 && ws.pong_timeout.count() > 0, "heartbeat timeouts");
    check(ws.connect_timeout.count() > 0 && ws.handshake_timeout.count() > 0, "connect timeouts");
    check(ws.write_queue_max_frames > 0 && ws.write_queue_max_bytes >= 1024, "write queue");
    check(ws.max_subscriptions > 0, "max subscriptions");
    check(config.qos.max_inflight >= 1 && config.qos.max_inflight <= 65536, "qos inflight");
    check(config.sessions.ttl.count() > 0 && config.sessions.max_queued > 0, "sessions");
    check(config.client.token.leeway.count() <= 300, "token leeway");
    check(config.threads <= 64, "threads");
    check(config.engine == "memory" || config.engine == "redis", "engine");
    check(config.channel_defaults.default_qos >= 0 && config.channel_defaults.default_qos <= 2, "default qos");
    for (const auto& [name, options] : config.namespaces)
        check(options.default_qos >= 0 && options.default_qos <= 2, "namespace qos");
}

void checkNetwork(const IpNetwork& network) {
    check(network.prefix_length <= (network.v6 ? 128u : 32u), "a prefix within its family");
    for (unsigned bit = network.prefix_length; bit < 128; ++bit)
        check((network.bytes[bit / 8] & (0x80u >> (bit % 8))) == 0, "no host bits");
    check(network.contains(network.v6, network.bytes.data()), "a network contains its own address");
}

void fuzzWebhookUrl(std::string_view text) {
    auto url = parseWebhookUrl(text);
    if (!url) return;
    check(!url->host.empty() && !url->target.empty() && url->target.front() == '/', "url parts");
    std::string again = (url->tls ? "https://" : "http://") + url->hostHeader() + url->target;
    auto reparsed = parseWebhookUrl(again);
    check(reparsed && reparsed->tls == url->tls && reparsed->host == url->host && reparsed->port == url->port &&
              reparsed->target == url->target,
          "a webhook URL round-trips");
}

}  // namespace
}  // namespace wspush

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace wspush;
    std::string_view input(reinterpret_cast<const char*>(data), size);
    auto nul = input.find('\0');
    std::string text(input.substr(0, nul));
    readEnvironment(nul == std::string_view::npos ? std::string_view() : input.substr(nul + 1));

    ConfigResult result = parseConfig(text, lookUp);
    check(result.config.has_value() != result.error.has_value(), "a config or an error");
    if (result.error) check(!result.error->message.empty(), "an error has a message");
    if (result.config) checkRanges(*result.config);
    if (result.config)
        for (const auto& network : result.config->proxy.trusted) checkNetwork(network);

    ConfigResult again = parseConfig(text, lookUp);
    check(again.config.has_value() == result.config.has_value(), "deterministic");
    if (result.error) check(again.error->describe() == result.error->describe(), "the same error");

    // The text as an address too: short inputs are where these parsers' edge cases are.
    if (text.size() <= 300) {
        auto endpoint = parseEndpoint(text, EndpointHost::NameOrAddress);
        if (endpoint) check(!endpoint->host.empty(), "an endpoint has a host");
        (void)parseEndpoint(text, EndpointHost::Address);
        fuzzWebhookUrl(text);
        if (auto network = parseIpNetwork(text)) checkNetwork(*network);
    }
    return 0;
}
