// Every code a client or a backend can see, one table each (docs/protocol.md, docs/http-api.md).
#pragma once

#include <cstdint>
#include <string_view>

namespace wspush {

// Codes of `{"type":"error","code":…}` replies to client commands.
enum class ErrorCode : int {
    Internal = 100,
    Unauthorized = 101,
    UnknownNamespace = 102,
    PermissionDenied = 103,
    UnknownCommand = 104,
    AlreadySubscribed = 105,
    LimitExceeded = 106,
    BadRequest = 107,
    NotConnected = 108,
    AlreadyConnected = 109,
    InvalidChannel = 110,
    NotSubscribed = 111,
    MalformedMessage = 112,
    QosViolation = 113,
    TokenExpired = 114,     // expired or not yet valid: get a new token (close 4006 follows on connect)
    Unavailable = 115,      // the engine cannot be reached right now: retry
    TooManyRequests = 116,  // a per-connection rate limit: slow down (close 4009 if it goes on)
};

// Why the server closes a connection: the close frame's code, the `disconnect` message's reason,
// and whether the client should reconnect. 4000-4499 reconnect, 4500-4999 do not.
struct Disconnect {
    std::uint16_t code;
    std::string_view reason;
    bool reconnect;
};

namespace disconnects {
inline constexpr Disconnect kShutdown{1001, "shutdown", true};
inline constexpr Disconnect kSlowConsumer{4001, "slow consumer", true};
inline constexpr Disconnect kNoPong{4002, "no pong", true};
inline constexpr Disconnect kConnectTimeout{4003, "connect timeout", true};
inline constexpr Disconnect kInternalError{4004, "internal error", true};
inline constexpr Disconnect kUnhealthy{4005, "unhealthy", true};
inline constexpr Disconnect kTokenExpired{4006, "token expired", true};          // reconnect with a new token
inline constexpr Disconnect kDisconnectedReconnect{4007, "disconnected", true};  // POST /api/disconnect, reconnect
inline constexpr Disconnect kUnavailable{4008, "unavailable", true};  // connect: the engine cannot be reached
inline constexpr Disconnect kTooManyRequests{4009, "too many requests", true};
inline constexpr Disconnect kTooManyConnections{4010, "too many connections", true};  // limits.connections_per_user
inline constexpr Disconnect kBadRequest{4500, "bad request", false};
inline constexpr Disconnect kUnauthorized{4501, "unauthorized", false};
inline constexpr Disconnect kTakenOver{4502, "session taken over", false};
inline constexpr Disconnect kDisconnected{4503, "disconnected", false};  // POST /api/disconnect
}  // namespace disconnects

// Codes of `{"error":{"code":…}}` bodies of the HTTP API; the HTTP status is the first three digits.
enum class ApiErrorCode : int {
    MalformedJson = 40001,
    MissingField = 40002,
    WrongType = 40003,
    InvalidChannel = 40004,
    UnknownNamespace = 40005,
    InvalidIdempotencyKey = 40006,
    NoPresence = 40007,  // the channel's namespace keeps no presence
    Unauthorized = 40101,
    Forbidden = 40301,
    MissingScope = 40302,  // the API key lacks the scope this request needs
    NotFound = 40401,
    MethodNotAllowed = 40501,
    Conflict = 40901,
    PayloadTooLarge = 41301,
    UriTooLong = 41401,  // limits.max_url_bytes
    UnsupportedMediaType = 41501,
    TooManyRequests = 42901,  // limits.connections_per_ip or connects_per_second_per_ip
    HeadersTooLarge = 43101,  // limits.max_header_bytes
    Internal = 50001,
    Unavailable = 50301,
    NodeFull = 50302,  // limits.connections_per_node: try another node
};

}  // namespace wspush
