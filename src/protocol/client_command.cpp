#include "protocol/client_command.h"

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

#include "base/bounded_json.h"

namespace wspush {
namespace {

using json = nlohmann::ordered_json;  // keeps the publisher's key order in `data`

// JavaScript clients cannot represent larger integers exactly.
constexpr std::uint64_t kMaxSafeInteger = (1ull << 53);

CommandError badRequest(std::optional<std::uint64_t> id, std::string message) {
    return CommandError{id, ErrorCode::BadRequest, std::move(message), false};
}

// Reads an optional string field; nullopt when absent; an error message when present but not a string.
std::variant<std::optional<std::string>, std::string> optionalString(const json& object, const char* key) {
    auto it = object.find(key);
    if (it == object.end() || it->is_null()) return std::optional<std::string>{};
    if (!it->is_string()) return std::string("\"") + key + "\" must be a string";
    return std::optional<std::string>{it->get<std::string>()};
}

// A stream position as clients send it: {"offset": 0..2^53, "epoch": 1 to 128 characters}.
std::optional<StreamPosition> positionOf(const json& value) {
    if (!value.is_object()) return std::nullopt;
    auto offset = value.find("offset");
    auto epoch = value.find("epoch");
    if (offset == value.end() || !offset->is_number_unsigned() || offset->get<std::uint64_t>() > kMaxSafeInteger ||
        epoch == value.end() || !epoch->is_string() || epoch->get_ref<const std::string&>().empty() ||
        epoch->get_ref<const std::string&>().size() > 128)
        return std::nullopt;
    return StreamPosition{offset->get<std::uint64_t>(), epoch->get<std::string>()};
}

constexpr std::string_view kPositionRule =
    "{\"offset\": an integer from 0 to 2^53, \"epoch\": a string of 1 to 128 characters}";

}  // namespace

bool validDeviceId(std::string_view device) {
    static constexpr std::string_view kPunctuation = "-_.:@=+!#";
    return !device.empty() && device.size() <= 64 && std::all_of(device.begin(), device.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || kPunctuation.find(c) != std::string_view::npos;
    });
}

ParsedCommand parseClientCommand(std::string_view piece) {
    BoundedJson<json> parsed = parseBoundedJson<json>(piece);
    // Not fatal, unlike 112: the client does speak JSON, only nested deeper than we accept.
    if (parsed.error == JsonParseError::TooDeep) return badRequest(std::nullopt, std::string(kJsonTooDeep));
    const json& object = parsed.value;
    if (parsed.error == JsonParseError::Malformed || !object.is_object())
        return CommandError{std::nullopt, ErrorCode::MalformedMessage, "message is not a JSON object", true};

    ClientCommand command;
    if (auto it = object.find("id"); it != object.end() && !it->is_null()) {
        if (!it->is_number_unsigned() || it->get<std::uint64_t>() == 0 || it->get<std::uint64_t>() > kMaxSafeInteger)
            return badRequest(std::nullopt, "\"id\" must be an integer from 1 to 2^53");
        command.id = it->get<std::uint64_t>();
    }
    auto typeIt = object.find("type");
    if (typeIt == object.end() || !typeIt->is_string()) return badRequest(command.id, "\"type\" must be a string");
    const auto& type = typeIt->get_ref<const std::string&>();

    auto requireChannel = [&]() -> std::optional<CommandError> {
        auto it = object.find("channel");
        if (it == object.end() || !it->is_string()) return badRequest(command.id, "\"channel\" must be a string");
        command.channel = it->get<std::string>();
        return std::nullopt;
    };

    // A client mid becomes the publication's mid, which travels unescaped in message frames:
    // letters, digits and - _ . : @ / = + ! # ~ only (a UUID fits).
    auto readMid = [&](bool required) -> std::optional<CommandError> {
        auto field = optionalString(object, "mid");
        if (auto* error = std::get_if<std::string>(&field)) return badRequest(command.id, *error);
        command.mid = std::get<std::optional<std::string>>(field);
        if (!command.mid) {
            if (required) return badRequest(command.id, "\"mid\" is required");
            return std::nullopt;
        }
        const std::string& mid = *command.mid;
        static constexpr std::string_view kPunctuation = "-_.:@/=+!#~";
        bool allowed = std::all_of(mid.begin(), mid.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || kPunctuation.find(c) != std::string_view::npos;
        });
        if (mid.empty() || mid.size() > 128 || !allowed)
            return badRequest(command.id, "\"mid\" must be 1 to 128 letters, digits or -_.:@/=+!#~");
        return std::nullopt;
    };
    auto readDid = [&]() -> std::optional<CommandError> {
        auto it = object.find("did");
        if (it == object.end() || !it->is_number_unsigned() || it->get<std::uint64_t>() == 0)
            return badRequest(command.id, "\"did\" must be a positive integer");
        command.did = it->get<std::uint64_t>();
        return std::nullopt;
    };

    if (type == "connect") {
        command.type = CommandType::Connect;
        for (auto [key, target] : {std::pair{"token", &command.token}, std::pair{"user", &command.user},
                                   std::pair{"session", &command.session}, std::pair{"resume", &command.resume}}) {
            auto field = optionalString(object, key);
            if (auto* error = std::get_if<std::string>(&field)) return badRequest(command.id, *error);
            *target = std::get<std::optional<std::string>>(field);
        }
        auto client = optionalString(object, "client");
        if (auto* error = std::get_if<std::string>(&client)) return badRequest(command.id, *error);
        command.client = std::get<std::optional<std::string>>(client).value_or("");
        if (command.client.size() > 128) return badRequest(command.id, "\"client\" must be at most 128 characters");
        auto device = optionalString(object, "device");
        if (auto* error = std::get_if<std::string>(&device)) return badRequest(command.id, *error);
        auto named = std::get<std::optional<std::string>>(device);
        command.device = named.value_or("");
        if (named && !validDeviceId(command.device))
            return badRequest(command.id, "\"device\" must be 1 to 64 letters, digits or -_.:@=+!#");
        if (auto info = object.find("info"); info != object.end() && !info->is_null()) {
            if (!info->is_object()) return badRequest(command.id, "\"info\" must be a JSON object");
            command.info = info->dump();
            if (command.info.size() > kMaxInfoBytes)
                return badRequest(command.id, "\"info\" must be at most 1024 bytes of JSON");
        }
        // Where the client got to in the channels its token subscribes it to: a new session
        // recovers them from there.
        if (auto since = object.find("since"); since != object.end() && !since->is_null()) {
            if (!since->is_object() || since->size() > kMaxConnectPositions)
                return badRequest(command.id, "\"since\" must be an object of at most " +
                                                  std::to_string(kMaxConnectPositions) + " channels");
            for (const auto& [channel, value] : since->items()) {
                auto position = positionOf(value);
                if (!position)
                    return badRequest(command.id,
                                      "\"since\" of \"" + channel + "\" must be " + std::string(kPositionRule));
                command.channelsSince.emplace(channel, std::move(*position));
            }
        }
    } else if (type == "subscribe") {
        command.type = CommandType::Subscribe;
        if (auto error = requireChannel()) return *error;
        auto token = optionalString(object, "token");
        if (auto* error = std::get_if<std::string>(&token)) return badRequest(command.id, *error);
        command.token = std::get<std::optional<std::string>>(token);
        if (auto since = object.find("since"); since != object.end() && !since->is_null()) {
            command.since = positionOf(*since);
            if (!command.since) return badRequest(command.id, "\"since\" must be " + std::string(kPositionRule));
        }
    } else if (type == "history") {
        command.type = CommandType::History;
        if (auto error = requireChannel()) return *error;
        if (auto since = object.find("since"); since != object.end() && !since->is_null()) {
            if (!since->is_number_unsigned() || since->get<std::uint64_t>() > kMaxSafeInteger)
                return badRequest(command.id, "\"since\" must be an integer from 0 to 2^53");
            command.historySince = since->get<std::uint64_t>();
        }
        if (auto limit = object.find("limit"); limit != object.end() && !limit->is_null()) {
            if (!limit->is_number_unsigned() || limit->get<std::uint64_t>() > kMaxHistoryLimit)
                return badRequest(command.id, "\"limit\" must be an integer from 0 to 1000");
            command.limit = limit->get<std::size_t>();
        }
        if (auto reverse = object.find("reverse"); reverse != object.end() && !reverse->is_null()) {
            if (!reverse->is_boolean()) return badRequest(command.id, "\"reverse\" must be true or false");
            command.reverse = reverse->get<bool>();
        }
    } else if (type == "unsubscribe") {
        command.type = CommandType::Unsubscribe;
        if (auto error = requireChannel()) return *error;
    } else if (type == "presence" || type == "presence_stats") {
        command.type = type == "presence" ? CommandType::Presence : CommandType::PresenceStats;
        if (auto error = requireChannel()) return *error;
    } else if (type == "status") {
        command.type = CommandType::Status;
        auto users = object.find("users");
        if (users == object.end() || !users->is_array() || users->empty() || users->size() > kMaxStatusUsers)
            return badRequest(command.id, "\"users\" must be an array of 1 to 1000 user ids");
        command.users.reserve(users->size());
        for (const json& user : *users) {
            if (!user.is_string()) return badRequest(command.id, "\"users\" must hold strings");
            command.users.push_back(user.get<std::string>());
        }
    } else if (type == "publish") {
        command.type = CommandType::Publish;
        if (auto error = requireChannel()) return *error;
        auto data = object.find("data");
        if (data == object.end()) return badRequest(command.id, "\"data\" is required");
        command.data = data->dump();
        if (auto qos = object.find("qos"); qos != object.end() && !qos->is_null()) {
            if (!qos->is_number_unsigned() || qos->get<std::uint64_t>() > 2)
                return badRequest(command.id, "\"qos\" must be 0, 1 or 2");
            command.qos = qos->get<int>();
        }
        if (auto error = readMid(command.qos == 2)) return *error;
    } else if (type == "refresh") {
        command.type = CommandType::Refresh;
        auto token = optionalString(object, "token");
        if (auto* error = std::get_if<std::string>(&token)) return badRequest(command.id, *error);
        command.token = std::get<std::optional<std::string>>(token);
        if (!command.token || command.token->empty()) return badRequest(command.id, "\"token\" is required");
    } else if (type == "ping") {
        command.type = CommandType::Ping;
    } else if (type == "ack" || type == "rec" || type == "comp") {
        command.type = type == "ack" ? CommandType::Ack : type == "rec" ? CommandType::Rec : CommandType::Comp;
        if (auto error = readDid()) return *error;
    } else if (type == "pubrel") {
        command.type = CommandType::Pubrel;
        if (auto error = readMid(true)) return *error;
    } else {
        return CommandError{command.id, ErrorCode::UnknownCommand, "unknown command type \"" + type + "\"", false};
    }
    return command;
}

}  // namespace wspush
