// The responses of one connection's pipelined requests, in request order. Each request read
// takes a ticket; its response may be answered in any order (a publish on the Redis engine, or
// one waiting for acks, finishes after a later request), and leaves only after the responses of
// every earlier request. The first response that closes the connection is the last to leave.
//
// Lives on its connection's loop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <vector>

namespace wspush {

class ResponseSequence {
public:
    using Ticket = std::uint64_t;

    Ticket open() {
        slots_.emplace_back();
        return firstTicket_ + outstanding() - 1;
    }

    // `bytes`: the whole response on the wire. Answering a ticket twice, or after a closing
    // response left, is ignored.
    void answer(Ticket ticket, std::string bytes, bool closesConnection) {
        if (ticket < firstTicket_ || ticket - firstTicket_ >= outstanding()) return;
        Slot& slot = slots_[front_ + (ticket - firstTicket_)];
        if (slot.answered) return;
        slot.answered = true;
        slot.closesConnection = closesConnection;
        slot.bytes = std::move(bytes);
    }

    struct Taken {
        std::size_t responses = 0;
        bool closesConnection = false;  // the last one taken closes: nothing may follow it
    };
    // Appends to `out` every answered response at the front, in order, up to and including the
    // first that closes the connection; the tickets behind that one are dropped unanswered.
    Taken takeReady(std::string& out) {
        Taken taken;
        while (front_ < slots_.size() && slots_[front_].answered) {
            Slot& slot = slots_[front_];
            if (out.empty())
                out = std::move(slot.bytes);
            else
                out.append(slot.bytes);
            ++taken.responses;
            taken.closesConnection = slot.closesConnection;
            ++front_;
            ++firstTicket_;
            if (taken.closesConnection) {
                firstTicket_ += outstanding();
                front_ = slots_.size();
                break;
            }
        }
        if (front_ == slots_.size()) {  // the usual case: everything taken, the capacity kept
            slots_.clear();
            front_ = 0;
        } else if (front_ >= kCompactAfter && front_ * 2 >= slots_.size()) {
            // A client that keeps requests outstanding (each waiting for Redis) never lets the
            // vector empty: drop the taken slots now and then, at a cost that stays per response.
            slots_.erase(slots_.begin(), slots_.begin() + static_cast<std::ptrdiff_t>(front_));
            front_ = 0;
        }
        return taken;
    }

    // Requests read whose response has not been taken yet.
    std::size_t outstanding() const { return slots_.size() - front_; }

private:
    static constexpr std::size_t kCompactAfter = 32;

    struct Slot {
        std::string bytes;
        bool answered = false;
        bool closesConnection = false;
    };
    // A vector rather than a deque: a deque allocates when it is made, and every connection,
    // WebSocket ones before their upgrade included, has one of these.
    std::vector<Slot> slots_;
    std::size_t front_ = 0;   // slots before it are taken; those from it are outstanding
    Ticket firstTicket_ = 0;  // the ticket of slots_[front_]
};

}  // namespace wspush
