// Drives the read side of a client's WebSocket connection as the daemon sets it up
// (WebSocketSession::start and doRead, src/transport/websocket_session.cpp), in either of its two
// ways of inflating, chosen by the input's first byte:
//   - the shared compression (plain connections, the default): the client's bytes go through
//     InboundDeflateFilter, fed in pieces whose size the second byte sets, and then to a Beast
//     server stream without permessage-deflate;
//   - Beast's own permessage-deflate (TLS, or context_takeover: true).
// Either way read_message_max = websocket.max_message_size, and reads are of at most 128 bytes
// while idle, then up to the rest of the message. The rest of the input is everything the client
// sends after its upgrade request: frames, masked or not, RSV1 (compressed) or not, fragmented,
// control frames, garbage. The transport is an in-memory beast::test::stream pair, so all of it
// is there at once and then the client's side closes.
//
// Asserts, beyond "no crash, no leak, no UB": a message is never longer than max_message_size,
// however far its compressed bytes would inflate (a decompression bomb ends in 1009
// message_too_big at the limit), and every read makes progress or ends the connection.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "base/raw_deflate.h"
#include "transport/inbound_deflate_filter.h"
#include "wspush/config.h"

namespace wspush {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

// WebSocketSession's first-read limit.
constexpr std::size_t kFirstReadLimit = 128;

void check(bool condition, const char* what) {
    if (!condition) {
        std::fprintf(stderr, "fuzz_inflate: invariant broken: %s\n", what);
        std::abort();
    }
}

// The daemon's defaults, compression on (it is off by default): what a deployment that enables it runs.
WebSocketConfig fuzzConfig() {
    WebSocketConfig config;
    config.compression.enabled = true;
    return config;
}

http::request<http::string_body> upgradeRequest() {
    http::request<http::string_body> request{http::verb::get, "/connection/websocket", 11};
    request.set(http::field::host, "localhost");
    request.set(http::field::upgrade, "websocket");
    request.set(http::field::connection, "upgrade");
    request.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
    request.set(http::field::sec_websocket_version, "13");
    request.set(http::field::sec_websocket_extensions, "permessage-deflate; client_max_window_bits");
    return request;
}

}  // namespace
}  // namespace wspush

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace wspush;
    static const WebSocketConfig config = fuzzConfig();

    if (size < 2) return 0;
    const bool shared = (data[0] & 1) == 0;
    const std::size_t piece = 1 + data[1] % 64;
    data += 2;
    size -= 2;

    boost::asio::io_context context;
    beast::test::stream client(context);
    websocket::stream<beast::test::stream> server(context);
    server.next_layer().connect(client);

    websocket::permessage_deflate deflate;
    deflate.server_enable = !shared;
    deflate.server_max_window_bits = config.compression.window_bits;
    deflate.client_max_window_bits = config.compression.window_bits;
    deflate.compLevel = config.compression.level;
    deflate.memLevel = config.compression.mem_level;
    deflate.msg_size_threshold = config.compression.threshold;
    server.set_option(deflate);
    server.read_message_max(config.max_message_size);
    server.auto_fragment(false);

    beast::error_code ec;
    server.accept(upgradeRequest(), ec);
    check(!ec, "the handshake succeeds");

    // Everything the client sends, then the end of its stream: reads end, never wait.
    if (shared) {
        static RawInflater inflater;  // the event loop's, shared by its connections
        InboundDeflateFilter filter(inflater, config.max_message_size);
        std::string filtered;
        for (std::size_t at = 0; at < size; at += piece) {
            std::size_t before = filtered.size();
            filter.filter(std::string_view(reinterpret_cast<const char*>(data) + at, std::min(piece, size - at)),
                          filtered);
            // An inflated message is one frame header more than the limit at most.
            check(filtered.size() - before <= piece + config.max_message_size + 14, "the filter's output is bounded");
        }
        boost::asio::write(client, boost::asio::buffer(filtered), ec);
    } else {
        boost::asio::write(client, boost::asio::buffer(data, size), ec);
    }
    client.close();

    beast::flat_buffer message;
    while (true) {
        std::size_t limit = message.size() == 0 ? kFirstReadLimit : config.max_message_size;
        std::size_t before = message.size();
        std::size_t read = server.read_some(message, limit, ec);
        check(message.size() == before + read, "the buffer grows by what was read");
        check(message.size() <= config.max_message_size, "a message stays within max_message_size");
        if (ec) break;
        if (server.is_message_done()) message.clear();
        // What the server answered (pongs, a close) piles up on the client's side; nobody reads it.
        client.buffer().consume(client.buffer().size());
    }
    return 0;
}
