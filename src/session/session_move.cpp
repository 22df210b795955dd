#include "session/session_move.h"

#include <string>
#include <utility>
#include <vector>

#include <boost/asio/post.hpp>

namespace wspush {

namespace net = boost::asio;

namespace {

// What the hops hand each other.
struct SessionMove {
    Node& node;
    std::shared_ptr<ClientSession> session;
    EventLoop& from;
    EventLoop& to;
    std::function<void(std::shared_ptr<ClientSession>)> arrived;
};

// Hop 4, on `to`: deliver what the hub of `to` buffered past each channel's position; the
// session lives here now.
void enterNewLoop(const std::shared_ptr<SessionMove>& move, const ChannelPositions& positions) {
    move->session->enterLoop(move->to, positions);
    move->node.sessions().release(move->session->id(), move->to.index());
    move->arrived(std::move(move->session));
}

// Hop 3, on `from`: leave the channels, noting the position delivered up to in each.
void leaveOldLoop(const std::shared_ptr<SessionMove>& move) {
    ChannelPositions positions = move->session->leaveLoop();
    net::post(move->to.context(), [move, positions = std::move(positions)] { enterNewLoop(move, positions); });
}

// Hop 2, on `to`: the session's entries in the hub of `to` join its channels and buffer, so that
// from now on every publication of them is kept here too.
void holdPlace(const std::shared_ptr<SessionMove>& move, const std::vector<std::string>& channels) {
    move->session->holdPlace(move->to, channels);
    net::post(move->from.context(), [move] { leaveOldLoop(move); });
}

// Hop 1, on `from`: the session drops its old connection and stands still.
void stopOnOldLoop(const std::shared_ptr<SessionMove>& move) {
    std::vector<std::string> channels = move->session->prepareMove();
    net::post(move->to.context(), [move, channels = std::move(channels)] { holdPlace(move, channels); });
}

}  // namespace

void moveSession(Node& node, std::shared_ptr<ClientSession> session, EventLoop& from, EventLoop& to,
                 std::function<void(std::shared_ptr<ClientSession>)> arrived) {
    // The new loop's entries join (hop 2) before the old loop lets go (hop 3), so no publication
    // falls between the two; the positions noted in hop 3 keep hop 4 from repeating one.
    auto move = std::make_shared<SessionMove>(SessionMove{node, std::move(session), from, to, std::move(arrived)});
    net::post(from.context(), [move] { stopOnOldLoop(move); });
}

}  // namespace wspush
