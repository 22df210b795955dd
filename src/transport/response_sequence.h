// The responses of one connection's pipelined requests, in request order. Each request read
// takes a ticket; its response may be answered in any order (a publish on the Redis engine, or
// one waiting for acks, finishes after a later request), and leaves only after the responses of
// every earlier request. The first response that closes the connection is the last to leave.
//
// Lives on its connection's loop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>

namespace wspush {

class ResponseSequence {
public:
    using Ticket = std::uint64_t;

    Ticket open() {
        slots_.emplace_back();
        return firstTicket_ + slots_.size() - 1;
    }

    // `bytes`: the whole response on the wire. Answering a ticket twice, or after a closing
    // response left, is ignored.
    void answer(Ticket ticket, std::string bytes, bool closesConnection) {
        if (ticket < firstTicket_ || ticket - firstTicket_ >= slots_.size()) return;
        Slot& slot = slots_[ticket - firstTicket_];
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
        while (!slots_.empty() && slots_.front().answered) {
            Slot& slot = slots_.front();
            if (out.empty())
                out = std::move(slot.bytes);
            else
                out.append(slot.bytes);
            ++taken.responses;
            taken.closesConnection = slot.closesConnection;
            slots_.pop_front();
            ++firstTicket_;
            if (taken.closesConnection) {
                firstTicket_ += slots_.size();
                slots_.clear();
                break;
            }
        }
        return taken;
    }

    // Requests read whose response has not been taken yet.
    std::size_t outstanding() const { return slots_.size(); }

private:
    struct Slot {
        std::string bytes;
        bool answered = false;
        bool closesConnection = false;
    };
    std::deque<Slot> slots_;
    Ticket firstTicket_ = 0;  // the ticket of slots_.front()
};

}  // namespace wspush
