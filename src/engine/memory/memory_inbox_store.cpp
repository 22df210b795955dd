#include "engine/memory/memory_inbox_store.h"

#include <algorithm>

namespace wspush {

MemoryInboxStore::Devices* MemoryInboxStore::rememberedLocked(std::string_view user,
                                                              std::chrono::milliseconds deviceTtl, std::int64_t now) {
    auto it = users_.find(user);
    if (it == users_.end()) return nullptr;
    std::erase_if(it->second, [&](const auto& entry) { return entry.second.lastSeenMs + deviceTtl.count() <= now; });
    if (!it->second.empty()) return &it->second;
    users_.erase(it);
    return nullptr;
}

void MemoryInboxStore::touch(std::string_view user, std::string_view device, std::chrono::milliseconds deviceTtl,
                             InboxDeviceCompletion done) {
    std::optional<InboxDevice> found;
    {
        std::lock_guard lock(mutex_);
        std::int64_t now = clock_();
        if (Devices* devices = rememberedLocked(user, deviceTtl, now)) {
            if (auto it = devices->find(device); it != devices->end()) {
                it->second.lastSeenMs = now;
                found = it->second;
            }
        }
    }
    done(std::move(found));
}

void MemoryInboxStore::advance(std::string_view user, std::string_view device, StreamPosition cursor,
                               std::chrono::milliseconds deviceTtl, InboxLowestCompletion done) {
    std::uint64_t lowest = 0;
    {
        std::lock_guard lock(mutex_);
        std::int64_t now = clock_();
        rememberedLocked(user, deviceTtl, now);
        Devices& devices = users_[std::string(user)];
        auto [it, added] = devices.try_emplace(std::string(device), InboxDevice{std::string(device), cursor, now});
        InboxDevice& entry = it->second;
        entry.lastSeenMs = now;
        if (added && devices.size() > kMaxInboxDevices) {
            auto oldest = std::min_element(devices.begin(), devices.end(), [](const auto& a, const auto& b) {
                return a.second.lastSeenMs < b.second.lastSeenMs;
            });
            if (oldest != it) devices.erase(oldest);
        }
        if (entry.cursor.epoch != cursor.epoch || entry.cursor.offset < cursor.offset) entry.cursor = cursor;
        lowest = entry.cursor.offset;
        for (const auto& [name, other] : devices)
            lowest = std::min(lowest, other.cursor.epoch == cursor.epoch ? other.cursor.offset : 0);
    }
    done(lowest);
}

void MemoryInboxStore::devices(std::string_view user, std::chrono::milliseconds deviceTtl,
                               InboxDevicesCompletion done) {
    std::vector<InboxDevice> list;
    {
        std::lock_guard lock(mutex_);
        if (Devices* devices = rememberedLocked(user, deviceTtl, clock_()))
            for (const auto& [name, device] : *devices) list.push_back(device);
    }
    done(std::move(list));
}

}  // namespace wspush
