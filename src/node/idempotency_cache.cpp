#include "node/idempotency_cache.h"

#include <cassert>
#include <utility>

#include <openssl/evp.h>

namespace wspush {

IdempotencyCache::IdempotencyCache(Duration window, std::size_t maxEntries, Clock clock)
    : window_(window),
      maxEntries_(maxEntries == 0 ? 1 : maxEntries),
      clock_(clock ? std::move(clock) : Clock([] { return std::chrono::steady_clock::now(); })) {}

IdempotencyCache::Fingerprint IdempotencyCache::fingerprint(std::string_view body) {
    Fingerprint digest{};
    unsigned int length = 0;
    // One-shot SHA-256; it only fails when OpenSSL cannot allocate, which we treat like new would.
    int ok = EVP_Digest(body.data(), body.size(), digest.data(), &length, EVP_sha256(), nullptr);
    assert(ok == 1 && length == digest.size());
    (void)ok;
    return digest;
}

std::string IdempotencyCache::compositeKey(std::string_view scope, std::string_view key) {
    // '\n' appears neither in a path nor in a valid key (printable ASCII).
    std::string composite;
    composite.reserve(scope.size() + 1 + key.size());
    composite.append(scope).append(1, '\n').append(key);
    return composite;
}

void IdempotencyCache::dropExpiredLocked(TimePoint now) {
    while (!completed_.empty()) {
        auto it = entries_.find(*completed_.front());
        assert(it != entries_.end());
        if (now - it->second.completedAt < window_) break;
        completed_.pop_front();
        entries_.erase(it);
    }
}

void IdempotencyCache::evictOverCapacityLocked() {
    while (entries_.size() > maxEntries_ && !completed_.empty()) {
        const std::string* oldest = completed_.front();
        completed_.pop_front();
        entries_.erase(*oldest);
    }
}

IdempotencyCache::BeginResult IdempotencyCache::begin(std::string_view scope, std::string_view key,
                                                      const Fingerprint& fingerprint, Waiter waiter) {
    std::string composite = compositeKey(scope, key);
    std::lock_guard lock(mutex_);
    dropExpiredLocked(clock_());
    auto [it, inserted] = entries_.try_emplace(std::move(composite));
    Entry& entry = it->second;
    if (inserted) {
        entry.fingerprint = fingerprint;
        evictOverCapacityLocked();  // never the new entry: it is in flight
        return {Outcome::Proceed, {}};
    }
    if (entry.fingerprint != fingerprint) return {Outcome::Conflict, {}};
    if (entry.completed) return {Outcome::Replay, entry.response};
    entry.waiters.push_back(std::move(waiter));
    return {Outcome::Wait, {}};
}

void IdempotencyCache::complete(std::string_view scope, std::string_view key, Response response) {
    std::vector<Waiter> waiters;
    {
        std::lock_guard lock(mutex_);
        auto it = entries_.find(compositeKey(scope, key));
        if (it == entries_.end() || it->second.completed) {
            assert(false && "complete() without a Proceed");
            return;
        }
        Entry& entry = it->second;
        entry.completed = true;
        entry.completedAt = clock_();
        entry.response = response;
        entry.waiters.swap(waiters);
        completed_.push_back(&it->first);
        evictOverCapacityLocked();  // entries that arrived while we were full may now be over the cap
    }
    for (auto& waiter : waiters) waiter(response);
}

void IdempotencyCache::abandon(std::string_view scope, std::string_view key, const Response& response) {
    std::vector<Waiter> waiters;
    {
        std::lock_guard lock(mutex_);
        auto it = entries_.find(compositeKey(scope, key));
        if (it == entries_.end() || it->second.completed) {
            assert(false && "abandon() without a Proceed");
            return;
        }
        waiters = std::move(it->second.waiters);
        entries_.erase(it);
    }
    for (auto& waiter : waiters) waiter(response);
}

std::size_t IdempotencyCache::size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
}

std::size_t IdempotencyCache::inFlight() const {
    std::lock_guard lock(mutex_);
    return entries_.size() - completed_.size();
}

std::string IdempotencyCache::engineKey(std::string_view key, std::string_view body) {
    Fingerprint digest = fingerprint(body);
    std::string out(key);
    out += '#';
    static constexpr char kHex[] = "0123456789abcdef";
    for (std::size_t i = 0; i < 8 && i < digest.size(); ++i) {  // 64 bits tell bodies apart well enough here
        out += kHex[static_cast<unsigned char>(digest[i]) >> 4];
        out += kHex[static_cast<unsigned char>(digest[i]) & 15];
    }
    return out;
}

}  // namespace wspush
