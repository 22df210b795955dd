// The devices of each user's inbox (its personal channel's history, docs/protocol.md "Offline
// messages"): per user and device, the cursor (how far into the channel that device has finished
// its messages) and when it was last seen. A device not seen for `deviceTtl` is forgotten; the
// channel's history is trimmed to the lowest cursor of the remembered ones. The memory engine keeps
// them in memory (MemoryInboxStore), the Redis engine in Redis beside the channel
// (RedisInboxStore); both pass tests/engine/inbox_store_contract_test.cpp.
//
// Completions run exactly once, on any thread (memory: before the call returns; Redis: on the
// engine's loop), like the Broker's.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "wspush/broker.h"

namespace wspush {

struct InboxDevice {
    std::string device;
    StreamPosition cursor;  // every message of the user's channel up to it is finished on the device
    std::int64_t lastSeenMs = 0;

    bool operator==(const InboxDevice&) const = default;
};

// The most devices remembered per user: past it, the one seen longest ago is forgotten. A client
// that makes a new device id per process (a Node script without a store) must not grow a user's
// devices, and the cost of every cursor move, without bound.
inline constexpr std::size_t kMaxInboxDevices = 100;

using InboxDeviceCompletion = std::function<void(std::variant<std::optional<InboxDevice>, BrokerError>)>;
using InboxDevicesCompletion = std::function<void(std::variant<std::vector<InboxDevice>, BrokerError>)>;
// The lowest cursor of `epoch` among the user's remembered devices (a device whose cursor is of
// another epoch counts as offset 0 of it); nullopt when it could not be read.
using InboxLowestCompletion = std::function<void(std::optional<std::uint64_t>)>;

class InboxStore {
public:
    virtual ~InboxStore() = default;

    // The device, if remembered (seen within `deviceTtl`), marked seen now. nullopt for a device
    // never seen or forgotten.
    virtual void touch(std::string_view user, std::string_view device, std::chrono::milliseconds deviceTtl,
                       InboxDeviceCompletion done) = 0;
    // Moves the device's cursor to `cursor` unless it holds a later one of the same epoch, and
    // remembers it as seen now (forgetting the one seen longest ago past kMaxInboxDevices). Then answers the lowest
    // cursor of `cursor.epoch` among the user's remembered devices, for trimming the history.
    virtual void advance(std::string_view user, std::string_view device, StreamPosition cursor,
                         std::chrono::milliseconds deviceTtl, InboxLowestCompletion done) = 0;
    // The user's remembered devices, in no particular order.
    virtual void devices(std::string_view user, std::chrono::milliseconds deviceTtl, InboxDevicesCompletion done) = 0;
};

}  // namespace wspush
