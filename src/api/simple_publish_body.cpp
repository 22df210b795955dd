#include "api/simple_publish_body.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>

namespace wspush {
namespace {

constexpr int kMaxDepth = 16;
constexpr std::size_t kMaxKeysPerObject = 32;  // duplicate keys are looked for pairwise

class Reader {
public:
    explicit Reader(std::string_view text) : text_(text) {}

    std::optional<SimplePublishBody> body() {
        SimplePublishBody result;
        bool haveChannel = false;
        bool haveData = false;
        if (!take('{')) return std::nullopt;
        do {
            std::string_view key;
            if (!string(key) || !take(':')) return std::nullopt;
            if (key == "channel" && !haveChannel) {
                haveChannel = true;
                if (!string(result.channel)) return std::nullopt;
            } else if (key == "data" && !haveData) {
                haveData = true;
                if (!value(result.data, 1)) return std::nullopt;
            } else {
                return std::nullopt;
            }
        } while (take(','));
        if (!take('}') || !haveChannel || !haveData) return std::nullopt;
        skipSpace();
        if (position_ != text_.size()) return std::nullopt;
        return result;
    }

private:
    void skipSpace() {
        while (position_ < text_.size() && (text_[position_] == ' ' || text_[position_] == '\t' ||
                                            text_[position_] == '\n' || text_[position_] == '\r'))
            ++position_;
    }
    bool take(char expected) {
        skipSpace();
        if (position_ == text_.size() || text_[position_] != expected) return false;
        ++position_;
        return true;
    }
    char peek() {
        skipSpace();
        return position_ < text_.size() ? text_[position_] : '\0';
    }

    // Quotes included in `out` when `quoted`.
    bool string(std::string_view& out, bool quoted = false) {
        if (!take('"')) return false;
        std::size_t start = position_;
        while (position_ < text_.size() && text_[position_] != '"') {
            char c = text_[position_];
            if (c < 0x20 || c > 0x7e || c == '\\') return false;
            ++position_;
        }
        if (position_ == text_.size()) return false;
        out = quoted ? text_.substr(start - 1, position_ - start + 2) : text_.substr(start, position_ - start);
        ++position_;
        return true;
    }

    bool value(std::string& out, int depth) {
        char c = peek();
        if (c == '"') {
            std::string_view text;
            if (!string(text, true)) return false;
            out += text;
            return true;
        }
        if (c == '{' || c == '[') return depth < kMaxDepth && container(out, depth, c == '{');
        if (c == '-' || (c >= '0' && c <= '9')) return integer(out);
        for (std::string_view literal : {std::string_view("true"), std::string_view("false"), std::string_view("null")})
            if (text_.substr(position_, literal.size()) == literal) {
                position_ += literal.size();
                out += literal;
                return true;
            }
        return false;
    }

    bool container(std::string& out, int depth, bool object) {
        const char close = object ? '}' : ']';
        out += text_[position_++];
        if (take(close)) {
            out += close;
            return true;
        }
        std::array<std::string_view, kMaxKeysPerObject> keys;
        std::size_t count = 0;
        do {
            if (count > 0) out += ',';
            if (object) {
                std::string_view key;
                if (count == kMaxKeysPerObject || !string(key, true) || !take(':')) return false;
                if (std::find(keys.begin(), keys.begin() + count, key) != keys.begin() + count) return false;
                keys[count] = key;
                out += key;
                out += ':';
            }
            ++count;
            if (!value(out, depth + 1)) return false;
        } while (take(','));
        if (!take(close)) return false;
        out += close;
        return true;
    }

    // -?(0|[1-9][0-9]*), no fraction or exponent, within nlohmann's int64 (negative) or uint64:
    // such an integer comes back as written. Beyond them it would become a double.
    bool integer(std::string& out) {
        std::size_t start = position_;
        bool negative = text_[position_] == '-';
        if (negative) ++position_;
        std::size_t digits = position_;
        while (position_ < text_.size() && text_[position_] >= '0' && text_[position_] <= '9') ++position_;
        std::size_t count = position_ - digits;
        if (count == 0) return false;
        if (text_[digits] == '0' && (count > 1 || negative)) return false;  // 01, -0
        if (position_ < text_.size() && (text_[position_] == '.' || text_[position_] == 'e' || text_[position_] == 'E'))
            return false;
        const char* first = text_.data() + start;
        const char* last = text_.data() + position_;
        std::int64_t signedValue = 0;
        std::uint64_t unsignedValue = 0;
        auto parsed =
            negative ? std::from_chars(first, last, signedValue) : std::from_chars(first, last, unsignedValue);
        if (parsed.ec != std::errc() || parsed.ptr != last) return false;
        out.append(first, last);
        return true;
    }

    std::string_view text_;
    std::size_t position_ = 0;
};

}  // namespace

std::optional<SimplePublishBody> readSimplePublishBody(std::string_view body) {
    return Reader(body).body();
}

}  // namespace wspush
