// A Redis reply as an owned value: hiredis's redisReply is freed when its callback returns, so
// every reply is copied into this tree before it leaves the connection. Shapes are checked by the
// caller with the accessors, which never throw: a reply of an unexpected shape is a protocol
// error the caller reports, not a crash.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct redisReply;

namespace wspush {

struct RedisReply {
    enum class Type { Nil, Status, Error, Integer, String, Array };

    Type type = Type::Nil;
    std::int64_t integer = 0;
    std::string string;  // Status, Error and String
    std::vector<RedisReply> elements;

    static RedisReply fromHiredis(const redisReply& reply);

    bool isNil() const { return type == Type::Nil; }
    bool isError() const { return type == Type::Error; }
    bool isArray() const { return type == Type::Array; }
    // The integer of an Integer reply, or of a String reply that holds a decimal integer.
    std::optional<std::int64_t> asInteger() const;
    // The text of a String or Status reply.
    std::optional<std::string_view> asString() const;
    // An Error reply whose message starts with `prefix` (e.g. "NOSCRIPT", "LOADING").
    bool isErrorWith(std::string_view prefix) const;
    // For logs: a short rendering, e.g. `["message","ch","…"]`.
    std::string describe() const;
};

}  // namespace wspush
