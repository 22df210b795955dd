#include "transport/http_response_bytes.h"

#include <algorithm>
#include <charconv>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/status.hpp>

namespace wspush {
namespace {

namespace http = boost::beast::http;

// The optional fields in the order HttpSession set them on Beast's message, which writes fields
// in insertion order; setting a name again (a response's own headers) moves it to the end.
class FieldList {
public:
    void set(std::string_view name, std::string_view value) {
        std::erase_if(fields_, [&](const auto& field) { return boost::beast::iequals(field.first, name); });
        fields_.emplace_back(name, value);
    }
    const std::vector<std::pair<std::string_view, std::string_view>>& fields() const { return fields_; }

private:
    std::vector<std::pair<std::string_view, std::string_view>> fields_;
};

void appendField(std::string& out, std::string_view name, std::string_view value) {
    out.append(name);
    out.append(": ");
    out.append(value);
    out.append("\r\n");
}

// Beast's prepare_payload: these statuses carry no Content-Length.
bool hasNoContentLength(unsigned status) {
    return (status >= 100 && status < 200) || status == 204 || status == 304;
}

}  // namespace

void appendResponseBytes(std::string& out, const ApiResponse& response, const ResponseFraming& framing) {
    out.append("HTTP/1.");
    out.push_back(static_cast<char>('0' + framing.version % 10));
    out.push_back(' ');
    char number[24];
    auto end = std::to_chars(number, number + sizeof number, response.status).ptr;
    out.append(number, end);
    out.push_back(' ');
    out.append(http::obsolete_reason(static_cast<http::status>(response.status)));
    out.append("\r\n");

    const bool plain = response.allow.empty() && response.location.empty() && response.cacheControl.empty() &&
                       response.status != 401 && !response.replayed && response.headers.empty();
    if (plain) {
        // The publish path: no field replaces another, so no list to keep.
        appendField(out, "Server", "wspush");
        appendField(out, "Content-Type", response.contentType);
        appendField(out, "X-Content-Type-Options", "nosniff");
    } else {
        FieldList fields;
        fields.set("Server", "wspush");
        fields.set("Content-Type", response.contentType);
        fields.set("X-Content-Type-Options", "nosniff");
        if (!response.allow.empty()) fields.set("Allow", response.allow);
        if (!response.location.empty()) fields.set("Location", response.location);
        if (!response.cacheControl.empty()) fields.set("Cache-Control", response.cacheControl);
        if (response.status == 401) fields.set("WWW-Authenticate", "Bearer");
        if (response.replayed) fields.set("Idempotency-Replayed", "true");
        for (const auto& [name, value] : response.headers) fields.set(name, value);
        for (const auto& [name, value] : fields.fields()) appendField(out, name, value);
    }
    // HTTP/1.1 keeps the connection unless told; HTTP/1.0 closes it unless told.
    if (framing.version >= 11 && !framing.keepAlive) appendField(out, "Connection", "close");
    if (framing.version < 11 && framing.keepAlive) appendField(out, "Connection", "keep-alive");
    if (!hasNoContentLength(response.status)) {
        end = std::to_chars(number, number + sizeof number, response.body.size()).ptr;
        appendField(out, "Content-Length", std::string_view(number, static_cast<std::size_t>(end - number)));
    }
    out.append("\r\n");
    if (!framing.head) out.append(response.body);
}

}  // namespace wspush
