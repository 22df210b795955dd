// Client → server commands of protocol v1 (docs/protocol.md): parsing and validation only.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "wspush/codes.h"
#include "wspush/publication.h"

namespace wspush {

enum class CommandType {
    Connect,
    Subscribe,
    Unsubscribe,
    Publish,
    History,
    Presence,
    PresenceStats,
    Status,
    Ping,
    Ack,
    Rec,
    Comp,
    Pubrel,
    Refresh
};

// The most publications one `history` command (or GET /api/history) returns.
inline constexpr std::size_t kMaxHistoryLimit = 1000;
inline constexpr std::size_t kDefaultHistoryLimit = 100;
// The most users one `status` command (or POST /api/users/status) asks about.
inline constexpr std::size_t kMaxStatusUsers = 1000;
// The most bytes of a connection's `info` object, compact: it travels in every presence entry and
// join/leave push of the connection.
inline constexpr std::size_t kMaxInfoBytes = 1024;
// `connect`'s `since`: at most as many channels as a token may name.
inline constexpr std::size_t kMaxConnectPositions = 128;

struct ClientCommand {
    std::optional<std::uint64_t> id;
    CommandType type = CommandType::Ping;
    std::string channel;                       // subscribe, unsubscribe, publish, history
    std::optional<StreamPosition> since;       // subscribe: recover what came after this position
    std::uint64_t historySince = 0;            // history: offsets above (below, reverse) this one; 0: from the end
    std::size_t limit = kDefaultHistoryLimit;  // history
    bool reverse = false;                      // history
    std::string data;                          // publish: compact JSON of `data`
    std::optional<int> qos;                    // publish: 0, 1 or 2; absent: the namespace's default
    std::optional<std::string> mid;            // publish (required for qos 2), pubrel
    std::uint64_t did = 0;                     // ack, rec, comp
    std::optional<std::string> token;          // connect, refresh (required), subscribe (a subscription token)
    std::optional<std::string> user;           // connect
    std::string client;                        // connect: "name/version", informational
    std::optional<std::string> session;        // connect: resume this session…
    std::optional<std::string> resume;         // …proving it with this token
    std::string device;                        // connect: the device's id, "" when none
    std::string info;                          // connect: compact JSON object, "" when none
    std::map<std::string, StreamPosition> channelsSince;  // connect: positions in the token's channels
    std::vector<std::string> users;                       // status
};

struct CommandError {
    std::optional<std::uint64_t> id;
    ErrorCode code;
    std::string message;
    // The piece was not a JSON object at all: the stream cannot be trusted, close with 4500.
    bool fatal = false;
};

using ParsedCommand = std::variant<ClientCommand, CommandError>;

// A device id: 1 to 64 letters, digits or - _ . : @ = + ! #.
bool validDeviceId(std::string_view device);

// Parses one newline-free piece of a frame. Never throws.
ParsedCommand parseClientCommand(std::string_view piece);

// Calls `onPiece` for each non-empty '\n'-separated piece of `frame`, in order, until it returns false.
template <class OnPiece>
void forEachPiece(std::string_view frame, OnPiece&& onPiece) {
    while (!frame.empty()) {
        auto newline = frame.find('\n');
        std::string_view piece = frame.substr(0, newline);
        if (!piece.empty() && piece != "\r" && !onPiece(piece)) return;
        if (newline == std::string_view::npos) return;
        frame.remove_prefix(newline + 1);
    }
}

}  // namespace wspush
