// The bytes of an API response on the wire, built by hand: exactly what Beast's serializer writes
// for the message HttpSession used to build (tests/transport/http_response_bytes_test.cpp holds
// it to that), without a field container and a serializer per response. Pipelined responses are
// appended one after the other and leave in one write.
#pragma once

#include <string>

#include "api/http_api.h"

namespace wspush {

struct ResponseFraming {
    unsigned version = 11;  // the request's: 10 or 11
    bool keepAlive = true;
    bool head = false;  // a HEAD request: the GET's headers, Content-Length included, and no body
};

void appendResponseBytes(std::string& out, const ApiResponse& response, const ResponseFraming& framing);

}  // namespace wspush
