// How many connections each user has on this node, for limits.connections_per_user (docs/security.md,
// "Limits"). Counted at `connect`, once the user is known, from every loop: one mutex, taken when a
// user's connection is admitted and when it ends — never per message — and only with a limit set.
// Anonymous connections (user "") are not counted.
#pragma once

#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "base/string_hash.h"

namespace wspush {

class UserConnectionCount {
public:
    // One admitted connection of a user, uncounted when destroyed or reset. Move-only.
    class Slot {
    public:
        Slot() = default;
        Slot(Slot&& other) noexcept { *this = std::move(other); }
        Slot& operator=(Slot&& other) noexcept;
        Slot(const Slot&) = delete;
        Slot& operator=(const Slot&) = delete;
        ~Slot() { reset(); }
        void reset();

    private:
        friend class UserConnectionCount;
        UserConnectionCount* count_ = nullptr;
        std::string user_;
    };

    // 0: no limit (nothing is counted).
    explicit UserConnectionCount(std::size_t limit) : limit_(limit) {}

    // A slot for one more connection of `user`, or nullopt when the user has `limit` already.
    // Anonymous connections, and every connection without a limit, get an empty slot.
    std::optional<Slot> admit(const std::string& user);

    std::size_t connectionsOf(const std::string& user) const;
    std::size_t users() const;

private:
    void release(const std::string& user);

    std::size_t limit_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, std::size_t, StringHash, std::equal_to<>> counts_;  // no zeros kept
};

}  // namespace wspush
