#include "engine/redis/publication_codec.h"

#include <charconv>

namespace wspush {

namespace {

// Splits off the text before the next '\n'; false when there is none.
bool nextField(std::string_view& rest, std::string_view& field) {
    auto end = rest.find('\n');
    if (end == std::string_view::npos) return false;
    field = rest.substr(0, end);
    rest.remove_prefix(end + 1);
    return true;
}

std::optional<std::int64_t> parseSigned(std::string_view text) {
    std::int64_t value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc{} || end != text.data() + text.size() || text.empty()) return std::nullopt;
    return value;
}

}  // namespace

std::optional<std::uint64_t> parseDecimal(std::string_view text) {
    std::uint64_t value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc{} || end != text.data() + text.size() || text.empty()) return std::nullopt;
    return value;
}

std::string encodeBody(const Publication& publication) {
    std::string body;
    body.reserve(publication.data.size() + publication.mid.size() + 24);
    body.push_back(static_cast<char>('0' + publication.qos));
    body.push_back('\n');
    body.append(std::to_string(publication.timestampMs)).push_back('\n');
    body.append(publication.mid).push_back('\n');
    body.append(publication.data);
    return body;
}

std::string encodeFirstPublished(const Publication& publication) {
    return std::to_string(publication.timestampMs) + "\n" + publication.mid;
}

std::string encodeReportOrigin(const ReportOrigin& origin) {
    return std::to_string(origin.id) + ":" + origin.node;
}

std::optional<Publication> decodeBody(std::string_view channel, std::uint64_t offset, std::string_view epoch,
                                      std::string_view body) {
    std::string_view qos, ts, mid;
    if (!nextField(body, qos) || !nextField(body, ts) || !nextField(body, mid)) return std::nullopt;
    auto timestamp = parseSigned(ts);
    if (qos.size() != 1 || qos[0] < '0' || qos[0] > '2' || !timestamp || mid.empty()) return std::nullopt;
    Publication publication;
    publication.channel = std::string(channel);
    publication.offset = offset;
    publication.epoch = std::string(epoch);
    publication.mid = std::string(mid);
    publication.timestampMs = *timestamp;
    publication.data = std::string(body);
    publication.qos = qos[0] - '0';
    return publication;
}

std::optional<Publication> decodeMessage(std::string_view channel, std::string_view message) {
    std::string_view offsetText, epoch, origin;
    if (!nextField(message, offsetText) || !nextField(message, epoch) || !nextField(message, origin))
        return std::nullopt;
    auto offset = parseDecimal(offsetText);
    if (!offset || *offset == 0 || epoch.empty()) return std::nullopt;
    auto publication = decodeBody(channel, *offset, epoch, message);
    if (!publication || origin.empty()) return publication;
    auto colon = origin.find(':');
    auto id = parseDecimal(origin.substr(0, colon));
    if (colon == std::string_view::npos || !id || colon + 1 == origin.size()) return std::nullopt;
    publication->reportOrigin =
        std::make_shared<const ReportOrigin>(ReportOrigin{std::string(origin.substr(colon + 1)), *id});
    return publication;
}

std::optional<Publication> decodeFirstPublished(std::string_view channel, std::string_view text) {
    std::string_view offsetText, epoch, ts;
    if (!nextField(text, offsetText) || !nextField(text, epoch) || !nextField(text, ts)) return std::nullopt;
    auto offset = parseDecimal(offsetText);
    auto timestamp = parseSigned(ts);
    if (!offset || !timestamp || epoch.empty() || text.empty()) return std::nullopt;
    Publication publication;
    publication.channel = std::string(channel);
    publication.offset = *offset;
    publication.epoch = std::string(epoch);
    publication.timestampMs = *timestamp;
    publication.mid = std::string(text);
    return publication;
}

std::optional<std::uint64_t> offsetOfStreamId(std::string_view id) {
    if (id.size() < 3 || id.substr(id.size() - 2) != "-0") return std::nullopt;
    return parseDecimal(id.substr(0, id.size() - 2));
}

}  // namespace wspush
