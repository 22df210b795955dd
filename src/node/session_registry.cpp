#include "node/session_registry.h"

#include "base/constant_time.h"

namespace wspush {

void SessionRegistry::add(const std::string& id, const std::string& resumeToken, std::shared_ptr<ClientSession> session,
                          unsigned loop) {
    std::lock_guard lock(mutex_);
    entries_[id] = Entry{std::move(session), resumeToken, loop, false};
}

std::optional<SessionRegistry::Claim> SessionRegistry::claim(const std::string& id, const std::string& resumeToken,
                                                             bool* busy) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(id);
    if (it == entries_.end() || !constantTimeEquals(it->second.resumeToken, resumeToken)) return std::nullopt;
    if (it->second.claimed) {
        if (busy) *busy = true;
        return std::nullopt;
    }
    it->second.claimed = true;
    return Claim{it->second.session, it->second.loop};
}

void SessionRegistry::release(const std::string& id, unsigned loop) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    it->second.claimed = false;
    it->second.loop = loop;
}

void SessionRegistry::remove(const std::string& id) {
    std::shared_ptr<ClientSession> last;  // destroyed outside the lock
    std::lock_guard lock(mutex_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    last = std::move(it->second.session);
    entries_.erase(it);
}

void SessionRegistry::clear() {
    decltype(entries_) entries;
    {
        std::lock_guard lock(mutex_);
        entries.swap(entries_);
    }
}

std::size_t SessionRegistry::size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
}

}  // namespace wspush
