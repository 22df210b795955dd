#include "session/session_move.h"

#include <string>
#include <utility>
#include <vector>

#include <boost/asio/post.hpp>

namespace wspush {

namespace net = boost::asio;

namespace {

// What the hops hand each other. The hub of `to` points at `buffer` from hop 2 to hop 4.
struct SessionMove {
    Node& node;
    std::shared_ptr<ClientSession> session;
    EventLoop& from;
    EventLoop& to;
    std::function<void(std::shared_ptr<ClientSession>)> arrived;
    MigrationBuffer buffer;
};

// Hop 4, on `to`: replay what the buffer caught past each channel's offset; the session lives here now.
void enterNewLoop(const std::shared_ptr<SessionMove>& move, const ChannelOffsets& offsets) {
    move->session->enterLoop(move->to, offsets, move->buffer);
    move->node.sessions().release(move->session->id(), move->to.index());
    move->arrived(std::move(move->session));
}

// Hop 3, on `from`: leave the channels, noting the last offset delivered from each.
void leaveOldLoop(const std::shared_ptr<SessionMove>& move) {
    ChannelOffsets offsets = move->session->leaveLoop();
    net::post(move->to.context(), [move, offsets = std::move(offsets)] { enterNewLoop(move, offsets); });
}

// Hop 2, on `to`: the buffer joins the session's channels, so that from now on every publication
// of them is routed here too.
void joinBuffer(const std::shared_ptr<SessionMove>& move, const std::vector<std::string>& channels) {
    EventLoop& to = move->to;
    for (const auto& channel : channels) {
        bool firstOnLoop = !to.hub().contains(channel);
        if (move->node.router().addSubscriber(channel, to.index(), firstOnLoop)) move->node.broker().subscribe(channel);
        to.hub().add(channel, &move->buffer, 0);
    }
    net::post(move->from.context(), [move] { leaveOldLoop(move); });
}

// Hop 1, on `from`: the session drops its old connection and stands still.
void stopOnOldLoop(const std::shared_ptr<SessionMove>& move) {
    std::vector<std::string> channels = move->session->prepareMove();
    net::post(move->to.context(), [move, channels = std::move(channels)] { joinBuffer(move, channels); });
}

}  // namespace

void moveSession(Node& node, std::shared_ptr<ClientSession> session, EventLoop& from, EventLoop& to,
                 std::function<void(std::shared_ptr<ClientSession>)> arrived) {
    // The buffer joins (hop 2) before the old loop lets go (hop 3), so no publication falls
    // between the two; the offsets noted in hop 3 keep the replay from repeating one.
    auto move = std::make_shared<SessionMove>(SessionMove{node, std::move(session), from, to, std::move(arrived), {}});
    net::post(from.context(), [move] { stopOnOldLoop(move); });
}

}  // namespace wspush
