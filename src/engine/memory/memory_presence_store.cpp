#include "engine/memory/memory_presence_store.h"

#include <algorithm>

#include "base/hex.h"

namespace wspush {

MemoryPresenceStore::MemoryPresenceStore(Clock clock) : clock_(std::move(clock)) {}

void MemoryPresenceStore::drop(Channel& channel, const std::string& client) {
    auto it = channel.clients.find(client);
    if (it == channel.clients.end()) return;
    auto user = channel.connectionsPerUser.find(it->second.entry.user);
    if (user != channel.connectionsPerUser.end() && --user->second == 0) channel.connectionsPerUser.erase(user);
    channel.byExpiry.erase({it->second.expiresAtMs, client});
    channel.clients.erase(it);
}

bool MemoryPresenceStore::expire(Channels::iterator it, std::int64_t now) {
    Channel& channel = it->second;
    while (!channel.byExpiry.empty() && channel.byExpiry.begin()->first <= now) {
        std::string client = channel.byExpiry.begin()->second;
        drop(channel, client);
    }
    if (!channel.clients.empty()) return true;
    channels_.erase(it);
    return false;
}

void MemoryPresenceStore::add(std::string_view channel, std::vector<PresenceEntry> entries,
                              std::chrono::milliseconds ttl) {
    std::int64_t now = clock_();
    std::lock_guard lock(mutex_);
    auto it = channels_.find(channel);
    if (it == channels_.end()) it = channels_.emplace(std::string(channel), Channel{}).first;
    Channel& state = it->second;
    for (PresenceEntry& entry : entries) {
        std::int64_t expiresAt = now + ttl.count();
        auto present = state.clients.find(entry.client);
        if (present == state.clients.end()) {
            ++state.connectionsPerUser[entry.user];
            state.byExpiry.emplace(expiresAt, entry.client);
            std::string client = entry.client;
            state.clients.emplace(std::move(client), Present{std::move(entry), expiresAt});
        } else {
            state.byExpiry.erase({present->second.expiresAtMs, present->first});
            state.byExpiry.emplace(expiresAt, present->first);
            present->second.expiresAtMs = expiresAt;
        }
    }
    expire(it, now);
}

void MemoryPresenceStore::remove(std::string_view channel, std::vector<std::string> clients) {
    std::lock_guard lock(mutex_);
    auto it = channels_.find(channel);
    if (it == channels_.end()) return;
    for (const std::string& client : clients) drop(it->second, client);
    expire(it, clock_());
}

void MemoryPresenceStore::list(std::string_view channel, std::size_t limit, PresenceListCompletion done) {
    std::vector<PresenceEntry> entries;
    {
        std::lock_guard lock(mutex_);
        auto it = channels_.find(channel);
        if (it != channels_.end() && expire(it, clock_())) {
            for (const auto& [client, present] : it->second.clients) {
                if (entries.size() >= limit) break;
                entries.push_back(present.entry);
            }
        }
    }
    done(std::move(entries));
}

void MemoryPresenceStore::stats(std::string_view channel, PresenceStatsCompletion done) {
    PresenceStats stats;
    {
        std::lock_guard lock(mutex_);
        auto it = channels_.find(channel);
        if (it != channels_.end() && expire(it, clock_()))
            stats = PresenceStats{it->second.clients.size(), it->second.connectionsPerUser.size()};
    }
    done(stats);
}

void MemoryPresenceStore::hasUsers(std::string_view channel, std::vector<std::string> users,
                                   PresenceHasUsersCompletion done) {
    std::vector<bool> present(users.size(), false);
    {
        std::lock_guard lock(mutex_);
        auto it = channels_.find(channel);
        if (it != channels_.end() && expire(it, clock_()))
            for (std::size_t i = 0; i < users.size(); ++i)
                present[i] = it->second.connectionsPerUser.contains(users[i]);
    }
    done(std::move(present));
}

void MemoryPresenceStore::users(std::string_view channel, std::string cursor, std::size_t limit,
                                PresenceUsersCompletion done) {
    // The cursor is the hex of the page's last name: opaque, and safe in a URL.
    auto after = fromHex(cursor);
    if (!after) return done(BrokerError{ApiErrorCode::WrongType, "\"cursor\" is not one this server gave"});
    PresenceUserPage page;
    {
        std::lock_guard lock(mutex_);
        auto it = channels_.find(channel);
        if (it != channels_.end() && expire(it, clock_())) {
            const auto& users = it->second.connectionsPerUser;
            auto user = cursor.empty() ? users.begin() : users.upper_bound(*after);
            for (; user != users.end() && page.users.size() < std::max<std::size_t>(limit, 1); ++user)
                if (!user->first.empty()) page.users.push_back(user->first);
            if (user != users.end() && !page.users.empty()) page.cursor = toHex(page.users.back());
        }
    }
    done(std::move(page));
}

}  // namespace wspush
