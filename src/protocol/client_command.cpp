#include "protocol/client_command.h"

#include <nlohmann/json.hpp>

namespace wspush {
namespace {

using json = nlohmann::json;

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

}  // namespace

ParsedCommand parseClientCommand(std::string_view piece) {
    json object = json::parse(piece, nullptr, /*allow_exceptions=*/false);
    if (object.is_discarded() || !object.is_object())
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

    if (type == "connect") {
        command.type = CommandType::Connect;
        for (auto [key, target] : {std::pair{"token", &command.token}, std::pair{"user", &command.user}}) {
            auto field = optionalString(object, key);
            if (auto* error = std::get_if<std::string>(&field)) return badRequest(command.id, *error);
            *target = std::get<std::optional<std::string>>(field);
        }
        auto client = optionalString(object, "client");
        if (auto* error = std::get_if<std::string>(&client)) return badRequest(command.id, *error);
        command.client = std::get<std::optional<std::string>>(client).value_or("");
        if (command.client.size() > 128) return badRequest(command.id, "\"client\" must be at most 128 characters");
    } else if (type == "subscribe") {
        command.type = CommandType::Subscribe;
        if (auto error = requireChannel()) return *error;
    } else if (type == "unsubscribe") {
        command.type = CommandType::Unsubscribe;
        if (auto error = requireChannel()) return *error;
    } else if (type == "publish") {
        command.type = CommandType::Publish;
        if (auto error = requireChannel()) return *error;
        auto data = object.find("data");
        if (data == object.end()) return badRequest(command.id, "\"data\" is required");
        command.data = data->dump();
    } else if (type == "ping") {
        command.type = CommandType::Ping;
    } else {
        return CommandError{command.id, ErrorCode::UnknownCommand, "unknown command type \"" + type + "\"", false};
    }
    return command;
}

}  // namespace wspush
