// Answering a client's permessage-deflate offer (RFC 7692) for the shared compression: no
// context takeover in either direction, so that every message is compressed once for all the
// connections that get it and inflated without a zlib state per connection
// (docs/performance.md, "Compression").
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace wspush {

struct DeflateAgreement {
    int windowBits = 15;              // of the server's compression: the client's limit, or ours if lower
    bool announceWindowBits = false;  // the client set a limit, which the answer confirms (7.1.2.1)

    std::string response() const;  // the Sec-WebSocket-Extensions value that accepts
};

// The first offer in `offers` (a Sec-WebSocket-Extensions value) that can be accepted, with at
// most 2^`maxWindowBits` of window for what the server compresses; none when no offer can.
// An offer with an unknown or repeated parameter, or a malformed value, is declined (7.1), as
// is one that limits the server's window to 2^8: zlib's raw deflate starts at 2^9.
std::optional<DeflateAgreement> agreeOnDeflate(std::string_view offers, int maxWindowBits);

}  // namespace wspush
