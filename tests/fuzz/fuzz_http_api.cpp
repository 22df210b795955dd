// Drives the HTTP API from raw bytes: Beast's request parser, with the body, header and URL limits
// HttpSession applies, then HttpApi::handle (src/api/http_api.cpp) on a real node with the in-memory
// engine and an API key, as HttpSession turns a request into an ApiRequest. Up to 8 pipelined
// requests per input, so a publish can be followed by the history, idempotent replays and so on.
//
// Asserts, beyond "no crash, no leak, no UB":
// - every request is answered exactly once, by the time the loop has run what it was handed
//   (a "wait" timeout fires at once: `after` posts its task);
// - the answer's status is a real one (100..599), a 405 says what is allowed, and a JSON answer
//   is valid JSON.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/post.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <nlohmann/json.hpp>

#include "api/http_api.h"
#include "base/clock.h"
#include "engine/memory/memory_broker.h"
#include "node/event_loop.h"
#include "node/node.h"
#include "support/one_node_engine.h"

namespace wspush {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;

constexpr std::size_t kMaxRequestsPerInput = 8;

void check(bool condition, const char* what) {
    if (!condition) {
        std::fprintf(stderr, "fuzz_http_api: invariant broken: %s\n", what);
        std::abort();
    }
}

Config fuzzConfig() {
    Config config;
    config.api.keys.push_back(ApiKey{"fuzz", "fuzz-api-key-0123456789"});
    // Small enough that the fuzzer reaches it; HttpSession answers 413 past it.
    config.api.max_body_size = 64 * 1024;
    config.channel_defaults.history_size = 10;
    NamespaceConfig chat = config.channel_defaults;
    chat.presence = true;
    chat.default_qos = 1;
    config.namespaces["chat"] = chat;
    config.inbox.max_messages = 10;
    return config;
}

// As HttpSession::onRead builds it.
ApiRequest toApiRequest(http::request<http::string_body>& request, boost::asio::io_context& context) {
    std::string_view target = request.target();
    std::string_view path = target.substr(0, target.find('?'));
    ApiRequest apiRequest;
    apiRequest.method = std::string(request.method_string());
    apiRequest.path = std::string(path);
    if (path.size() < target.size()) apiRequest.query = std::string(target.substr(path.size() + 1));
    apiRequest.authorization = std::string(request[http::field::authorization]);
    apiRequest.contentType = std::string(request[http::field::content_type]);
    apiRequest.body = std::move(request.body());
    apiRequest.fromLoopback = true;
    if (auto key = request.find("Idempotency-Key"); key != request.end())
        apiRequest.idempotencyKey = std::string(key->value());
    apiRequest.after = [&context](std::chrono::milliseconds, std::function<void()> task) {
        boost::asio::post(context, std::move(task));  // the timeout, at once: inputs stay bounded in time
    };
    return apiRequest;
}

void checkResponse(const ApiResponse& response) {
    check(response.status >= 100 && response.status <= 599, "a real status");
    if (response.status == 405) check(!response.allow.empty(), "a 405 says what is allowed");
    if (response.contentType == "application/json")
        check(nlohmann::json::accept(response.body), "a JSON answer is JSON");
}

}  // namespace
}  // namespace wspush

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace wspush;
    static const ManualClock clock;  // fixed time: replays are deterministic
    std::string_view input(reinterpret_cast<const char*>(data), size);

    // A fresh node per input, so an input means the same on every run.
    Node node(fuzzConfig(), "fuzz-node",
              testing::oneNodeEngine(std::make_unique<MemoryBroker>("fuzz", [] { return std::int64_t{1700000000000}; }),
                                     clock),
              clock);
    EventLoopPool loops(1);
    node.attach(loops);
    auto& context = loops.at(0).context();
    HttpApi api(node, [] { return std::chrono::steady_clock::time_point{}; });

    for (std::size_t requests = 0; requests < kMaxRequestsPerInput && !input.empty(); ++requests) {
        http::request_parser<http::string_body> parser;
        parser.body_limit(node.config().api.max_body_size);
        parser.header_limit(static_cast<std::uint32_t>(node.config().limits.max_header_bytes));
        parser.eager(true);
        beast::error_code ec;
        while (!parser.is_done()) {
            std::size_t used = parser.put(boost::asio::buffer(input.data(), input.size()), ec);
            input.remove_prefix(used);
            if (ec == http::error::need_more)
                ec = {};
            else if (ec)
                break;
            // No progress with all the rest in hand: the client has nothing more to send.
            if (used == 0 && !parser.is_done()) {
                parser.put_eof(ec);
                break;
            }
        }
        // HttpSession answers 413, 431 or 414, or closes: HttpApi never sees these.
        if (ec || !parser.is_done() || parser.get().target().size() > node.config().limits.max_url_bytes) break;

        ApiRequest request = toApiRequest(parser.get(), context);
        int answers = 0;
        api.handle(request, ListenerRoutes{}, [&answers](ApiResponse response) {
            ++answers;
            checkResponse(response);
        });
        context.poll();
        context.restart();
        check(answers == 1, "answered exactly once");
    }
    context.poll();
    return 0;
}
