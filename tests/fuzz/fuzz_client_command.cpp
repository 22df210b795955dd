// Drives what a client's WebSocket text message goes through before it becomes work: the split
// into '\n'-separated commands (forEachPiece), the parse of each (parseClientCommand), and then
// ClientProtocol::handleMessage on a real node with the in-memory engine, so the commands that
// parse are also carried out (connect, subscribe, publish, history, presence, QoS answers…).
//
// Asserts, beyond "no crash, no leak, no UB":
// - every piece is non-empty, has no '\n', and the pieces are in order within the message;
// - a parsed command satisfies the bounds the parser promises (id, limit, info, users, device,
//   mid, qos, since), and an error carries a code and a message;
// - every reply and every frame the server sends back is valid JSON, whatever bytes the client's
//   strings held (channel names, users, client names, mids are echoed in replies).
//
// The input is split into up to 4 messages at 0xFF bytes (never valid UTF-8, so never inside a
// command worth keeping), so a session's commands can span several messages.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "engine/memory/memory_broker.h"
#include "node/event_loop.h"
#include "node/node.h"
#include "protocol/client_command.h"
#include "session/client_protocol.h"
#include "support/one_node_engine.h"

namespace wspush {
namespace {

void check(bool condition, const char* what) {
    if (!condition) {
        std::fprintf(stderr, "fuzz_client_command: invariant broken: %s\n", what);
        std::abort();
    }
}

bool isJson(std::string_view text) {
    return nlohmann::json::accept(text.begin(), text.end());
}

void checkParsed(const ParsedCommand& parsed) {
    if (const auto* error = std::get_if<CommandError>(&parsed)) {
        check(!error->message.empty(), "an error says what is wrong");
        check(!error->id || (*error->id >= 1 && *error->id <= (1ull << 53)), "an error's id is in range");
        return;
    }
    const auto& command = std::get<ClientCommand>(parsed);
    check(!command.id || (*command.id >= 1 && *command.id <= (1ull << 53)), "id is 1 to 2^53");
    check(command.limit <= kMaxHistoryLimit, "history limit is bounded");
    check(command.info.size() <= kMaxInfoBytes, "info is bounded");
    check(command.info.empty() || isJson(command.info), "info is JSON");
    check(command.users.size() <= kMaxStatusUsers, "status users are bounded");
    check(command.device.empty() || validDeviceId(command.device), "device is a valid id");
    check(!command.qos || (*command.qos >= 0 && *command.qos <= 2), "qos is 0, 1 or 2");
    check(!command.mid || (!command.mid->empty() && command.mid->size() <= 128), "mid is 1 to 128 bytes");
    check(command.client.size() <= 128, "client is bounded");
    if (command.type == CommandType::Publish) check(isJson(command.data), "publish data is JSON");
    if (command.type == CommandType::Pubrel) check(command.mid.has_value(), "pubrel has a mid");
    if (command.type == CommandType::Refresh) check(command.token && !command.token->empty(), "refresh has a token");
    if (command.since) check(!command.since->epoch.empty() && command.since->epoch.size() <= 128, "since epoch");
}

// A connection that keeps nothing but checks what the protocol sends it.
class CheckingConnection final : public ClientConnection, public std::enable_shared_from_this<CheckingConnection> {
public:
    explicit CheckingConnection(EventLoop& loop) : loop_(loop) {}
    bool sendFrame(OutboundFrame frame) override {
        if (!frame.standalone) check(isJson(*frame.payload + std::string(frame.suffix.view())), "a frame is JSON");
        return true;
    }
    void closeFor(const Disconnect& reason) override {
        check(reason.code >= 4000, "closes with one of our codes");
        if (protocol != nullptr) protocol->connectionClosed(false);
    }
    bool hasRoom() const override { return true; }
    void whenWritable(std::function<void()>) override {}
    void sendReply(std::string message) override { check(isJson(message), "a reply is JSON"); }
    void connectAccepted() override {}
    EventLoop& loop() override { return loop_; }
    const std::string& id() const override { return id_; }
    std::string peer() const override { return "192.0.2.1"; }
    std::shared_ptr<void> keepAlive() override { return shared_from_this(); }

    ClientProtocol* protocol = nullptr;

private:
    EventLoop& loop_;
    std::string id_ = "fuzz-connection";
};

Config fuzzConfig() {
    Config config;
    config.client.allow_anonymous = true;
    config.client.trust_client_user = true;
    config.client.user_status = true;
    config.channel_defaults.client_publish = true;
    config.channel_defaults.client_history = true;
    config.channel_defaults.history_size = 10;
    NamespaceConfig chat = config.channel_defaults;
    chat.presence = true;
    chat.client_presence = true;
    chat.join_leave = true;
    chat.default_qos = 1;
    config.namespaces["chat"] = chat;
    // The rate limits' refusals too (the clock stands still: a bucket never refills).
    config.limits.commands_per_second = 20;
    config.limits.history_reads_per_second = 4;
    config.limits.presence_reads_per_second = 4;
    config.limits.connections_per_user = 1;
    return config;
}

// Runs one client's messages through a fresh node, so an input means the same on every run.
void runProtocol(std::string_view input) {
    static const ManualClock clock;  // fixed time: replays are deterministic
    Node node(fuzzConfig(), "fuzz-node",
              testing::oneNodeEngine(std::make_unique<MemoryBroker>("fuzz", [] { return std::int64_t{1700000000000}; }),
                                     clock),
              clock);
    EventLoopPool loops(1);
    node.attach(loops);
    auto& context = loops.at(0).context();
    {
        auto connection = std::make_shared<CheckingConnection>(loops.at(0));
        ClientProtocol protocol(node, *connection);
        connection->protocol = &protocol;
        int messages = 0;
        while (messages++ < 4) {
            auto separator = input.find('\xff');
            protocol.handleMessage(input.substr(0, separator));
            context.poll();
            context.restart();
            if (separator == std::string_view::npos) break;
            input.remove_prefix(separator + 1);
        }
        protocol.connectionClosed(true);
        connection->protocol = nullptr;
    }
    node.sessions().clear();
    context.poll();
}

}  // namespace
}  // namespace wspush

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace wspush;
    std::string_view frame(reinterpret_cast<const char*>(data), size);

    const char* previousEnd = frame.data();
    forEachPiece(frame, [&](std::string_view piece) {
        check(!piece.empty() && piece != "\r", "no empty piece");
        check(piece.find('\n') == std::string_view::npos, "a piece has no newline");
        check(piece.data() >= previousEnd && piece.data() + piece.size() <= frame.data() + frame.size(),
              "pieces are in order, within the frame");
        previousEnd = piece.data() + piece.size();
        checkParsed(parseClientCommand(piece));
        return true;
    });

    runProtocol(frame);
    return 0;
}
