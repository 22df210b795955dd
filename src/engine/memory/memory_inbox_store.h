// Inbox devices for one node: per user, its devices, under one mutex (touched at connect and
// when a device's cursor moves, about once a second per connected device at most).
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "wspush/inbox_store.h"

namespace wspush {

class MemoryInboxStore final : public InboxStore {
public:
    using Clock = std::function<std::int64_t()>;  // Unix milliseconds

    explicit MemoryInboxStore(Clock clock) : clock_(std::move(clock)) {}

    void touch(std::string_view user, std::string_view device, std::chrono::milliseconds deviceTtl,
               InboxDeviceCompletion done) override;
    void advance(std::string_view user, std::string_view device, StreamPosition cursor,
                 std::chrono::milliseconds deviceTtl, InboxLowestCompletion done) override;
    void devices(std::string_view user, std::chrono::milliseconds deviceTtl, InboxDevicesCompletion done) override;

private:
    using Devices = std::map<std::string, InboxDevice, std::less<>>;
    // The user's devices seen within `deviceTtl`, the others dropped; nullptr when none is left.
    Devices* rememberedLocked(std::string_view user, std::chrono::milliseconds deviceTtl, std::int64_t now);

    Clock clock_;
    std::mutex mutex_;
    std::map<std::string, Devices, std::less<>> users_;
};

}  // namespace wspush
