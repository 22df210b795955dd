#include "engine/redis/redis_reply.h"

#include <charconv>

#include <hiredis/hiredis.h>

namespace wspush {

namespace {

// describe() renders at most this much of a string and this many elements: a reply in a log line
// is a hint, and a 512-channel confirmation or a large payload must not become a 1 MB line.
constexpr std::size_t kDescribeStringBytes = 64;
constexpr std::size_t kDescribeElements = 8;

void describeInto(const RedisReply& reply, std::string& out) {
    switch (reply.type) {
        case RedisReply::Type::Nil: out += "nil"; return;
        case RedisReply::Type::Integer: out += std::to_string(reply.integer); return;
        case RedisReply::Type::Status:
        case RedisReply::Type::Error:
        case RedisReply::Type::String: {
            if (reply.type == RedisReply::Type::Error) out += "error ";
            if (reply.type == RedisReply::Type::Status) out += "status ";
            out += '"';
            out.append(reply.string, 0, kDescribeStringBytes);
            if (reply.string.size() > kDescribeStringBytes) out += "…";
            out += '"';
            return;
        }
        case RedisReply::Type::Array: {
            out += '[';
            for (std::size_t i = 0; i < reply.elements.size(); ++i) {
                if (i > 0) out += ',';
                if (i == kDescribeElements) {
                    out += "…(" + std::to_string(reply.elements.size()) + " elements)";
                    break;
                }
                describeInto(reply.elements[i], out);
            }
            out += ']';
            return;
        }
    }
}

}  // namespace

RedisReply RedisReply::fromHiredis(const redisReply& reply) {
    RedisReply copy;
    switch (reply.type) {
        case REDIS_REPLY_STRING:
            copy.type = Type::String;
            copy.string.assign(reply.str, reply.len);
            break;
        case REDIS_REPLY_STATUS:
            copy.type = Type::Status;
            copy.string.assign(reply.str, reply.len);
            break;
        case REDIS_REPLY_ERROR:
            copy.type = Type::Error;
            copy.string.assign(reply.str, reply.len);
            break;
        case REDIS_REPLY_INTEGER:
            copy.type = Type::Integer;
            copy.integer = reply.integer;
            break;
        case REDIS_REPLY_ARRAY:
            copy.type = Type::Array;
            copy.elements.reserve(reply.elements);
            for (std::size_t i = 0; i < reply.elements; ++i) {
                // hiredis leaves no hole in an array it parsed; a null element would be its bug.
                if (reply.element[i] == nullptr) {
                    copy.elements.emplace_back();
                    continue;
                }
                copy.elements.push_back(fromHiredis(*reply.element[i]));
            }
            break;
        default:  // REDIS_REPLY_NIL, and any type a later hiredis could add
            copy.type = Type::Nil;
            break;
    }
    return copy;
}

std::optional<std::int64_t> RedisReply::asInteger() const {
    if (type == Type::Integer) return integer;
    if (type != Type::String || string.empty()) return std::nullopt;
    std::int64_t value = 0;
    const char* end = string.data() + string.size();
    auto [ptr, ec] = std::from_chars(string.data(), end, value);
    if (ec != std::errc{} || ptr != end) return std::nullopt;
    return value;
}

std::optional<std::string_view> RedisReply::asString() const {
    if (type != Type::String && type != Type::Status) return std::nullopt;
    return std::string_view(string);
}

bool RedisReply::isErrorWith(std::string_view prefix) const {
    return type == Type::Error && std::string_view(string).substr(0, prefix.size()) == prefix;
}

std::string RedisReply::describe() const {
    std::string out;
    describeInto(*this, out);
    return out;
}

}  // namespace wspush
