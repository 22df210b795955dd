// How a publication travels through Redis: the text kept in a history entry (`body`) and the
// pub/sub message (`header` + body). Newline-separated, data last: data is compact JSON that never
// holds a raw newline, mids and epochs are restricted to printable characters without one, so
// neither side escapes anything and decoding is a few finds.
//
//   body:    <qos>\n<ts>\n<mid>\n<data>
//   message: <offset>\n<epoch>\n<report origin: "<id>:<node>" or "">\n<body>
//   event:   e\n<frame>   (Broker::publishEvent; an offset never starts with a letter)
//
// The Lua scripts read <ts> from a body to expire history (redis_lua.cpp): keep it second.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "wspush/publication.h"

namespace wspush {

inline constexpr std::string_view kEventPrefix = "e\n";

std::string encodeBody(const Publication& publication);
// What an idempotency result keeps besides offset and epoch: <ts>\n<mid>.
std::string encodeFirstPublished(const Publication& publication);
std::string encodeReportOrigin(const ReportOrigin& origin);

// nullopt when malformed: the caller logs it and drops the message.
std::optional<Publication> decodeBody(std::string_view channel, std::uint64_t offset, std::string_view epoch,
                                      std::string_view body);
std::optional<Publication> decodeMessage(std::string_view channel, std::string_view message);
// "<offset>\n<epoch>\n<ts>\n<mid>" (an idempotency result) as a publication without data.
std::optional<Publication> decodeFirstPublished(std::string_view channel, std::string_view text);

// "17-0" → 17; nullopt for anything else.
std::optional<std::uint64_t> offsetOfStreamId(std::string_view id);
std::optional<std::uint64_t> parseDecimal(std::string_view text);

}  // namespace wspush
