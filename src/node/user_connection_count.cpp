#include "node/user_connection_count.h"

#include <utility>

namespace wspush {

UserConnectionCount::Slot& UserConnectionCount::Slot::operator=(Slot&& other) noexcept {
    if (this != &other) {
        reset();
        count_ = std::exchange(other.count_, nullptr);
        user_ = std::move(other.user_);
    }
    return *this;
}

void UserConnectionCount::Slot::reset() {
    if (count_ != nullptr) std::exchange(count_, nullptr)->release(user_);
}

std::optional<UserConnectionCount::Slot> UserConnectionCount::admit(const std::string& user) {
    Slot slot;
    if (limit_ == 0 || user.empty()) return slot;
    {
        std::lock_guard lock(mutex_);
        std::size_t& count = counts_[user];
        if (count >= limit_) return std::nullopt;
        ++count;
    }
    slot.count_ = this;
    slot.user_ = user;
    return slot;
}

void UserConnectionCount::release(const std::string& user) {
    std::lock_guard lock(mutex_);
    auto it = counts_.find(user);
    if (it == counts_.end()) return;
    if (--it->second == 0) counts_.erase(it);
}

std::size_t UserConnectionCount::connectionsOf(const std::string& user) const {
    std::lock_guard lock(mutex_);
    auto it = counts_.find(user);
    return it == counts_.end() ? 0 : it->second;
}

std::size_t UserConnectionCount::users() const {
    std::lock_guard lock(mutex_);
    return counts_.size();
}

}  // namespace wspush
