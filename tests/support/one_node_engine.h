// The engine of a node under test that has no presence or inbox store or webhook stream of its
// own: `broker`, with those in memory (what server.cpp's makeEngine gives the memory engine).
#pragma once

#include <memory>

#include "base/clock.h"
#include "engine/memory/memory_inbox_store.h"
#include "engine/memory/memory_presence_store.h"
#include "engine/memory/memory_webhook_stream.h"
#include "node/node.h"

namespace wspush::testing {

inline NodeEngine oneNodeEngine(std::unique_ptr<Broker> broker, const Clock& clock = Clock::system()) {
    return NodeEngine{std::move(broker), std::make_unique<MemoryPresenceStore>([&clock] { return clock.unixMillis(); }),
                      std::make_unique<MemoryInboxStore>([&clock] { return clock.unixMillis(); }),
                      std::make_unique<MemoryWebhookStream>(1000)};
}

}  // namespace wspush::testing
