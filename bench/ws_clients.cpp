#include "ws_clients.h"

#include <netinet/in.h>

#include <atomic>
#include <charconv>
#include <cstring>
#include <optional>
#include <thread>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "client_loops.h"
#include "ws_stream.h"

namespace bench {

namespace {

// QoS answers are batched into one frame; a frame never exceeds this (the server refuses frames
// above websocket.max_message_size, 64 KiB by default). The inflight window (qos.max_inflight)
// keeps the batches far smaller in practice.
constexpr std::size_t kMaxAnswerFrameBytes = 16 * 1024;

json mapToJson(const std::map<int, std::uint64_t>& m) {
    json j = json::object();
    for (const auto& [k, v] : m) j[std::to_string(k)] = v;
    return j;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Counters

json SubscriberCounters::toJson() const {
    return json{{"connections", connections},
                {"connected", connected},
                {"failed", failed},
                {"dropped", dropped},
                {"messages", messages},
                {"unique", unique},
                {"duplicates", duplicates},
                {"gaps", gaps},
                {"expected", expected},
                {"resent", resent},
                {"answers", answers},
                {"answer_frames", answerFrames},
                {"error_replies", errorReplies},
                {"drop_codes", mapToJson(dropCodes)},
                {"first_error", firstError},
                {"latency", latency.toJson()},
                {"connect_time", connectTime.toJson()}};
}

SubscriberCounters SubscriberCounters::fromJson(const json& j) {
    SubscriberCounters c;
    c.connections = j.value("connections", std::uint64_t{0});
    c.connected = j.value("connected", std::uint64_t{0});
    c.failed = j.value("failed", std::uint64_t{0});
    c.dropped = j.value("dropped", std::uint64_t{0});
    c.messages = j.value("messages", std::uint64_t{0});
    c.unique = j.value("unique", std::uint64_t{0});
    c.duplicates = j.value("duplicates", std::uint64_t{0});
    c.gaps = j.value("gaps", std::uint64_t{0});
    c.expected = j.value("expected", std::uint64_t{0});
    c.resent = j.value("resent", std::uint64_t{0});
    c.answers = j.value("answers", std::uint64_t{0});
    c.answerFrames = j.value("answer_frames", std::uint64_t{0});
    c.errorReplies = j.value("error_replies", std::uint64_t{0});
    const json codes = j.value("drop_codes", json::object());
    for (const auto& [k, v] : codes.items()) c.dropCodes[std::stoi(k)] += v.get<std::uint64_t>();
    c.firstError = j.value("first_error", std::string());
    c.latency = Histogram::fromJson(j.value("latency", json::object()));
    c.connectTime = Histogram::fromJson(j.value("connect_time", json::object()));
    return c;
}

void SubscriberCounters::merge(const SubscriberCounters& o) {
    connections += o.connections;
    connected += o.connected;
    failed += o.failed;
    dropped += o.dropped;
    messages += o.messages;
    unique += o.unique;
    duplicates += o.duplicates;
    gaps += o.gaps;
    expected += o.expected;
    resent += o.resent;
    answers += o.answers;
    answerFrames += o.answerFrames;
    errorReplies += o.errorReplies;
    for (const auto& [k, v] : o.dropCodes) dropCodes[k] += v;
    if (firstError.empty()) firstError = o.firstError;
    latency.merge(o.latency);
    connectTime.merge(o.connectTime);
}

json ChurnCounters::toJson() const {
    json kinds = json::object();
    for (const auto& [k, v] : failureKinds) kinds[k] = v;
    return json{{"cycles", cycles},
                {"failures", failures},
                {"failure_kinds", kinds},
                {"first_error", firstError},
                {"cycle_time", cycleTime.toJson()}};
}

ChurnCounters ChurnCounters::fromJson(const json& j) {
    ChurnCounters c;
    c.cycles = j.value("cycles", std::uint64_t{0});
    c.failures = j.value("failures", std::uint64_t{0});
    const json kinds = j.value("failure_kinds", json::object());
    for (const auto& [k, v] : kinds.items()) c.failureKinds[k] += v.get<std::uint64_t>();
    c.firstError = j.value("first_error", std::string());
    c.cycleTime = Histogram::fromJson(j.value("cycle_time", json::object()));
    return c;
}

void ChurnCounters::merge(const ChurnCounters& o) {
    cycles += o.cycles;
    failures += o.failures;
    for (const auto& [k, v] : o.failureKinds) failureKinds[k] += v;
    if (firstError.empty()) firstError = o.firstError;
    cycleTime.merge(o.cycleTime);
}

// ---------------------------------------------------------------------------------------------
// Subscriber pool

namespace {

struct PoolShared : ClientsShared {
    using ClientsShared::ClientsShared;
    std::atomic<std::uint64_t> connected{0};
    std::atomic<std::uint64_t> failed{0};
    // Connections still waiting for expected messages, plus one token per loop that has not
    // applied expect() yet (so the count cannot reach zero early).
    std::atomic<std::int64_t> remaining{0};
    std::atomic<std::int64_t> completeNs{0};
    std::atomic<bool> complete{false};
};

struct PoolLoop;

class Subscriber {
public:
    Subscriber(PoolLoop& loop, std::uint32_t channel, std::uint16_t server);
    void start();
    void fail(const char* step, const error_code& ec, int closeCode = -1, const std::string& detail = {});
    void setExpected(std::uint64_t expected, std::int64_t now, std::int64_t& pending);

    enum class State : std::uint8_t { Idle, Connecting, Handshaking, Subscribing, Subscribed, Closed };
    State state() const { return state_; }
    std::int64_t startedNs() const { return startedNs_; }
    bool wasSubscribed() const { return wasSubscribed_; }
    std::uint32_t channel() const { return channel_; }

    // For the loop (client_loops.h): the connect phase ends once subscribed, or closed.
    bool settled() const { return state_ == State::Subscribed || state_ == State::Closed; }
    void failConnectTimedOut() { fail("timeout", net::error::timed_out); }
    void failConnectAborted() { fail("timeout", net::error::timed_out, -1, "connect phase time limit reached"); }

private:
    void onConnect(const error_code& ec);
    void onHandshake(const error_code& ec);
    void doRead();
    void onRead(const error_code& ec, std::size_t bytes);
    void onMessage(std::int64_t sentNs, std::uint64_t seq, bool dup, std::int64_t& now);
    void scanQos(const char* begin, const char* end, std::int64_t& now);
    void scanQosLine(const char* line, const char* end, std::int64_t& now);
    void appendAnswer(std::string_view prefix, std::uint64_t did);
    void flushAnswers();
    void becomeSubscribed();
    void markDone(std::int64_t now);

    PoolLoop& loop_;
    websocket::stream<Socket> ws_;
    beast::flat_buffer buffer_;
    std::string pendingFrame_;  // the subscribe command while it is being written
    // QoS answers: those waiting for the write in flight, and those being written. Both keep their
    // capacity (swapped, cleared, never shrunk), so answering allocates nothing once warm.
    std::string answers_;
    std::string answersWriting_;
    std::int64_t startedNs_ = 0;
    std::uint64_t lastSeq_ = 0;
    std::uint64_t unique_ = 0;
    std::uint64_t expected_ = ~std::uint64_t{0};
    std::uint32_t channel_;
    std::uint16_t server_;  // index into shared.endpoints (--servers)
    State state_ = State::Idle;
    bool wasSubscribed_ = false;
    bool done_ = false;
    bool writing_ = false;  // one write at a time: the subscribe command, then answer batches
};

// One event loop and the connections that live on it (client_loops.h), with what they count.
struct PoolLoop : ClientLoop<Subscriber, PoolShared> {
    using ClientLoop::ClientLoop;
    bool expectKnown = false;
    SubscriberCounters counters;  // messages/unique/duplicates/gaps/dropped/..., histograms
};

Subscriber::Subscriber(PoolLoop& loop, std::uint32_t channel, std::uint16_t server)
    : loop_(loop), ws_(loop.ctx.get_executor()), channel_(channel), server_(server) {}

void Subscriber::start() {
    state_ = State::Connecting;
    startedNs_ = nowNs();
    if (!loop_.shared.localAddresses.empty()) {
        // Bound to its source address before the connect; the port is still chosen at connect
        // (IP_BIND_ADDRESS_NO_PORT), so an address's ports are not spent on bind alone.
        using BindAddressNoPort = net::detail::socket_option::boolean<IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT>;
        auto& socket = ws_.next_layer();
        error_code ec;
        socket.open(tcp::v4(), ec);
        if (!ec) socket.set_option(BindAddressNoPort(true), ec);
        if (!ec) socket.bind(tcp::endpoint(loop_.shared.nextLocalAddress(), 0), ec);
        if (ec) return fail("bind", ec);
    }
    ws_.next_layer().async_connect(loop_.shared.endpoints[server_], [this](const error_code& ec) { onConnect(ec); });
}

void Subscriber::onConnect(const error_code& ec) {
    if (state_ != State::Connecting) return;
    if (ec) return fail("connect", ec);
    state_ = State::Handshaking;
    handshakeAsSubscriber(
        ws_, loop_.shared, channel_, [this](const error_code& e) { onHandshake(e); }, server_);
}

void Subscriber::onHandshake(const error_code& ec) {
    if (state_ != State::Handshaking) return;
    if (ec) return fail("handshake", ec);
    const Target& target = loop_.shared.target;
    pendingFrame_ = target.subscribeFrame(channelName(loop_.shared.options, channel_), loop_.shared.options.token);
    if (!pendingFrame_.empty()) {
        ws_.text(true);
        writing_ = true;
        ws_.async_write(net::buffer(pendingFrame_), [this](const error_code& e, std::size_t) {
            writing_ = false;
            std::string().swap(pendingFrame_);
            if (state_ == State::Closed) return;
            if (e) return fail("subscribe", e);
            flushAnswers();
        });
    }
    if (target.waitsForSubscribed)
        state_ = State::Subscribing;
    else
        becomeSubscribed();
    doRead();
}

void Subscriber::doRead() {
    ws_.async_read(buffer_, [this](const error_code& ec, std::size_t bytes) { onRead(ec, bytes); });
}

void Subscriber::onRead(const error_code& ec, std::size_t) {
    if (state_ == State::Closed) return;
    if (ec) {
        int code = ec == websocket::error::closed ? static_cast<int>(ws_.reason().code) : 0;
        return fail("read", ec, code);
    }
    auto data = buffer_.cdata();
    const char* begin = static_cast<const char*>(data.data());
    const char* end = begin + data.size();
    if (state_ == State::Subscribing) {
        if (contains(begin, data.size(), R"("type":"subscribed")")) {
            becomeSubscribed();
        } else if (contains(begin, data.size(), R"("type":"error")") ||
                   contains(begin, data.size(), R"("type":"disconnect")")) {
            return fail("subscribe", {}, -1, sample(begin, data.size()));
        }
    }
    // The hot path: find each stamp in the frame (several messages may share a frame).
    std::int64_t now = 0;
    if (loop_.shared.options.qos == 0) {
        std::int64_t sentNs = 0;
        std::uint64_t seq = 0;
        const char* p = begin;
        while ((p = findStamp(p, end, sentNs, seq)) != nullptr) onMessage(sentNs, seq, false, now);
    } else {
        scanQos(begin, end, now);
    }
    buffer_.consume(buffer_.size());
    doRead();
}

void Subscriber::onMessage(std::int64_t sentNs, std::uint64_t seq, bool dup, std::int64_t& now) {
    if (now == 0) now = nowNs();
    SubscriberCounters& c = loop_.counters;
    ++c.messages;
    if (dup) ++c.resent;
    if (seq > lastSeq_) {
        c.gaps += seq - lastSeq_ - 1;
        lastSeq_ = seq;
        ++unique_;
        ++c.unique;
        c.latency.record(now > sentNs ? static_cast<std::uint64_t>(now - sentNs) : 0);
        if (unique_ >= expected_ && !done_) markDone(now);
    } else if (!dup) {
        ++c.duplicates;  // a resend of a message already seen is what QoS >= 1 promises, not a duplicate
    }
}

// QoS >= 1 (wspush, docs/protocol.md "QoS"): every piece of the frame is looked at on its own,
// and the answers for the whole frame leave in one frame, joined by '\n'.
void Subscriber::scanQos(const char* begin, const char* end, std::int64_t& now) {
    forEachLine(begin, end, [&](const char* line, const char* lineEnd) {
        scanQosLine(line, lineEnd, now);
        return true;
    });
    flushAnswers();
}

// One server message, by bytes (no JSON parser):
//   message  {"type":"message",…,"data":{…"s":S,"t":T},"qos":1,"did":17[,"dup":true]}
//   rel      {"type":"rel","did":17}   (found by bytes, whatever the key order)
void Subscriber::scanQosLine(const char* line, const char* end, std::int64_t& now) {
    constexpr std::string_view kDid = R"("did":)";
    constexpr std::string_view kQos = R"("qos":)";
    constexpr std::string_view kDup = R"(,"dup":true)";
    std::int64_t sentNs = 0;
    std::uint64_t seq = 0;
    const char* stampEnd = findStamp(line, end, sentNs, seq);
    // The envelope's fields follow `data`, so after a stamp only the rest of the line is searched.
    const char* from = stampEnd != nullptr ? stampEnd : line;
    auto* didKey =
        static_cast<const char*>(memmem(from, static_cast<std::size_t>(end - from), kDid.data(), kDid.size()));
    std::uint64_t did = 0;
    const char* didEnd = nullptr;
    if (didKey != nullptr) {
        auto [ptr, ec] = std::from_chars(didKey + kDid.size(), end, did);
        if (ec == std::errc() && did != 0) didEnd = ptr;
    }
    if (stampEnd != nullptr) {
        bool dup = didEnd != nullptr && static_cast<std::size_t>(end - didEnd) >= kDup.size() &&
                   std::memcmp(didEnd, kDup.data(), kDup.size()) == 0;
        onMessage(sentNs, seq, dup, now);
    }
    if (didEnd == nullptr) {
        if (stampEnd == nullptr && state_ == State::Subscribed &&
            contains(line, static_cast<std::size_t>(end - line), R"("type":"error")")) {
            SubscriberCounters& c = loop_.counters;
            ++c.errorReplies;
            if (c.firstError.empty())
                c.firstError = "error reply: " + sample(line, static_cast<std::size_t>(end - line));
        }
        return;
    }
    if (stampEnd == nullptr && contains(line, static_cast<std::size_t>(end - line), R"("type":"rel")")) {
        appendAnswer(R"({"type":"comp","did":)", did);
        return;
    }
    // A message: its QoS comes just before its did (`,"qos":2,"did":17`); our own --qos if absent.
    unsigned qos = loop_.shared.options.qos;
    auto* qosKey =
        static_cast<const char*>(memmem(from, static_cast<std::size_t>(didKey - from), kQos.data(), kQos.size()));
    if (qosKey != nullptr && qosKey + kQos.size() < didKey && qosKey[kQos.size()] >= '0' && qosKey[kQos.size()] <= '2')
        qos = static_cast<unsigned>(qosKey[kQos.size()] - '0');
    if (qos == 1)
        appendAnswer(R"({"type":"ack","did":)", did);
    else if (qos == 2)
        appendAnswer(R"({"type":"rec","did":)", did);
}

void Subscriber::appendAnswer(std::string_view prefix, std::uint64_t did) {
    if (!answers_.empty()) answers_ += '\n';
    answers_ += prefix;
    char digits[24];
    answers_.append(digits, std::to_chars(digits, digits + sizeof digits, did).ptr);
    answers_ += '}';
    ++loop_.counters.answers;
}

// Writes the waiting answers as one frame, unless a write is in flight (its completion calls this).
void Subscriber::flushAnswers() {
    if (writing_ || answers_.empty() || state_ == State::Closed) return;
    if (answers_.size() <= kMaxAnswerFrameBytes) {
        answersWriting_.swap(answers_);
        answers_.clear();
    } else {
        // Rare: cut at the last separator that keeps the frame under the limit.
        std::size_t cut = answers_.rfind('\n', kMaxAnswerFrameBytes);
        if (cut == std::string::npos || cut == 0) cut = answers_.find('\n');
        if (cut == std::string::npos) cut = answers_.size();
        answersWriting_.assign(answers_, 0, cut);
        answers_.erase(0, std::min(answers_.size(), cut + 1));
    }
    writing_ = true;
    ++loop_.counters.answerFrames;
    ws_.async_write(net::buffer(answersWriting_), [this](const error_code& ec, std::size_t) {
        writing_ = false;
        answersWriting_.clear();
        if (state_ == State::Closed) return;
        // A write that fails because the connection ends is reported by the read (with its close code).
        if (ec) {
            if (ec != net::error::operation_aborted && ec != websocket::error::closed) fail("write", ec);
            return;
        }
        flushAnswers();
    });
}

void Subscriber::becomeSubscribed() {
    state_ = State::Subscribed;
    wasSubscribed_ = true;
    ++loop_.counters.connected;
    loop_.counters.connectTime.record(static_cast<std::uint64_t>(nowNs() - startedNs_));
    loop_.shared.connected.fetch_add(1, std::memory_order_relaxed);
    loop_.connectDone();
}

void Subscriber::fail(const char* step, const error_code& ec, int closeCode, const std::string& detail) {
    if (state_ == State::Closed) return;
    State was = state_;
    state_ = State::Closed;
    error_code ignored;
    ws_.next_layer().close(ignored);
    SubscriberCounters& c = loop_.counters;
    if (c.firstError.empty()) {
        c.firstError = std::string(step) + ": " + (detail.empty() ? ec.message() : detail);
        if (closeCode > 0) c.firstError += " (close code " + std::to_string(closeCode) + ")";
    }
    if (was == State::Subscribed) {
        ++c.dropped;
        ++c.dropCodes[closeCode < 0 ? 0 : closeCode];
        if (!done_) markDone(nowNs());
        return;
    }
    ++c.failed;
    loop_.shared.failed.fetch_add(1, std::memory_order_relaxed);
    if (was == State::Idle) return loop_.countSettled();  // never started (aborted)
    loop_.connectDone();
}

void Subscriber::markDone(std::int64_t now) {
    done_ = true;
    if (!loop_.expectKnown) return;
    if (loop_.shared.remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        loop_.shared.completeNs.store(now, std::memory_order_relaxed);
        loop_.shared.complete.store(true, std::memory_order_release);
    }
}

void Subscriber::setExpected(std::uint64_t expected, std::int64_t, std::int64_t& pending) {
    if (!wasSubscribed_) return;
    loop_.counters.expected += expected;
    expected_ = expected;
    if (state_ != State::Subscribed) return;  // dropped earlier: already done, its messages are lost
    if (unique_ >= expected_) done_ = true;
    if (!done_) ++pending;
}

}  // namespace

struct SubscriberPool::Impl {
    PoolShared shared;
    ClientLoops<PoolLoop> loops;

    Impl(const Options& o, const Target& t, std::uint64_t first, std::uint64_t n)
        : shared(o, t), loops(shared, first, n, [&o](PoolLoop& loop, std::uint64_t global) {
              ++loop.counters.connections;
              return std::make_unique<Subscriber>(loop, static_cast<std::uint32_t>(global % o.channels),
                                                  static_cast<std::uint16_t>(serverIndexOf(o, global)));
          }) {}
};

SubscriberPool::SubscriberPool(const Options& options, const Target& target, std::uint64_t first, std::uint64_t count)
    : impl_(std::make_unique<Impl>(options, target, first, count)) {}

SubscriberPool::~SubscriberPool() = default;

void SubscriberPool::start() {
    impl_->loops.start();
}

bool SubscriberPool::settled() const {
    return impl_->loops.settled();
}
std::uint64_t SubscriberPool::connectedNow() const {
    return impl_->shared.connected.load(std::memory_order_relaxed);
}
std::uint64_t SubscriberPool::failedNow() const {
    return impl_->shared.failed.load(std::memory_order_relaxed);
}

void SubscriberPool::abortConnecting() {
    impl_->loops.abortConnecting();
}

void SubscriberPool::expect(const std::vector<std::uint64_t>& perChannel) {
    auto shared = std::make_shared<const std::vector<std::uint64_t>>(perChannel);
    impl_->shared.remaining.store(static_cast<std::int64_t>(impl_->loops.size()), std::memory_order_release);
    impl_->loops.onEachLoop([shared](PoolLoop& l) {
        std::int64_t now = nowNs();
        std::int64_t pending = 0;
        l.expectKnown = true;
        for (auto& s : l.clients) {
            std::uint64_t expected = s->channel() < shared->size() ? (*shared)[s->channel()] : 0;
            s->setExpected(expected, now, pending);
        }
        // Add this loop's connections and give back its token.
        if (l.shared.remaining.fetch_add(pending - 1, std::memory_order_acq_rel) + pending - 1 == 0) {
            l.shared.completeNs.store(now, std::memory_order_relaxed);
            l.shared.complete.store(true, std::memory_order_release);
        }
    });
}

bool SubscriberPool::complete() const {
    return impl_->shared.complete.load(std::memory_order_acquire);
}
std::int64_t SubscriberPool::completeNs() const {
    return impl_->shared.completeNs.load(std::memory_order_relaxed);
}

SubscriberCounters SubscriberPool::stop() {
    impl_->loops.stop();
    SubscriberCounters total;
    for (auto& loop : impl_->loops) total.merge(loop->counters);
    return total;
}

// ---------------------------------------------------------------------------------------------
// Churn

namespace {

struct ChurnLoop;

class ChurnSlot {
public:
    ChurnSlot(ChurnLoop& loop, std::uint64_t id) : loop_(loop), id_(id), timer_(loopContext()) {}
    void cycle();

private:
    net::io_context& loopContext();
    void onConnect(const error_code& ec);
    void onHandshake(const error_code& ec);
    void doRead();
    void onRead(const error_code& ec);
    void maybeClose();
    void onClose(const error_code& ec);
    void fail(const char* step, const error_code& ec, const std::string& detail = {});
    // Every asynchronous operation on the stream goes through guard(): it counts the operations
    // in flight, drops completions of an earlier cycle, and once a failed cycle has no operation
    // left, schedules the next one (the stream may only be replaced when nothing uses it).
    template <class F>
    auto guard(F f) {
        ++ops_;
        return [this, gen = gen_, f](auto&&... args) {
            --ops_;
            if (gen != gen_) return;
            if (!failed_) f(std::forward<decltype(args)>(args)...);
            if (failed_ && ops_ == 0) afterFailure();
        };
    }
    void afterFailure();
    std::string channel() const;

    ChurnLoop& loop_;
    std::uint64_t id_;
    std::uint64_t cycleNo_ = 0;
    std::uint64_t gen_ = 0;
    int ops_ = 0;
    bool failed_ = false;
    bool subscribed_ = false;
    bool written_ = false;
    bool closing_ = false;
    bool retryScheduled_ = false;
    std::int64_t cycleStart_ = 0;
    std::optional<websocket::stream<Socket>> ws_;
    beast::flat_buffer buffer_;
    std::string frame_;
    net::steady_timer timer_;
};

struct ChurnLoop {
    ChurnLoop(const Options& o, const Target& t) : options(o), target(t) {}
    const Options& options;
    const Target& target;
    tcp::endpoint endpoint;
    std::string hostHeader;
    unsigned workerIndex = 0;
    std::int64_t endNs = 0;
    net::io_context ctx{1};
    net::steady_timer deadline{ctx};
    std::vector<std::unique_ptr<ChurnSlot>> slots;
    std::size_t finished = 0;
    ChurnCounters counters;
    std::thread thread;
};

net::io_context& ChurnSlot::loopContext() {
    return loop_.ctx;
}

std::string ChurnSlot::channel() const {
    const Options& o = loop_.options;
    if (o.uniqueChannels)
        return o.channelPrefix + "-u" + o.runTag + "-" + std::to_string(loop_.workerIndex) + "-" + std::to_string(id_) +
               "-" + std::to_string(cycleNo_);
    return channelName(o, (id_ + cycleNo_) % o.channels);
}

void ChurnSlot::cycle() {
    if (nowNs() >= loop_.endNs) {
        // This slot is finished. When all are, the deadline timer is the loop's last work.
        if (++loop_.finished == loop_.slots.size()) loop_.deadline.cancel();
        return;
    }
    ++gen_;
    ++cycleNo_;
    failed_ = subscribed_ = written_ = closing_ = retryScheduled_ = false;
    ops_ = 0;
    buffer_.clear();
    ws_.emplace(loop_.ctx.get_executor());
    configure(*ws_, loop_.options);
    cycleStart_ = nowNs();
    timer_.expires_after(std::chrono::nanoseconds(secondsToNs(loop_.options.connectTimeout)));
    timer_.async_wait([this, gen = gen_](const error_code& ec) {
        if (!ec && gen == gen_ && !failed_) fail("timeout", net::error::timed_out);
    });
    ws_->next_layer().async_connect(loop_.endpoint, guard([this](const error_code& ec) { onConnect(ec); }));
}

void ChurnSlot::onConnect(const error_code& ec) {
    if (ec) return fail("connect", ec);
    error_code ignored;
    ws_->next_layer().set_option(tcp::no_delay(true), ignored);
    ws_->async_handshake(loop_.hostHeader, loop_.target.subscribeTarget(channel()),
                         guard([this](const error_code& e) { onHandshake(e); }));
}

void ChurnSlot::onHandshake(const error_code& ec) {
    if (ec) return fail("handshake", ec);
    frame_ = loop_.target.subscribeFrame(channel(), loop_.options.token);
    if (frame_.empty() || !loop_.target.waitsForSubscribed) {
        // Subscribed by the URL: close right away.
        subscribed_ = written_ = frame_.empty();
        if (!frame_.empty()) {
            ws_->async_write(net::buffer(frame_), guard([this](const error_code& e, std::size_t) {
                                 if (e) return fail("subscribe", e);
                                 written_ = subscribed_ = true;
                                 maybeClose();
                             }));
            return;
        }
        return maybeClose();
    }
    ws_->async_write(net::buffer(frame_), guard([this](const error_code& e, std::size_t) {
                         if (e) return fail("subscribe", e);
                         written_ = true;
                         maybeClose();
                     }));
    doRead();
}

void ChurnSlot::doRead() {
    ws_->async_read(buffer_, guard([this](const error_code& ec, std::size_t) { onRead(ec); }));
}

void ChurnSlot::onRead(const error_code& ec) {
    if (ec) return fail("subscribe", ec);
    auto data = buffer_.cdata();
    const char* p = static_cast<const char*>(data.data());
    if (contains(p, data.size(), R"("type":"subscribed")")) {
        subscribed_ = true;
        buffer_.consume(buffer_.size());
        return maybeClose();  // no read pending from here: async_close reads the close reply itself
    }
    if (contains(p, data.size(), R"("type":"error")") || contains(p, data.size(), R"("type":"disconnect")"))
        return fail("subscribe", {}, sample(p, data.size()));
    buffer_.consume(buffer_.size());
    doRead();
}

void ChurnSlot::maybeClose() {
    if (!subscribed_ || !written_ || closing_) return;
    closing_ = true;
    ws_->async_close(websocket::close_code::normal, guard([this](const error_code& ec) { onClose(ec); }));
}

void ChurnSlot::onClose(const error_code& ec) {
    // The server answers the close and shuts the TCP connection; an EOF here is still a clean end.
    if (ec && ec != net::error::eof && ec != websocket::error::closed) return fail("close", ec);
    timer_.cancel();
    loop_.counters.cycleTime.record(static_cast<std::uint64_t>(nowNs() - cycleStart_));
    ++loop_.counters.cycles;
    net::post(loop_.ctx, [this] { cycle(); });
}

void ChurnSlot::fail(const char* step, const error_code& ec, const std::string& detail) {
    if (failed_) return;
    failed_ = true;
    ++loop_.counters.failures;
    ++loop_.counters.failureKinds[step];
    if (loop_.counters.firstError.empty())
        loop_.counters.firstError = std::string(step) + ": " + (detail.empty() ? ec.message() : detail);
    timer_.cancel();
    error_code ignored;
    ws_->next_layer().close(ignored);  // completes whatever is pending; the last one calls afterFailure
    if (ops_ == 0) afterFailure();
}

void ChurnSlot::afterFailure() {
    if (retryScheduled_) return;
    retryScheduled_ = true;
    std::uint64_t gen = ++gen_;  // late completions of this cycle are ignored from here
    // A short pause so that a refusing server is not hammered in a tight loop.
    timer_.expires_after(std::chrono::milliseconds(50));
    timer_.async_wait([this, gen](const error_code& ec) {
        if (ec || gen != gen_) return;
        cycle();
    });
}

}  // namespace

ChurnCounters runChurn(const Options& options, const Target& target, unsigned concurrency, unsigned workerIndex,
                       std::int64_t endNs, std::int64_t deadlineNs) {
    tcp::endpoint endpoint = resolveEndpoint(options.host, options.port);
    std::string hostHeader = options.host + ":" + std::to_string(options.port);
    unsigned threads = std::max(1u, std::min(options.threads, concurrency));
    std::vector<std::unique_ptr<ChurnLoop>> loops;
    for (unsigned i = 0; i < threads; ++i) {
        auto loop = std::make_unique<ChurnLoop>(options, target);
        loop->endpoint = endpoint;
        loop->hostHeader = hostHeader;
        loop->workerIndex = workerIndex;
        loop->endNs = endNs;
        loops.push_back(std::move(loop));
    }
    for (unsigned i = 0; i < concurrency; ++i) {
        ChurnLoop& loop = *loops[i % threads];
        loop.slots.push_back(std::make_unique<ChurnSlot>(loop, i));
    }
    for (auto& loop : loops) {
        ChurnLoop* l = loop.get();
        for (auto& slot : l->slots) net::post(l->ctx, [s = slot.get()] { s->cycle(); });
        // The hard stop: whatever is still in progress at the deadline is abandoned. Cancelled
        // when the last slot finishes, so that the loop then runs out of work and returns.
        l->deadline.expires_after(std::chrono::nanoseconds(std::max<std::int64_t>(0, deadlineNs - nowNs())));
        l->deadline.async_wait([l](const error_code& ec) {
            if (!ec) l->ctx.stop();
        });
        l->thread = std::thread([l] { l->ctx.run(); });
    }
    for (auto& loop : loops) loop->thread.join();
    ChurnCounters total;
    for (auto& loop : loops) total.merge(loop->counters);
    // Slots abandoned at the deadline still hold sockets with handlers in their io_context:
    // destroy the slots first.
    for (auto& loop : loops) loop->slots.clear();
    return total;
}

}  // namespace bench
