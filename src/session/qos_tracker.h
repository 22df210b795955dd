// Server → client delivery state of one session for QoS 1 and 2 (docs/protocol.md, "QoS").
//
// Pure logic: it takes events (a delivery, an ack/rec/comp from the client, the passage of time)
// and says what to send; it does no I/O and reads no clock, so every transition is unit-tested.
//
// Delivery ids (`did`) are issued consecutively per session. Inflight deliveries live in a ring
// indexed by did, so tracking, lookup and completion are O(1) and allocate nothing per message;
// the window is the span from the oldest unfinished did to the next one, at most `maxInflight`.
#pragma once

#include <algorithm>
#include <bit>
#include <cassert>
#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

namespace wspush {

using DeliveryId = std::uint64_t;

// The state of one inflight delivery:
//
//   QoS 1:  message ──▶ AwaitingAck ──ack──▶ (done)
//   QoS 2:  message ──▶ AwaitingRec ──rec──▶ AwaitingComp (server sends rel) ──comp──▶ (done)
//
// On timeout: AwaitingAck/AwaitingRec resend the message with dup; AwaitingComp resends rel.
enum class DeliveryState : std::uint8_t { Free, AwaitingAck, AwaitingRec, AwaitingComp };

// The outcome of a client's ack, rec or comp.
enum class QosOutcome {
    Completed,      // the delivery is finished and its slot freed
    SendRel,        // reply {"type":"rel","did":n}: the first rec, or a repeated one (our rel was lost)
    Ignored,        // unknown or finished did: a late duplicate, harmless by design
    ProtocolError,  // the input contradicts the delivery's QoS or state (ack on QoS 2, comp before rec, …)
};

struct QosTimings {
    std::chrono::milliseconds ackTimeout{10000};  // first resend after this long
    std::chrono::milliseconds maxBackoff{60000};  // resend intervals double up to this
    unsigned maxRedeliveries = 5;                 // resends of one delivery before the client is unhealthy
};

template <class Message>
class QosTracker {
public:
    using TimePoint = std::chrono::steady_clock::time_point;

    QosTracker(std::size_t maxInflight, QosTimings timings)
        : maxInflight_(std::max<std::size_t>(1, maxInflight)), timings_(timings) {}

    bool hasRoom() const { return nextDid_ - oldestDid_ < maxInflight_; }
    std::size_t inflight() const { return live_; }
    DeliveryId nextDid() const { return nextDid_; }

    // Starts tracking a QoS 1 or 2 delivery sent at `now`; requires hasRoom(). Returns its did.
    DeliveryId track(Message message, int qos, TimePoint now) {
        assert(hasRoom() && (qos == 1 || qos == 2));
        ensureCapacity();
        DeliveryId did = nextDid_++;
        Slot& slot = slotOf(did);
        slot.message = std::move(message);
        slot.state = qos == 1 ? DeliveryState::AwaitingAck : DeliveryState::AwaitingRec;
        slot.resends = 0;
        slot.due = now + timings_.ackTimeout;
        ++live_;
        return did;
    }

    QosOutcome onAck(DeliveryId did) {
        Slot* slot = find(did);
        if (slot == nullptr) return QosOutcome::Ignored;
        if (slot->state != DeliveryState::AwaitingAck) return QosOutcome::ProtocolError;
        release(did);
        return QosOutcome::Completed;
    }

    QosOutcome onRec(DeliveryId did, TimePoint now) {
        Slot* slot = find(did);
        if (slot == nullptr) return QosOutcome::Ignored;
        if (slot->state == DeliveryState::AwaitingAck) return QosOutcome::ProtocolError;
        if (slot->state == DeliveryState::AwaitingRec) {
            slot->state = DeliveryState::AwaitingComp;
            slot->resends = 0;
            slot->due = now + timings_.ackTimeout;
            slot->message = Message{};  // the client has it: only the rel/comp exchange remains
        }
        return QosOutcome::SendRel;
    }

    QosOutcome onComp(DeliveryId did) {
        Slot* slot = find(did);
        if (slot == nullptr) return QosOutcome::Ignored;
        if (slot->state != DeliveryState::AwaitingComp) return QosOutcome::ProtocolError;
        release(did);
        return QosOutcome::Completed;
    }

    // What a due delivery needs: the message again (with dup), or the rel again.
    struct Resend {
        DeliveryId did;
        DeliveryState state;     // AwaitingAck/AwaitingRec: resend message; AwaitingComp: resend rel
        const Message* message;  // null for AwaitingComp
    };

    // Calls `resend(Resend)` for every delivery due at `now`, oldest first, and schedules its next
    // attempt with doubled backoff. Returns false, without resending anything further, when a
    // delivery has used up maxRedeliveries: the client is unhealthy (the deliveries stay here).
    template <class OnResend>
    bool resendDue(TimePoint now, OnResend&& resend) {
        for (DeliveryId did = oldestDid_; did < nextDid_; ++did) {
            Slot& slot = slotOf(did);
            if (slot.state == DeliveryState::Free || slot.due > now) continue;
            if (slot.resends >= timings_.maxRedeliveries) return false;
            ++slot.resends;
            slot.due = now + backoff(slot.resends);
            resend(Resend{did, slot.state, slot.state == DeliveryState::AwaitingComp ? nullptr : &slot.message});
        }
        return true;
    }

    // After a reconnect: everything inflight is resent at once, and retry counts start over.
    template <class OnResend>
    void resendAll(TimePoint now, OnResend&& resend) {
        for (DeliveryId did = oldestDid_; did < nextDid_; ++did) {
            Slot& slot = slotOf(did);
            if (slot.state == DeliveryState::Free) continue;
            slot.resends = 0;
            slot.due = now + timings_.ackTimeout;
            resend(Resend{did, slot.state, slot.state == DeliveryState::AwaitingComp ? nullptr : &slot.message});
        }
    }

    // The earliest moment resendDue has work, or nullopt when nothing is inflight.
    std::optional<TimePoint> nextDue() const {
        std::optional<TimePoint> earliest;
        for (DeliveryId did = oldestDid_; did < nextDid_; ++did) {
            const Slot& slot = slots_[did & (slots_.size() - 1)];
            if (slot.state != DeliveryState::Free && (!earliest || slot.due < *earliest)) earliest = slot.due;
        }
        return earliest;
    }

    // Every unfinished delivery's message, oldest first (the session's end: hand to an inbox).
    template <class OnMessage>
    void forEachUnfinished(OnMessage&& onMessage) const {
        for (DeliveryId did = oldestDid_; did < nextDid_; ++did) {
            const Slot& slot = slots_[did & (slots_.size() - 1)];
            if (slot.state == DeliveryState::AwaitingAck || slot.state == DeliveryState::AwaitingRec)
                onMessage(did, slot.message);
        }
    }

    // The message of an unfinished delivery (empty once a QoS 2 delivery reached AwaitingComp), or null.
    const Message* messageOf(DeliveryId did) const {
        const Slot* slot = const_cast<QosTracker*>(this)->find(did);
        return slot == nullptr ? nullptr : &slot->message;
    }

    DeliveryState stateOf(DeliveryId did) const {
        const Slot* slot = const_cast<QosTracker*>(this)->find(did);
        return slot == nullptr ? DeliveryState::Free : slot->state;
    }

private:
    struct Slot {
        Message message{};
        DeliveryState state = DeliveryState::Free;
        unsigned resends = 0;
        TimePoint due{};
    };

    Slot& slotOf(DeliveryId did) { return slots_[did & (slots_.size() - 1)]; }

    Slot* find(DeliveryId did) {
        if (did < oldestDid_ || did >= nextDid_) return nullptr;
        Slot& slot = slotOf(did);
        return slot.state == DeliveryState::Free ? nullptr : &slot;
    }

    void release(DeliveryId did) {
        Slot& slot = slotOf(did);
        slot = Slot{};
        --live_;
        while (oldestDid_ < nextDid_ && slotOf(oldestDid_).state == DeliveryState::Free) ++oldestDid_;
    }

    // The ring grows to the window's size on demand, so an idle session holds no slots.
    void ensureCapacity() {
        std::size_t needed = nextDid_ - oldestDid_ + 1;
        if (needed <= slots_.size()) return;
        std::vector<Slot> grown(std::bit_ceil(std::max<std::size_t>(needed, 8)));
        for (DeliveryId did = oldestDid_; did < nextDid_; ++did)
            grown[did & (grown.size() - 1)] = std::move(slotOf(did));
        slots_ = std::move(grown);
    }

    std::chrono::milliseconds backoff(unsigned resends) const {
        auto interval = timings_.ackTimeout;
        for (unsigned i = 0; i < resends && interval < timings_.maxBackoff; ++i) interval *= 2;
        return std::min(interval, timings_.maxBackoff);
    }

    std::size_t maxInflight_;
    QosTimings timings_;
    std::vector<Slot> slots_;
    DeliveryId oldestDid_ = 1;  // dids start at 1 so that 0 never names a delivery
    DeliveryId nextDid_ = 1;
    std::size_t live_ = 0;
};

}  // namespace wspush
