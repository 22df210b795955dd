#include "engine/memory/memory_presence_store.h"

#include <algorithm>
#include <iterator>

#include "base/hex.h"

namespace wspush {

namespace {
constexpr const char* kExpired = "expired";
}  // namespace

MemoryPresenceStore::MemoryPresenceStore(Clock clock) : clock_(std::move(clock)) {}

void MemoryPresenceStore::reportTransitions(PresenceTransitionOptions options) {
    std::lock_guard lock(mutex_);
    reporting_ = std::move(options);
}

MemoryPresenceStore::Call MemoryPresenceStore::begin(std::string_view channel, std::int64_t now) const {
    bool reported = reporting_ && reporting_->reported(channel);
    return Call{channel, now, reported, reported && channel == reporting_->userStatusChannel, {}};
}

void MemoryPresenceStore::insert(Channel& channel, PresenceEntry entry, std::int64_t expiresAt, Call& call) {
    bool firstOfUser = ++channel.connectionsPerUser[entry.user] == 1;
    channel.byExpiry.emplace(expiresAt, entry.client);
    std::string client = entry.client;
    const PresenceEntry& added =
        channel.clients.emplace(std::move(client), Present{std::move(entry), expiresAt}).first->second.entry;
    if (!call.reported) return;
    call.report(PresenceTransitionKind::MemberAdded, added);
    if (channel.clients.size() == 1) call.report(PresenceTransitionKind::ChannelOccupied, added);
    if (!call.userStatus || !firstOfUser || added.user.empty()) return;
    // Back within the grace (a page reload): neither offline nor online again.
    if (auto pending = pendingOffline_.find(added.user); pending != pendingOffline_.end()) {
        offlineDue_.erase({pending->second.dueMs, pending->first});
        pendingOffline_.erase(pending);
        return;
    }
    call.report(PresenceTransitionKind::UserOnline, added);
}

void MemoryPresenceStore::drop(Channel& channel, const std::string& client, const std::string& reason, Call& call) {
    auto it = channel.clients.find(client);
    if (it == channel.clients.end()) return;
    PresenceEntry entry = std::move(it->second.entry);
    channel.byExpiry.erase({it->second.expiresAtMs, client});
    channel.clients.erase(it);
    auto user = channel.connectionsPerUser.find(entry.user);
    bool lastOfUser = user != channel.connectionsPerUser.end() && --user->second == 0;
    if (lastOfUser) channel.connectionsPerUser.erase(user);
    if (!call.reported) return;
    call.report(PresenceTransitionKind::MemberRemoved, entry, reason);
    if (channel.clients.empty()) call.report(PresenceTransitionKind::ChannelVacated, entry, reason);
    if (!call.userStatus || !lastOfUser || entry.user.empty()) return;
    std::int64_t due = call.nowMs + reporting_->offlineGrace.count();
    std::string name = entry.user;
    offlineDue_.emplace(due, name);
    pendingOffline_.insert_or_assign(std::move(name), PendingOffline{due, std::move(entry), reason});
}

void MemoryPresenceStore::expire(Channel& channel, Call& call) {
    while (!channel.byExpiry.empty() && channel.byExpiry.begin()->first <= call.nowMs) {
        std::string client = channel.byExpiry.begin()->second;
        drop(channel, client, kExpired, call);
    }
}

void MemoryPresenceStore::reportDueOffline(Call& call) {
    if (!call.userStatus) return;
    while (!offlineDue_.empty() && offlineDue_.begin()->first <= call.nowMs) {
        auto pending = pendingOffline_.find(offlineDue_.begin()->second);
        offlineDue_.erase(offlineDue_.begin());
        call.report(PresenceTransitionKind::UserOffline, pending->second.lastEntry, std::move(pending->second.reason));
        pendingOffline_.erase(pending);
    }
}

MemoryPresenceStore::Channels::iterator MemoryPresenceStore::touch(Call& call) {
    auto it = channels_.find(call.channel);
    if (it != channels_.end()) {
        expire(it->second, call);
        it = settle(it, call);
    }
    reportDueOffline(call);
    return it;
}

MemoryPresenceStore::Channels::iterator MemoryPresenceStore::settle(Channels::iterator it, const Call& call) {
    Channel& channel = it->second;
    std::optional<std::int64_t> lastExpiry;
    if (call.reported && !channel.byExpiry.empty()) lastExpiry = channel.byExpiry.rbegin()->first;
    if (lastExpiry != channel.sweptAtMs) {
        if (channel.sweptAtMs) sweepable_.erase({*channel.sweptAtMs, it->first});
        if (lastExpiry) sweepable_.emplace(*lastExpiry, it->first);
        channel.sweptAtMs = lastExpiry;
    }
    if (!channel.clients.empty()) return it;
    channels_.erase(it);
    return channels_.end();
}

void MemoryPresenceStore::report(std::unique_lock<std::mutex> state, std::vector<PresenceTransition> transitions) {
    if (transitions.empty()) return;
    std::uint64_t turn = nextTurn_++;
    state.unlock();
    std::unique_lock lock(reportMutex_);
    turnEnded_.wait(lock, [&] { return turn_ == turn; });
    reporting_->handler(std::move(transitions));
    ++turn_;
    turnEnded_.notify_all();
}

void MemoryPresenceStore::add(std::string_view channel, std::vector<PresenceEntry> entries,
                              std::chrono::milliseconds ttl) {
    if (entries.empty()) return;  // as Redis's: no call, nothing expired
    std::int64_t now = clock_();
    std::unique_lock lock(mutex_);
    Call call = begin(channel, now);
    // Expired first, as Redis's script does: an entry refreshed after it expired is a new one.
    auto it = touch(call);
    if (it == channels_.end()) it = channels_.emplace(std::string(channel), Channel{}).first;
    Channel& state = it->second;
    std::int64_t expiresAt = now + ttl.count();
    for (PresenceEntry& entry : entries) {
        auto present = state.clients.find(entry.client);
        if (present == state.clients.end()) {
            insert(state, std::move(entry), expiresAt, call);
        } else {
            state.byExpiry.erase({present->second.expiresAtMs, present->first});
            state.byExpiry.emplace(expiresAt, present->first);
            present->second.expiresAtMs = expiresAt;
        }
    }
    settle(it, call);
    report(std::move(lock), std::move(call.transitions));
}

void MemoryPresenceStore::remove(std::string_view channel, std::vector<std::string> clients, std::string reason) {
    if (clients.empty()) return;
    std::unique_lock lock(mutex_);
    Call call = begin(channel, clock_());
    auto it = touch(call);
    if (it != channels_.end()) {
        for (const std::string& client : clients) drop(it->second, client, reason, call);
        settle(it, call);
    }
    report(std::move(lock), std::move(call.transitions));
}

void MemoryPresenceStore::list(std::string_view channel, std::size_t limit, PresenceListCompletion done) {
    std::vector<PresenceEntry> entries;
    std::unique_lock lock(mutex_);
    Call call = begin(channel, clock_());
    if (auto it = touch(call); it != channels_.end()) {
        for (const auto& [client, present] : it->second.clients) {
            if (entries.size() >= limit) break;
            entries.push_back(present.entry);
        }
    }
    report(std::move(lock), std::move(call.transitions));
    done(std::move(entries));
}

void MemoryPresenceStore::stats(std::string_view channel, PresenceStatsCompletion done) {
    PresenceStats stats;
    std::unique_lock lock(mutex_);
    Call call = begin(channel, clock_());
    if (auto it = touch(call); it != channels_.end())
        stats = PresenceStats{it->second.clients.size(), it->second.connectionsPerUser.size()};
    report(std::move(lock), std::move(call.transitions));
    done(stats);
}

void MemoryPresenceStore::hasUsers(std::string_view channel, std::vector<std::string> users,
                                   PresenceHasUsersCompletion done) {
    if (users.empty()) return done(std::vector<bool>{});
    std::vector<bool> present(users.size(), false);
    std::unique_lock lock(mutex_);
    Call call = begin(channel, clock_());
    if (auto it = touch(call); it != channels_.end())
        for (std::size_t i = 0; i < users.size(); ++i) present[i] = it->second.connectionsPerUser.contains(users[i]);
    report(std::move(lock), std::move(call.transitions));
    done(std::move(present));
}

void MemoryPresenceStore::users(std::string_view channel, std::string cursor, std::size_t limit,
                                PresenceUsersCompletion done) {
    // The cursor is the hex of the page's last name: opaque, and safe in a URL.
    auto after = fromHex(cursor);
    if (!after) return done(BrokerError{ApiErrorCode::WrongType, "\"cursor\" is not one this server gave"});
    PresenceUserPage page;
    std::unique_lock lock(mutex_);
    Call call = begin(channel, clock_());
    if (auto it = touch(call); it != channels_.end()) {
        const auto& users = it->second.connectionsPerUser;
        auto user = cursor.empty() ? users.begin() : users.upper_bound(*after);
        for (; user != users.end() && page.users.size() < std::max<std::size_t>(limit, 1); ++user)
            if (!user->first.empty()) page.users.push_back(user->first);
        if (user != users.end() && !page.users.empty()) page.cursor = toHex(page.users.back());
    }
    report(std::move(lock), std::move(call.transitions));
    done(std::move(page));
}

void MemoryPresenceStore::sweep() {
    std::int64_t now = clock_();
    std::unique_lock lock(mutex_);
    if (!reporting_) return;
    std::vector<PresenceTransition> transitions;
    auto take = [&](Call& call) {
        std::move(call.transitions.begin(), call.transitions.end(), std::back_inserter(transitions));
    };
    if (!reporting_->userStatusChannel.empty()) {
        Call call = begin(reporting_->userStatusChannel, now);
        touch(call);
        take(call);
    }
    // Every entry of these expired: touching one drops them all. Taken out of the index first, so
    // that each sweeps once whatever its state.
    while (!sweepable_.empty() && sweepable_.begin()->first <= now) {
        std::string channel = std::move(sweepable_.extract(sweepable_.begin()).value().second);
        if (auto it = channels_.find(channel); it != channels_.end()) it->second.sweptAtMs.reset();
        Call call = begin(channel, now);
        touch(call);
        take(call);
    }
    report(std::move(lock), std::move(transitions));
}

}  // namespace wspush
