#include "transport/deflate_offer.h"

#include <algorithm>
#include <charconv>

#include <boost/beast/http/rfc7230.hpp>

namespace wspush {
namespace {

namespace http = boost::beast::http;

bool named(boost::beast::string_view name, std::string_view expected) {
    return boost::beast::iequals(name, boost::beast::string_view(expected.data(), expected.size()));
}

// A window bits value: 8..15, written as plain digits (7.1.2.1: no leading zeros, no quotes
// needed, though a quoted one is allowed and Beast's parser has already unquoted it).
std::optional<int> windowBitsOf(boost::beast::string_view text) {
    if (text.empty() || text.size() > 2 || text.front() == '0') return std::nullopt;
    int bits = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), bits);
    if (error != std::errc{} || end != text.data() + text.size() || bits < 8 || bits > 15) return std::nullopt;
    return bits;
}

std::optional<DeflateAgreement> accept(const http::param_list& params, int maxWindowBits) {
    bool serverNoTakeover = false, clientNoTakeover = false, clientBits = false;
    std::optional<int> serverBits;
    for (const auto& [name, value] : params) {
        if (named(name, "server_no_context_takeover") && value.empty() && !serverNoTakeover) {
            serverNoTakeover = true;
        } else if (named(name, "client_no_context_takeover") && value.empty() && !clientNoTakeover) {
            clientNoTakeover = true;
        } else if (named(name, "server_max_window_bits") && !serverBits) {
            serverBits = windowBitsOf(value);
            if (!serverBits) return std::nullopt;
        } else if (named(name, "client_max_window_bits") && !clientBits) {
            // With or without a value, it only says the client could use a smaller window; we
            // inflate any window, so the answer leaves it out and the client chooses.
            if (!value.empty() && !windowBitsOf(value)) return std::nullopt;
            clientBits = true;
        } else {
            return std::nullopt;
        }
    }
    if (serverBits == 8) return std::nullopt;
    // Without a limit from the client, a window smaller than 2^15 needs no word: the client's
    // inflater takes any window up to its own.
    return DeflateAgreement{std::min(maxWindowBits, serverBits.value_or(15)), serverBits.has_value()};
}

}  // namespace

std::string DeflateAgreement::response() const {
    std::string response = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
    if (announceWindowBits) response += "; server_max_window_bits=" + std::to_string(windowBits);
    return response;
}

std::optional<DeflateAgreement> agreeOnDeflate(std::string_view offers, int maxWindowBits) {
    for (const auto& extension : http::ext_list(boost::beast::string_view(offers.data(), offers.size()))) {
        if (!named(extension.first, "permessage-deflate")) continue;
        if (auto agreement = accept(extension.second, maxWindowBits)) return agreement;
    }
    return std::nullopt;
}

}  // namespace wspush
