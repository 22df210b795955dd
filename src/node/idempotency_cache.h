// Remembers the responses of keyed HTTP publish requests for a time window, so that a retried
// request gets the original response instead of publishing again (docs/http-api.md, "Idempotent
// publishing").
//
// One entry per (scope, key): the SHA-256 of the first request's body and, once that request
// finished, its response. An entry is in flight from begin() until complete() or abandon().
// Completed entries expire `window` after completion (dropped lazily, by the next begin()) and
// are evicted oldest-completed first when there are more than `maxEntries` entries. In-flight
// entries are never expired or evicted, so while more than `maxEntries` keyed requests are in
// flight at once the cache holds more.
//
// Thread-safe: one mutex, taken a few times per keyed request (never per delivery). Waiters are
// called without the mutex held, on the thread that calls complete() or abandon().
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/string_hash.h"

namespace wspush {

class IdempotencyCache {
public:
    using TimePoint = std::chrono::steady_clock::time_point;
    using Duration = std::chrono::steady_clock::duration;
    using Clock = std::function<TimePoint()>;           // injected so tests control time
    using Fingerprint = std::array<unsigned char, 32>;  // SHA-256 of the request body

    // What is remembered of a response: enough to send it again.
    struct Response {
        unsigned status = 200;
        std::string contentType;
        std::string body;
        bool operator==(const Response&) const = default;
    };

    // Called once with the first request's response when it completes or is abandoned.
    using Waiter = std::function<void(const Response&)>;

    enum class Outcome {
        Proceed,   // the key is new (or expired, evicted, abandoned): perform the request, then complete() or abandon()
        Replay,    // the same body completed within the window: answer `response`
        Conflict,  // the key is known (in flight or completed) with a different body
        Wait,      // the same body is in flight: `waiter` was registered and will get its response
    };
    struct BeginResult {
        Outcome outcome;
        Response response;  // Replay only
    };

    // `clock` defaults to std::chrono::steady_clock::now. `maxEntries` ≥ 1.
    IdempotencyCache(Duration window, std::size_t maxEntries, Clock clock = {});

    IdempotencyCache(const IdempotencyCache&) = delete;
    IdempotencyCache& operator=(const IdempotencyCache&) = delete;

    static Fingerprint fingerprint(std::string_view body);
    // The key under which the engine remembers a keyed publish: `key` and the body's fingerprint,
    // so that the engine, like this cache, takes the same key with another body as a new request.
    static std::string engineKey(std::string_view key, std::string_view body);

    // Looks (scope, key) up; see Outcome. `waiter` is kept only when the outcome is Wait.
    BeginResult begin(std::string_view scope, std::string_view key, const Fingerprint& fingerprint, Waiter waiter);

    // The request that got Proceed succeeded: remember `response` and hand it to the waiters.
    void complete(std::string_view scope, std::string_view key, Response response);

    // The request that got Proceed failed: forget the key (a retry will Proceed) and hand
    // `response` to the waiters, which were waiting for this very attempt.
    void abandon(std::string_view scope, std::string_view key, const Response& response);

    // Entries held, in flight and completed (expired ones not yet dropped included).
    std::size_t size() const;
    std::size_t inFlight() const;

private:
    struct Entry {
        Fingerprint fingerprint{};
        bool completed = false;
        Response response;  // once completed
        TimePoint completedAt{};
        std::vector<Waiter> waiters;  // while in flight
    };

    static std::string compositeKey(std::string_view scope, std::string_view key);
    void dropExpiredLocked(TimePoint now);
    void evictOverCapacityLocked();

    const Duration window_;
    const std::size_t maxEntries_;
    const Clock clock_;

    mutable std::mutex mutex_;
    // Keys are "scope\nkey". Node-based: the key strings stay put, so completed_ can point at them.
    std::unordered_map<std::string, Entry, StringHash, std::equal_to<>> entries_;
    std::deque<const std::string*> completed_;  // completed entries' keys, oldest completion first
};

}  // namespace wspush
