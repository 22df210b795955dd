// The TCP socket under a plain WebSocket connection once it is upgraded. Beast reads and writes
// through it as through a tcp::socket; besides, the session may write whole frames of its own
// straight to the socket (writeDirect): one non-blocking sendmsg, with no Asio operation, no
// Beast write state machine and no allocation on the way. That is the cost of one delivery when
// nothing can be batched (docs/performance.md).
//
// Two writers of one byte stream must never interleave within a frame, so:
//   - a direct write starts only while no write of Beast's is under way (idle());
//   - when the socket takes only part of a direct write, the rest is written asynchronously, and
//     a write Beast starts meanwhile (a pong, a ping, a close) is held until the rest is out.
// Beast writes a frame with one async_write: a chain of async_write_some, each started from the
// completion of the one before. Nothing else runs on the loop between two links of that chain,
// so "no write_some of Beast's outstanding" means Beast is between frames. Beast fragments a
// message only with permessage-deflate or auto_fragment; WebSocketSession writes directly only
// on connections with neither, so Beast never has a message half-sent either.
//
// With the shared compression (deflate_offer.h) the client's bytes reach Beast through an
// InboundDeflateFilter (filterReads), which turns compressed messages into plain ones.
//
// Lives on its connection's loop, like everything of the connection.
#pragma once

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/websocket/teardown.hpp>

#include "base/batched_sends.h"
#include "transport/inbound_deflate_filter.h"

namespace wspush {

class DirectWriteSocket {
public:
    using executor_type = boost::asio::ip::tcp::socket::executor_type;
    using next_layer_type = boost::asio::ip::tcp::socket;

    enum class Outcome {
        Written,  // all of it, before writeDirect returned
        Pending,  // the socket took part; `whenWritten` is called once the rest is out (or failed)
        Failed,   // nothing more will be written: `error` says why
    };

    explicit DirectWriteSocket(next_layer_type socket) : socket_(std::move(socket)) {
        // Only the direct writes are synchronous, and they must never block. Asio's own
        // asynchronous operations work the same on a non-blocking socket.
        boost::beast::error_code ignored;
        socket_.non_blocking(true, ignored);
    }

    executor_type get_executor() noexcept { return socket_.get_executor(); }
    next_layer_type& next_layer() noexcept { return socket_; }
    const next_layer_type& next_layer() const noexcept { return socket_; }

    // Whether a direct write may start now.
    bool idle() const { return beastWrites_ == 0 && !restPending_ && !queuedSend_; }

    // Writes `buffers` (`total` bytes) now, as far as the socket takes them. Requires idle(). The
    // buffers must stay valid until the outcome is Written or Failed, or `whenWritten` was called.
    // A single const_buffer is written with send(), anything else with sendmsg().
    template <class ConstBuffers, class Handler>
    Outcome writeDirect(const ConstBuffers& buffers, std::size_t total, boost::beast::error_code& error,
                        Handler&& whenWritten) {
        std::size_t written = socket_.write_some(buffers, error);
        if (error == boost::asio::error::would_block || error == boost::asio::error::try_again) {
            error = {};
            written = 0;
        }
        return continueWrite(buffers, total, written, error, std::forward<Handler>(whenWritten));
    }

    // writeDirect's attempt made by `sends` together with other connections' (BatchedSends)
    // rather than at once: requires idle(), and the socket counts as busy until completeSend()
    // hands over the result (a Beast write meanwhile waits, as it does behind the rest of a write).
    void queueSend(BatchedSends& sends, boost::asio::const_buffer buffer,
                   std::shared_ptr<BatchedSends::Sender> sender) {
        queuedSend_ = true;
        sends.add(socket_.native_handle(), buffer.data(), buffer.size(), std::move(sender));
    }
    // The queued send's `result` (bytes, or -errno), then as writeDirect goes on after its attempt.
    template <class Handler>
    Outcome completeSend(std::int64_t result, boost::asio::const_buffer buffer, boost::beast::error_code& error,
                         Handler&& whenWritten) {
        queuedSend_ = false;
        std::size_t written = result > 0 ? static_cast<std::size_t>(result) : 0;
        if (result < 0 && result != -EAGAIN && result != -EWOULDBLOCK)
            error = boost::beast::error_code(static_cast<int>(-result), boost::system::system_category());
        Outcome outcome = continueWrite(buffer, buffer.size(), written, error, std::forward<Handler>(whenWritten));
        if (outcome != Outcome::Pending) releaseHeldWrite();
        return outcome;
    }

    // From now on Beast reads what the client sends through `filter`. Before the first read.
    void filterReads(RawInflater& inflater, std::size_t maxMessageSize) {
        filtered_ = std::make_unique<FilteredReads>(inflater, maxMessageSize);
    }

    template <class MutableBufferSequence, class ReadToken>
    auto async_read_some(const MutableBufferSequence& buffers, ReadToken&& token) {
        if (!filtered_) return socket_.async_read_some(buffers, std::forward<ReadToken>(token));
        return boost::asio::async_compose<ReadToken, void(boost::beast::error_code, std::size_t)>(
            FilteredRead<MutableBufferSequence>{*this, buffers}, token, socket_);
    }

    template <class ConstBufferSequence, class WriteToken>
    auto async_write_some(const ConstBufferSequence& buffers, WriteToken&& token) {
        return boost::asio::async_initiate<WriteToken, void(boost::beast::error_code, std::size_t)>(
            [this](auto handler, const ConstBufferSequence& buffers) {
                if (!restPending_ && !queuedSend_) return startBeastWrite(buffers, std::move(handler));
                // Beast serializes its own writes, so at most one of them ever waits here.
                heldBuffers_.assign(boost::asio::buffer_sequence_begin(buffers),
                                    boost::asio::buffer_sequence_end(buffers));
                held_.emplace(std::move(handler));
            },
            token, buffers);
    }

private:
    struct FilteredReads {
        FilteredReads(RawInflater& inflater, std::size_t maxMessageSize) : filter(inflater, maxMessageSize) {}
        InboundDeflateFilter filter;
        std::string readable;  // the filter's output that Beast has not read yet, from `offset`
        std::size_t offset = 0;
    };

    // One of Beast's reads through the filter. It waits until the socket is readable instead of
    // reading into a buffer of its own, so that an idle connection holds none, then reads into
    // the thread's scratch buffer and filters at once.
    template <class MutableBufferSequence>
    struct FilteredRead {
        DirectWriteSocket& owner;
        MutableBufferSequence buffers;
        bool posted = false;

        template <class Self>
        void operator()(Self& self) {
            if (!owner.hasReadable()) return owner.waitReadable(std::move(self));
            // What the filter left over is there now, but the read must not complete before its
            // initiation has returned.
            if (!posted) {
                posted = true;
                return boost::asio::post(owner.get_executor(), std::move(self));
            }
            self.complete({}, owner.takeReadable(buffers));
        }

        template <class Self>
        void operator()(Self& self, boost::beast::error_code ec) {  // the socket is readable, or failed
            if (!ec) ec = owner.readThroughFilter();
            if (ec) return self.complete(ec, 0);
            if (!owner.hasReadable()) return owner.waitReadable(std::move(self));
            self.complete({}, owner.takeReadable(buffers));
        }
    };

    bool hasReadable() const { return filtered_->offset < filtered_->readable.size(); }

    template <class Self>
    void waitReadable(Self&& self) {
        socket_.async_wait(next_layer_type::wait_read, std::forward<Self>(self));
    }

    boost::beast::error_code readThroughFilter() {
        static thread_local std::array<char, 16 * 1024> scratch;
        boost::beast::error_code ec;
        std::size_t bytes = socket_.read_some(boost::asio::buffer(scratch), ec);
        if (ec == boost::asio::error::would_block || ec == boost::asio::error::try_again) return {};
        if (!ec) filtered_->filter.filter({scratch.data(), bytes}, filtered_->readable);
        return ec;
    }

    template <class MutableBufferSequence>
    std::size_t takeReadable(const MutableBufferSequence& buffers) {
        FilteredReads& reads = *filtered_;
        std::size_t bytes = boost::asio::buffer_copy(
            buffers, boost::asio::buffer(reads.readable.data() + reads.offset, reads.readable.size() - reads.offset));
        reads.offset += bytes;
        if (reads.offset == reads.readable.size()) {
            std::string().swap(reads.readable);
            reads.offset = 0;
        }
        return bytes;
    }

    using WriteHandler = boost::asio::any_completion_handler<void(boost::beast::error_code, std::size_t)>;

    // After a direct write's attempt wrote `written` of `total` bytes: the rest, if any, asynchronously.
    template <class ConstBuffers, class Handler>
    Outcome continueWrite(const ConstBuffers& buffers, std::size_t total, std::size_t written,
                          const boost::beast::error_code& error, Handler&& whenWritten) {
        if (error) return Outcome::Failed;
        if (written == total) return Outcome::Written;
        restPending_ = true;
        boost::beast::buffers_suffix<ConstBuffers> rest(buffers);
        rest.consume(written);
        boost::asio::async_write(
            socket_, rest,
            [this, handler = std::forward<Handler>(whenWritten)](boost::beast::error_code ec, std::size_t) mutable {
                restPending_ = false;
                releaseHeldWrite();
                std::move(handler)(ec);
            });
        return Outcome::Pending;
    }

    template <class ConstBufferSequence, class Handler>
    void startBeastWrite(const ConstBufferSequence& buffers, Handler handler) {
        ++beastWrites_;
        socket_.async_write_some(
            buffers, [this, handler = std::move(handler)](boost::beast::error_code ec, std::size_t bytes) mutable {
                --beastWrites_;
                std::move(handler)(ec, bytes);
            });
    }

    void releaseHeldWrite() {
        if (!held_) return;
        WriteHandler handler(std::move(*held_));
        held_.reset();
        // heldBuffers_ stays put until this write completes: Beast starts no other meanwhile.
        startBeastWrite(heldBuffers_, std::move(handler));
    }

    next_layer_type socket_;
    unsigned beastWrites_ = 0;  // Beast's async_write_some under way (0 or 1)
    bool restPending_ = false;  // the rest of a direct write under way
    bool queuedSend_ = false;   // a direct write's attempt waits in a BatchedSends
    // Beast's write waiting for the rest of a direct write. In an optional, never assigned:
    // Boost 1.81's any_completion_handler move assignment wraps the handler in itself, forever.
    std::optional<WriteHandler> held_;
    std::vector<boost::asio::const_buffer> heldBuffers_;
    std::unique_ptr<FilteredReads> filtered_;  // with the shared compression only
};

// Beast tears a connection down through these (found by argument-dependent lookup): the socket's own.
inline void teardown(boost::beast::role_type role, DirectWriteSocket& socket, boost::beast::error_code& error) {
    boost::beast::websocket::teardown(role, socket.next_layer(), error);
}

template <class TeardownHandler>
void async_teardown(boost::beast::role_type role, DirectWriteSocket& socket, TeardownHandler&& handler) {
    boost::beast::websocket::async_teardown(role, socket.next_layer(), std::forward<TeardownHandler>(handler));
}

}  // namespace wspush
