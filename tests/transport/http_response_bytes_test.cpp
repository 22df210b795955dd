#include "transport/http_response_bytes.h"

#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace wspush {
namespace {

namespace http = boost::beast::http;

// What HttpSession wrote through Beast before it built responses by hand: the reference.
std::string beastBytes(const ApiResponse& response, const ResponseFraming& framing) {
    http::response<http::string_body> message;
    message.version(framing.version);
    message.result(response.status);
    message.set(http::field::server, "wspush");
    message.set(http::field::content_type, response.contentType);
    message.set("X-Content-Type-Options", "nosniff");
    if (!response.allow.empty()) message.set(http::field::allow, response.allow);
    if (!response.location.empty()) message.set(http::field::location, response.location);
    if (!response.cacheControl.empty()) message.set(http::field::cache_control, response.cacheControl);
    if (response.status == 401) message.set(http::field::www_authenticate, "Bearer");
    if (response.replayed) message.set("Idempotency-Replayed", "true");
    for (const auto& [name, value] : response.headers) message.set(name, value);
    message.body() = response.body;
    message.keep_alive(framing.keepAlive);
    message.prepare_payload();
    if (framing.head) message.body().clear();
    std::ostringstream out;
    out << message;
    return out.str();
}

std::string handBytes(const ApiResponse& response, const ResponseFraming& framing) {
    std::string out;
    appendResponseBytes(out, response, framing);
    return out;
}

std::vector<ApiResponse> sampleResponses() {
    std::vector<ApiResponse> responses;
    ApiResponse published;
    published.body = R"({"channel":"news","offset":1,"epoch":"abcd","mid":"0123"})";
    published.wasPublish = true;
    responses.push_back(published);

    ApiResponse empty;
    responses.push_back(empty);

    ApiResponse unauthorized = HttpApi::error(ApiErrorCode::Unauthorized, "missing or invalid API key");
    responses.push_back(unauthorized);

    ApiResponse notAllowed = HttpApi::error(ApiErrorCode::MethodNotAllowed, "method not allowed");
    notAllowed.allow = "POST";
    responses.push_back(notAllowed);

    ApiResponse replayed = published;
    replayed.replayed = true;
    responses.push_back(replayed);

    ApiResponse redirect;
    redirect.status = 308;
    redirect.location = "/admin/";
    redirect.body = "";
    responses.push_back(redirect);

    ApiResponse page;
    page.contentType = "text/html; charset=utf-8";
    page.cacheControl = "no-cache";
    page.body = std::string(100000, 'x');
    page.headers = {{"Content-Security-Policy", "default-src 'self'"}, {"X-Frame-Options", "DENY"}};
    responses.push_back(page);

    ApiResponse overridden = published;  // a header of the response's own replaces a standard one
    overridden.headers = {{"content-type", "text/plain"}, {"Server", "other"}};
    responses.push_back(overridden);

    ApiResponse accepted;
    accepted.status = 202;
    accepted.body = R"({"accepted":true})";
    responses.push_back(accepted);

    ApiResponse unavailable = HttpApi::error(ApiErrorCode::Unavailable, "the engine is unavailable: retry");
    responses.push_back(unavailable);

    ApiResponse unknownStatus;
    unknownStatus.status = 599;
    responses.push_back(unknownStatus);
    return responses;
}

TEST(HttpResponseBytes, AreWhatBeastWritesForTheSameResponse) {
    for (const ApiResponse& response : sampleResponses())
        for (unsigned version : {10u, 11u})
            for (bool keepAlive : {true, false})
                for (bool head : {false, true}) {
                    ResponseFraming framing{version, keepAlive, head};
                    EXPECT_EQ(handBytes(response, framing), beastBytes(response, framing))
                        << "status " << response.status << ", HTTP/" << version << ", keep-alive " << keepAlive
                        << ", HEAD " << head;
                }
}

TEST(HttpResponseBytes, AppendToWhatIsAlreadyThere) {
    ApiResponse response;
    response.body = "{}";
    std::string out = "before";
    appendResponseBytes(out, response, ResponseFraming{});
    EXPECT_EQ(out, "before" + beastBytes(response, ResponseFraming{}));
}

}  // namespace
}  // namespace wspush
