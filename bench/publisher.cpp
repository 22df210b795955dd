#include "publisher.h"

#include <cmath>
#include <cstring>
#include <memory>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

namespace bench {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

namespace {

constexpr std::size_t kReadBufferBytes = 64 * 1024;
constexpr std::size_t kMaxResponseBytes = 16 * 1024 * 1024;
constexpr int kMaxConnectAttempts = 3;

struct Response {
    unsigned status = 0;
    bool close = false;
    std::string_view body;  // empty for chunked bodies (not kept)
};

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

bool icontains(std::string_view haystack, std::string_view needle) {
    if (needle.size() > haystack.size()) return false;
    for (std::size_t i = 0; i + needle.size() <= haystack.size(); ++i)
        if (iequals(haystack.substr(i, needle.size()), needle)) return true;
    return false;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

// Scans one HTTP/1.x response at the front of [p, p + n). Returns its length, 0 when it is not
// complete yet, -1 when it cannot be parsed (no Content-Length and not chunked, or garbage).
long parseResponse(const char* p, std::size_t n, Response& r) {
    auto* headerEnd = static_cast<const char*>(memmem(p, n, "\r\n\r\n", 4));
    if (headerEnd == nullptr) return n > 64 * 1024 ? -1 : 0;
    std::size_t headerBytes = static_cast<std::size_t>(headerEnd - p) + 4;
    if (headerBytes < 16 || std::memcmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ') return -1;
    r.status = 0;
    for (int i = 9; i < 12; ++i) {
        if (p[i] < '0' || p[i] > '9') return -1;
        r.status = r.status * 10 + static_cast<unsigned>(p[i] - '0');
    }
    bool http10 = p[7] == '0';
    r.close = http10;
    r.body = {};
    long long contentLength = -1;
    bool chunked = false;
    const char* line = static_cast<const char*>(std::memchr(p, '\n', headerBytes)) + 1;
    while (line < headerEnd) {
        auto* eol = static_cast<const char*>(std::memchr(line, '\n', static_cast<std::size_t>(headerEnd + 2 - line)));
        if (eol == nullptr) break;
        std::string_view text(line, static_cast<std::size_t>(eol - line));
        auto colon = text.find(':');
        if (colon != std::string_view::npos) {
            std::string_view name = text.substr(0, colon);
            std::string_view value = trim(text.substr(colon + 1));
            if (iequals(name, "content-length")) {
                contentLength = 0;
                for (char c : value) {
                    if (c < '0' || c > '9') return -1;
                    contentLength = contentLength * 10 + (c - '0');
                }
            } else if (iequals(name, "transfer-encoding")) {
                chunked = icontains(value, "chunked");
            } else if (iequals(name, "connection")) {
                if (icontains(value, "close"))
                    r.close = true;
                else if (icontains(value, "keep-alive"))
                    r.close = false;
            }
        }
        line = eol + 1;
    }
    if (r.status / 100 == 1 || r.status == 204 || r.status == 304) return static_cast<long>(headerBytes);
    if (chunked) {
        std::size_t pos = headerBytes;
        for (;;) {
            auto* eol = static_cast<const char*>(memmem(p + pos, n - pos, "\r\n", 2));
            if (eol == nullptr) return 0;
            std::size_t size = 0;
            for (const char* c = p + pos; c < eol && std::isxdigit(static_cast<unsigned char>(*c)); ++c)
                size = size * 16 + static_cast<std::size_t>(std::isdigit(static_cast<unsigned char>(*c))
                                                                ? *c - '0'
                                                                : (std::tolower(*c) - 'a' + 10));
            pos = static_cast<std::size_t>(eol - p) + 2;
            if (size == 0) {
                // Trailers, then an empty line.
                for (;;) {
                    auto* end = static_cast<const char*>(memmem(p + pos, n - pos, "\r\n", 2));
                    if (end == nullptr) return 0;
                    if (end == p + pos) return static_cast<long>(pos + 2);
                    pos = static_cast<std::size_t>(end - p) + 2;
                }
            }
            if (n < pos + size + 2) return 0;
            pos += size + 2;
        }
    }
    if (contentLength < 0) return -1;
    if (n < headerBytes + static_cast<std::size_t>(contentLength)) return 0;
    r.body = std::string_view(p + headerBytes, static_cast<std::size_t>(contentLength));
    return static_cast<long>(headerBytes + static_cast<std::size_t>(contentLength));
}

class Publisher;

class Connection {
public:
    Connection(Publisher& publisher, unsigned pipeline);
    void connect();
    bool hasRoom() const { return state_ == State::Ready && count_ < ring_.size(); }
    // Publications firstSeq .. firstSeq + count - 1 of `channel`, in one request.
    void enqueue(std::uint64_t channel, std::uint64_t firstSeq, unsigned count, std::int64_t now);
    void flush();
    void close();
    bool dead() const { return state_ == State::Dead; }

private:
    enum class State { Connecting, Ready, Dead };
    struct Pending {
        std::uint64_t channel;
        std::uint64_t seq;
        unsigned count;
        std::int64_t sentNs;
    };
    void appendRequest(const Pending& pending, std::int64_t now);
    void onConnect(const error_code& ec);
    void doRead();
    void onRead(const error_code& ec, std::size_t bytes);
    void onBroken(const error_code& ec, bool serverClosed);

    Publisher& pub_;
    tcp::socket socket_;
    State state_ = State::Connecting;
    std::uint64_t generation_ = 0;  // completions of an earlier socket are ignored
    int failedAttempts_ = 0;
    std::vector<Pending> ring_;
    std::size_t head_ = 0;
    std::size_t count_ = 0;
    std::string out_;      // requests not written yet
    std::string writing_;  // requests being written
    bool writeInFlight_ = false;
    bool closeAfter_ = false;  // the server announced Connection: close
    std::vector<char> in_;
    std::size_t inBegin_ = 0;
    std::size_t inEnd_ = 0;
};

class Publisher {
public:
    Publisher(const Options& options, const Target& target, const PublishPlan& plan)
        : options_(options), target_(target), plan_(plan), timer_(ctx_), deadline_(ctx_) {
        endpoint_ = resolve();
        hostHeader_ = options.host + ":" + std::to_string(options.apiPort);
        for (std::uint64_t c = 0; c < plan.channels; ++c) channelNames_.push_back(channelName(options, c));
        seq_.assign(plan.channels, 0);
        result_.okPerChannel.assign(plan.channels, 0);
        payload_.reserve(plan.size + 64);
        body_.reserve(plan.size + 256);
        for (unsigned i = 0; i < plan.connections; ++i)
            connections_.push_back(std::make_unique<Connection>(*this, plan.pipeline));
    }

    PublishResult run() {
        deadline_.expires_after(std::chrono::nanoseconds(std::max<std::int64_t>(0, plan_.deadlineNs - nowNs())));
        deadline_.async_wait([this](const error_code& ec) {
            if (!ec) abort("deadline reached");
        });
        for (auto& c : connections_) c->connect();
        ctx_.run();
        if (result_.endNs == 0) result_.endNs = nowNs();
        if (result_.startNs == 0) result_.startNs = result_.endNs;
        return std::move(result_);
    }

    // Called whenever something may let more requests leave: a connection became ready, a
    // response arrived, the rate timer fired.
    void pump() {
        if (finished_) return;
        if (result_.startNs == 0) {
            if (ready_ < connections_.size()) return;
            result_.startNs = nowNs();
        }
        std::int64_t now = nowNs();
        while (!sendingDone_) {
            if (plan_.messages != 0 && next_ >= plan_.messages) {
                sendingDone_ = true;
                break;
            }
            if (plan_.durationNs != 0 && now >= result_.startNs + plan_.durationNs) {
                sendingDone_ = true;
                break;
            }
            if (inflight_ >= plan_.inflight) break;
            if (plan_.rate > 0) {
                auto due = result_.startNs + static_cast<std::int64_t>(static_cast<double>(next_) * 1e9 / plan_.rate);
                if (due > now) {
                    armTimer(due);
                    break;
                }
                result_.maxLagMs = std::max(result_.maxLagMs, static_cast<double>(now - due) / 1e6);
            }
            // Channel c always goes through connection c % P, so each channel's publications
            // reach the server in sequence order.
            std::uint64_t channel = (next_ / plan_.batch) % plan_.channels;
            Connection& connection = *connections_[channel % connections_.size()];
            if (!connection.hasRoom()) break;  // head of line: its next response calls pump()
            unsigned count = plan_.batch;
            if (plan_.messages != 0)
                count = static_cast<unsigned>(std::min<std::uint64_t>(count, plan_.messages - next_));
            connection.enqueue(channel, seq_[channel] + 1, count, now);
            seq_[channel] += count;
            next_ += count;
            ++inflight_;
        }
        for (auto& c : connections_) c->flush();
        maybeFinish();
    }

    void maybeFinish() {
        if (finished_ || !sendingDone_ || inflight_ != 0) return;
        result_.endNs = nowNs();
        finish();
    }

    void abort(const std::string& reason) {
        if (finished_) return;
        result_.aborted = true;
        result_.abortReason = reason;
        result_.unconfirmed += inflight_;
        result_.endNs = nowNs();
        finish();
    }

    void finish() {
        finished_ = true;
        timer_.cancel();
        deadline_.cancel();
        for (auto& c : connections_) c->close();
        ctx_.stop();
    }

    void onResponse(std::uint64_t channel, unsigned count, std::int64_t sentNs, const Response& r, std::int64_t now) {
        --inflight_;
        result_.latency.record(static_cast<std::uint64_t>(std::max<std::int64_t>(0, now - sentNs)));
        if (r.status / 100 == 2) {
            result_.ok += count;
            result_.okPerChannel[channel] += count;
        } else {
            ++result_.errors;
            ++result_.statusCounts[r.status];
            if (result_.firstError.empty())
                result_.firstError = "HTTP " + std::to_string(r.status) + ": " + std::string(r.body.substr(0, 200));
        }
    }

    void onLost(std::uint64_t count) {  // requests whose fate is unknown
        inflight_ -= count;
        result_.unconfirmed += count;
    }

    void onReady() {
        ++ready_;
        pump();
    }
    void onNotReady() { --ready_; }
    void onDead(const std::string& why) {
        if (result_.firstError.empty()) result_.firstError = why;
        abort("a publisher connection failed: " + why);
    }

    net::io_context& ctx() { return ctx_; }
    const tcp::endpoint& endpoint() const { return endpoint_; }
    const Target& target() const { return target_; }
    const std::string& hostHeader() const { return hostHeader_; }
    const std::string& channel(std::uint64_t c) const { return channelNames_[c]; }
    std::size_t size() const { return plan_.size; }
    unsigned qos() const { return options_.qos; }
    unsigned batch() const { return plan_.batch; }
    std::string& payload() { return payload_; }
    std::string& body() { return body_; }
    PublishResult& result() { return result_; }
    bool finished() const { return finished_; }

private:
    tcp::endpoint resolve() {
        error_code ec;
        auto address = net::ip::make_address(options_.host, ec);
        if (!ec) return tcp::endpoint(address, static_cast<unsigned short>(options_.apiPort));
        tcp::resolver resolver(ctx_);
        auto results = resolver.resolve(options_.host, std::to_string(options_.apiPort), ec);
        if (ec || results.empty())
            return tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(options_.apiPort));
        return *results.begin();
    }

    void armTimer(std::int64_t dueNs) {
        if (timerArmed_) return;
        timerArmed_ = true;
        timer_.expires_after(std::chrono::nanoseconds(std::max<std::int64_t>(0, dueNs - nowNs())));
        timer_.async_wait([this](const error_code& ec) {
            timerArmed_ = false;
            if (!ec) pump();
        });
    }

    const Options& options_;
    const Target& target_;
    PublishPlan plan_;
    net::io_context ctx_{1};
    net::steady_timer timer_;
    net::steady_timer deadline_;
    bool timerArmed_ = false;
    tcp::endpoint endpoint_;
    std::string hostHeader_;
    std::vector<std::string> channelNames_;
    std::vector<std::uint64_t> seq_;
    std::vector<std::unique_ptr<Connection>> connections_;
    std::string payload_;
    std::string body_;
    std::size_t ready_ = 0;
    std::uint64_t next_ = 0;
    std::uint64_t inflight_ = 0;
    bool sendingDone_ = false;
    bool finished_ = false;
    PublishResult result_;
};

Connection::Connection(Publisher& publisher, unsigned pipeline)
    : pub_(publisher), socket_(publisher.ctx()), ring_(std::max(1u, pipeline)), in_(kReadBufferBytes) {
    out_.reserve(4096);
    writing_.reserve(4096);
}

void Connection::connect() {
    state_ = State::Connecting;
    ++generation_;
    error_code ignored;
    socket_.close(ignored);
    socket_ = tcp::socket(pub_.ctx());
    inBegin_ = inEnd_ = 0;
    closeAfter_ = false;
    writeInFlight_ = false;
    out_.clear();
    writing_.clear();
    socket_.async_connect(pub_.endpoint(), [this, gen = generation_](const error_code& ec) {
        if (gen == generation_) onConnect(ec);
    });
}

void Connection::onConnect(const error_code& ec) {
    if (pub_.finished()) return;
    if (ec) {
        if (++failedAttempts_ >= kMaxConnectAttempts) {
            state_ = State::Dead;
            return pub_.onDead("connect: " + ec.message());
        }
        auto timer = std::make_shared<net::steady_timer>(pub_.ctx(), std::chrono::milliseconds(100));
        timer->async_wait([this, timer](const error_code&) {
            if (!pub_.finished()) connect();
        });
        return;
    }
    failedAttempts_ = 0;
    error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    state_ = State::Ready;
    // Requests that were in flight when the server closed the previous connection go again, in order.
    std::int64_t now = nowNs();
    for (std::size_t i = 0; i < count_; ++i) {
        Pending& p = ring_[(head_ + i) % ring_.size()];
        p.sentNs = now;
        appendRequest(p, now);
        ++pub_.result().resent;
    }
    doRead();
    pub_.onReady();  // pump() flushes
    flush();
}

void Connection::appendRequest(const Pending& pending, std::int64_t now) {
    std::string& payload = pub_.payload();
    std::string& body = pub_.body();
    const std::string& name = pub_.channel(pending.channel);
    body.clear();
    bool batch = pub_.batch() > 1;
    if (batch) body += R"({"publications":[)";
    for (unsigned i = 0; i < pending.count; ++i) {
        payload.clear();
        appendPayload(payload, now, pending.seq + i, pub_.size());
        if (i > 0) body += ',';
        pub_.target().appendPublishBody(body, name, payload, pub_.qos());  // wspush: an element of the batch
    }
    if (batch) body += "]}";
    out_ += "POST ";
    if (batch)
        out_ += "/api/batch";
    else
        pub_.target().appendPublishTarget(out_, name);
    out_ += " HTTP/1.1\r\nHost: ";
    out_ += pub_.hostHeader();
    out_ += "\r\nContent-Type: application/json\r\nContent-Length: ";
    appendUnsigned(out_, body.size());
    out_ += "\r\n\r\n";
    out_ += body;
    ++pub_.result().sent;
}

void Connection::enqueue(std::uint64_t channel, std::uint64_t firstSeq, unsigned count, std::int64_t now) {
    Pending& pending = ring_[(head_ + count_) % ring_.size()];
    pending = Pending{channel, firstSeq, count, now};
    ++count_;
    appendRequest(pending, now);
}

void Connection::flush() {
    if (state_ != State::Ready || writeInFlight_ || out_.empty()) return;
    writing_.swap(out_);
    out_.clear();
    writeInFlight_ = true;
    net::async_write(socket_, net::buffer(writing_), [this, gen = generation_](const error_code& ec, std::size_t) {
        if (gen != generation_) return;
        writeInFlight_ = false;
        writing_.clear();
        if (ec) return onBroken(ec, false);
        flush();
    });
}

void Connection::doRead() {
    if (inEnd_ == in_.size()) {
        if (inBegin_ > 0) {
            std::memmove(in_.data(), in_.data() + inBegin_, inEnd_ - inBegin_);
            inEnd_ -= inBegin_;
            inBegin_ = 0;
        } else {
            in_.resize(in_.size() * 2);
        }
    }
    socket_.async_read_some(net::buffer(in_.data() + inEnd_, in_.size() - inEnd_),
                            [this, gen = generation_](const error_code& ec, std::size_t bytes) {
                                if (gen == generation_) onRead(ec, bytes);
                            });
}

void Connection::onRead(const error_code& ec, std::size_t bytes) {
    if (pub_.finished()) return;
    if (ec) return onBroken(ec, closeAfter_ || ec == net::error::eof);
    inEnd_ += bytes;
    std::int64_t now = nowNs();
    for (;;) {
        Response response;
        long used = parseResponse(in_.data() + inBegin_, inEnd_ - inBegin_, response);
        if (used < 0) {
            state_ = State::Dead;
            return pub_.onDead("unparseable HTTP response: " +
                               std::string(in_.data() + inBegin_, std::min<std::size_t>(inEnd_ - inBegin_, 120)));
        }
        if (used == 0) break;
        inBegin_ += static_cast<std::size_t>(used);
        if (count_ == 0) {
            state_ = State::Dead;
            return pub_.onDead("a response nobody asked for");
        }
        Pending done = ring_[head_];
        head_ = (head_ + 1) % ring_.size();
        --count_;
        pub_.onResponse(done.channel, done.count, done.sentNs, response, now);
        if (response.close) {
            closeAfter_ = true;
            break;  // nothing after this response will be answered
        }
    }
    if (inBegin_ == inEnd_) inBegin_ = inEnd_ = 0;
    if (inEnd_ - inBegin_ > kMaxResponseBytes) {
        state_ = State::Dead;
        return pub_.onDead("response too large");
    }
    if (closeAfter_) return onBroken({}, true);
    doRead();
    pub_.pump();
}

// The connection ended. `serverClosed`: an orderly end (EOF or Connection: close), after which
// unanswered requests were not processed and are sent again; otherwise their fate is unknown.
void Connection::onBroken(const error_code& ec, bool serverClosed) {
    if (state_ != State::Ready) return;
    state_ = State::Connecting;
    pub_.onNotReady();
    ++pub_.result().reconnects;
    if (!serverClosed) {
        if (pub_.result().firstError.empty()) pub_.result().firstError = "publisher connection: " + ec.message();
        pub_.onLost(count_);
        head_ = count_ = 0;
    }
    connect();
}

void Connection::close() {
    ++generation_;
    error_code ignored;
    socket_.close(ignored);
}

}  // namespace

PublishResult runPublisher(const Options& options, const Target& target, const PublishPlan& plan) {
    Publisher publisher(options, target, plan);
    return publisher.run();
}

}  // namespace bench
