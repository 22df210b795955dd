// Every live session of this node, by id: where it lives and how to prove the right to resume it.
//
// Touched when a client connects, resumes or its session ends — never per message — so one mutex
// suffices. The registry owns the sessions; a session's state itself is only ever touched on the
// event loop it currently lives on (ClientSession).
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "base/string_hash.h"

namespace wspush {

class ClientSession;

class SessionRegistry {
public:
    struct Claim {
        std::shared_ptr<ClientSession> session;
        unsigned loop;  // where the session lives now
    };

    void add(const std::string& id, const std::string& resumeToken, std::shared_ptr<ClientSession> session,
             unsigned loop);

    // Reserves the session for one resuming connection. nullopt when the id is unknown or the
    // token does not match; `busy` is set (and nullopt returned) while another connection is
    // resuming it, so the caller can try again shortly.
    std::optional<Claim> claim(const std::string& id, const std::string& resumeToken, bool* busy = nullptr);
    // The resume is over; the session now lives on `loop`.
    void release(const std::string& id, unsigned loop);

    void remove(const std::string& id);
    // Drops every session (the node is shutting down, its loops have stopped).
    void clear();
    std::size_t size() const;

private:
    struct Entry {
        std::shared_ptr<ClientSession> session;
        std::string resumeToken;
        unsigned loop;
        bool claimed = false;
    };
    mutable std::mutex mutex_;
    std::unordered_map<std::string, Entry, StringHash, std::equal_to<>> entries_;
};

}  // namespace wspush
