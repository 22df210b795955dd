// Moving a session to the loop of the connection that resumed it (docs/architecture.md,
// "Resuming on another loop"), without losing or repeating a publication.
#pragma once

#include <functional>
#include <memory>

#include "node/event_loop.h"
#include "node/node.h"
#include "session/client_session.h"

namespace wspush {

// Moves `session`, claimed in the registry and living on `from`, to `to`, in four posted hops,
// each on the loop that owns what it touches. Once the session lives on `to` and the registry
// says so (the claim is released), calls `arrived` with it, on `to`.
void moveSession(Node& node, std::shared_ptr<ClientSession> session, EventLoop& from, EventLoop& to,
                 std::function<void(std::shared_ptr<ClientSession>)> arrived);

}  // namespace wspush
