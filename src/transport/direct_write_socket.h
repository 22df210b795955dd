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
// Lives on its connection's loop, like everything of the connection.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/websocket/teardown.hpp>

namespace wspush {

class DirectWriteSocket {
public:
    using executor_type = boost::asio::ip::tcp::socket::executor_type;
    using next_layer_type = boost::asio::ip::tcp::socket;
    using Buffers = std::span<const boost::asio::const_buffer>;

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
    bool idle() const { return beastWrites_ == 0 && !restPending_; }

    // Writes `buffers` (`total` bytes) now, as far as the socket takes them. Requires idle(). The
    // buffers must stay valid until the outcome is Written or Failed, or `whenWritten` was called.
    template <class Handler>
    Outcome writeDirect(Buffers buffers, std::size_t total, boost::beast::error_code& error, Handler&& whenWritten) {
        std::size_t written = socket_.write_some(buffers, error);
        if (error == boost::asio::error::would_block || error == boost::asio::error::try_again) {
            error = {};
            written = 0;
        }
        if (error) return Outcome::Failed;
        if (written == total) return Outcome::Written;
        restPending_ = true;
        boost::beast::buffers_suffix<Buffers> rest(buffers);
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

    template <class MutableBufferSequence, class ReadToken>
    auto async_read_some(const MutableBufferSequence& buffers, ReadToken&& token) {
        return socket_.async_read_some(buffers, std::forward<ReadToken>(token));
    }

    template <class ConstBufferSequence, class WriteToken>
    auto async_write_some(const ConstBufferSequence& buffers, WriteToken&& token) {
        return boost::asio::async_initiate<WriteToken, void(boost::beast::error_code, std::size_t)>(
            [this](auto handler, const ConstBufferSequence& buffers) {
                if (!restPending_) return startBeastWrite(buffers, std::move(handler));
                // Beast serializes its own writes, so at most one of them ever waits here.
                heldBuffers_.assign(boost::asio::buffer_sequence_begin(buffers),
                                    boost::asio::buffer_sequence_end(buffers));
                held_.emplace(std::move(handler));
            },
            token, buffers);
    }

private:
    using WriteHandler = boost::asio::any_completion_handler<void(boost::beast::error_code, std::size_t)>;

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
    // Beast's write waiting for the rest of a direct write. In an optional, never assigned:
    // Boost 1.81's any_completion_handler move assignment wraps the handler in itself, forever.
    std::optional<WriteHandler> held_;
    std::vector<boost::asio::const_buffer> heldBuffers_;
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
