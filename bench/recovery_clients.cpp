#include "recovery_clients.h"

#include <atomic>
#include <charconv>
#include <optional>

#include "client_loops.h"
#include "ws_stream.h"

namespace bench {

namespace {

// `settled` (ClientsShared): parked, or failed before that.
struct Shared : ClientsShared {
    using ClientsShared::ClientsShared;
    std::atomic<std::uint64_t> parked{0};    // ever parked
    std::atomic<std::uint64_t> finished{0};  // after resubscribe(): recovered, or failed
};

struct Loop;

// One server message of a frame, found by bytes (no JSON parser): its "type" and where it is.
struct ServerLine {
    std::string_view type;
    const char* begin;
    const char* end;  // exclusive
};

// The value of the string field `key` (given with its colon and opening quote, `"epoch":"`)
// between `from` and `end`; empty when absent.
std::string_view stringField(const char* from, const char* end, std::string_view key) {
    auto* hit = static_cast<const char*>(memmem(from, static_cast<std::size_t>(end - from), key.data(), key.size()));
    if (hit == nullptr) return {};
    const char* value = hit + key.size();
    auto* quote = static_cast<const char*>(std::memchr(value, '"', static_cast<std::size_t>(end - value)));
    if (quote == nullptr) return {};
    return {value, static_cast<std::size_t>(quote - value)};
}

// The unsigned integer field `key` (with its colon, `"offset":`); nullopt when absent.
std::optional<std::uint64_t> numberField(const char* from, const char* end, std::string_view key) {
    auto* hit = static_cast<const char*>(memmem(from, static_cast<std::size_t>(end - from), key.data(), key.size()));
    if (hit == nullptr) return std::nullopt;
    std::uint64_t value = 0;
    auto [ptr, ec] = std::from_chars(hit + key.size(), end, value);
    if (ec != std::errc()) return std::nullopt;
    return value;
}

constexpr std::string_view kOffsetKey = R"("offset":)";
constexpr std::string_view kEpochKey = R"("epoch":")";

class Client {
public:
    // Phase 1 (start() .. Parked), then phase 2 (resubscribe() .. Done). Failed ends either.
    enum class State : std::uint8_t {
        Idle,
        Connecting,
        Handshaking,
        Subscribing,    // connect + subscribe sent, waiting for `subscribed`
        Unsubscribing,  // position noted, unsubscribe sent
        Parked,         // unsubscribed: the publications it will miss are made now
        Resubscribing,  // subscribe with since sent, waiting for `subscribed`
        Recovering,     // "recovered":true, reading since+1 .. T
        Done,           // got T (a later message still fails it: beyond_last)
        Failed
    };

    Client(Loop& loop, std::uint64_t index, std::uint32_t channel);
    void start();
    void resubscribe(std::uint64_t published);
    void fail(const char* kind, const std::string& detail);

    State state() const { return state_; }
    std::uint64_t index() const { return index_; }
    std::uint32_t channel() const { return channel_; }
    std::int64_t startedNs() const { return startedNs_; }
    bool inPhaseOne() const { return state_ >= State::Connecting && state_ <= State::Unsubscribing; }
    // For the loop (client_loops.h): phase 1 is its connect phase, and it ends once parked.
    bool settled() const { return !inPhaseOne() && state_ != State::Idle; }
    void failConnectTimedOut() { fail("timeout", "not parked within --connect-timeout (" + progress() + ")"); }
    void failConnectAborted() { fail("timeout", "connect phase time limit reached (" + progress() + ")"); }
    bool wasParked() const { return wasParked_; }
    const char* failKind() const { return failKind_; }
    std::uint64_t messages() const { return messages_; }
    std::uint64_t missed() const { return last_ - since_; }
    std::int64_t resubscribeSentNs() const { return resubscribeSentNs_; }
    std::int64_t subscribedNs() const { return subscribedNs_; }
    std::int64_t doneNs() const { return doneNs_; }
    // Where a client that never finished was left, for the timeout message.
    std::string progress() const;

private:
    void onConnect(const error_code& ec);
    void onHandshake(const error_code& ec);
    void doRead();
    void onRead(const error_code& ec);
    void onLine(const ServerLine& line, std::int64_t now);
    void onSubscribedAgain(const ServerLine& line, std::int64_t now);
    void onRecoveredMessage(const ServerLine& line, std::int64_t now);
    void park();
    void finish(std::int64_t now);
    void send(std::string frame, bool timed);
    void writeNow(std::string frame, bool timed);
    const char* step() const;  // the failure kind of a broken connection in the current state
    void countFinished();
    std::string label() const { return "client " + std::to_string(index_) + ": "; }

    Loop& loop_;
    websocket::stream<Socket> ws_;
    beast::flat_buffer buffer_;
    std::string writing_;  // the frame being written
    std::string queued_;   // the next one, when a write is in flight
    bool queuedTimed_ = false;
    bool isWriting_ = false;
    std::string resubscribeFrame_;  // built when parking, so that building it is not timed
    std::string epoch_;
    std::uint64_t index_;
    std::uint64_t since_ = 0;  // the position noted from the first `subscribed`
    std::uint64_t last_ = 0;   // T, from the second `subscribed`
    std::uint64_t next_ = 0;   // the offset expected next
    std::uint64_t messages_ = 0;
    std::int64_t startedNs_ = 0;
    std::int64_t resubscribeSentNs_ = 0;
    std::int64_t subscribedNs_ = 0;
    std::int64_t doneNs_ = 0;
    const char* failKind_ = nullptr;
    std::uint32_t channel_;
    State state_ = State::Idle;
    bool wasParked_ = false;
    bool finishedCounted_ = false;
};

// One event loop and its clients (client_loops.h); `connecting`: clients in phase 1.
struct Loop : ClientLoop<Client, Shared> {
    using ClientLoop::ClientLoop;
    bool resubscribed = false;  // resubscribe() reached this loop: failures now count as finished
    std::string firstError;
};

Client::Client(Loop& loop, std::uint64_t index, std::uint32_t channel)
    : loop_(loop), ws_(loop.ctx.get_executor()), index_(index), channel_(channel) {}

std::string Client::progress() const {
    switch (state_) {
        case State::Idle: return "not started";
        case State::Connecting: return "connecting";
        case State::Handshaking: return "in the WebSocket handshake";
        case State::Subscribing: return "waiting for subscribed";
        case State::Unsubscribing: return "waiting for unsubscribed";
        case State::Parked: return "parked";
        case State::Resubscribing: return "waiting for subscribed with since";
        case State::Recovering:
            return "had offsets up to " + std::to_string(next_ - 1) + " of " + std::to_string(last_) + " (since " +
                   std::to_string(since_) + ")";
        case State::Done: return "done";
        case State::Failed: return "failed";
    }
    return "?";
}

const char* Client::step() const {
    switch (state_) {
        case State::Idle:
        case State::Connecting: return "connect";
        case State::Handshaking: return "handshake";
        case State::Subscribing: return "subscribe";
        case State::Unsubscribing: return "unsubscribe";
        case State::Parked: return "closed";
        case State::Resubscribing:
        case State::Recovering: return "resubscribe";
        case State::Done:
        case State::Failed: return "closed";
    }
    return "closed";
}

void Client::start() {
    state_ = State::Connecting;
    startedNs_ = nowNs();
    ws_.next_layer().async_connect(loop_.shared.endpoint, [this](const error_code& ec) { onConnect(ec); });
}

void Client::onConnect(const error_code& ec) {
    if (state_ != State::Connecting) return;
    if (ec) return fail("connect", ec.message());
    state_ = State::Handshaking;
    handshakeAsSubscriber(ws_, loop_.shared, channel_, [this](const error_code& e) { onHandshake(e); });
}

void Client::onHandshake(const error_code& ec) {
    if (state_ != State::Handshaking) return;
    if (ec) return fail("handshake", ec.message());
    ws_.text(true);
    state_ = State::Subscribing;
    // {"id":1,"type":"connect"}\n{"id":2,"type":"subscribe","channel":…}
    send(loop_.shared.target.subscribeFrame(channelName(loop_.shared.options, channel_), loop_.shared.options.token),
         false);
    doRead();
}

void Client::send(std::string frame, bool timed) {
    if (isWriting_) {
        // Only when a reply overtakes the completion of the write it answers.
        queued_ = std::move(frame);
        queuedTimed_ = timed;
        return;
    }
    writeNow(std::move(frame), timed);
}

void Client::writeNow(std::string frame, bool timed) {
    writing_ = std::move(frame);
    isWriting_ = true;
    if (timed) resubscribeSentNs_ = nowNs();
    ws_.async_write(net::buffer(writing_), [this](const error_code& ec, std::size_t) {
        isWriting_ = false;
        if (state_ == State::Failed) return;
        if (ec) return fail(step(), "write: " + ec.message());
        if (!queued_.empty()) {
            bool timed = queuedTimed_;
            writeNow(std::exchange(queued_, {}), timed);
        }
    });
}

void Client::doRead() {
    ws_.async_read(buffer_, [this](const error_code& ec, std::size_t) { onRead(ec); });
}

void Client::onRead(const error_code& ec) {
    if (state_ == State::Failed) return;
    if (ec) {
        std::string detail = "read: " + ec.message();
        if (ec == websocket::error::closed) detail += " (close code " + std::to_string(ws_.reason().code) + ")";
        return fail(step(), detail);
    }
    std::int64_t now = nowNs();
    auto data = buffer_.cdata();
    const char* begin = static_cast<const char*>(data.data());
    constexpr std::string_view kTypeKey = R"("type":")";
    forEachLine(begin, begin + data.size(), [&](const char* line, const char* lineEnd) {
        onLine(ServerLine{stringField(line, lineEnd, kTypeKey), line, lineEnd}, now);
        return state_ != State::Failed;  // the rest of a failed client's frame is of no interest
    });
    buffer_.consume(buffer_.size());
    if (state_ != State::Failed) doRead();
}

void Client::onLine(const ServerLine& line, std::int64_t now) {
    auto text = [&] { return sample(line.begin, static_cast<std::size_t>(line.end - line.begin)); };
    if (line.type == "pong") return;
    switch (state_) {
        case State::Subscribing:
            if (line.type == "connected") return;
            if (line.type != "subscribed") return fail("subscribe", "unexpected reply: " + text());
            {
                auto offset = numberField(line.begin, line.end, kOffsetKey);
                std::string_view epoch = stringField(line.begin, line.end, kEpochKey);
                if (!offset || epoch.empty()) return fail("subscribe", "no offset or epoch in " + text());
                since_ = *offset;
                epoch_ = std::string(epoch);
            }
            state_ = State::Unsubscribing;
            {
                std::string frame = R"({"id":3,"type":"unsubscribe","channel":")";
                frame += channelName(loop_.shared.options, channel_);
                frame += R"("})";
                send(std::move(frame), false);
            }
            return;
        case State::Unsubscribing:
            if (line.type != "unsubscribed") return fail("unsubscribe", "unexpected message: " + text());
            return park();
        case State::Parked:
            // Nothing is delivered after `unsubscribed` (docs/protocol.md, unsubscribe).
            return fail(line.type == "message" ? "delivered_while_unsubscribed" : "closed", text());
        case State::Resubscribing:
            if (line.type == "subscribed") return onSubscribedAgain(line, now);
            if (line.type == "message") return fail("order", "a message before the subscribed reply: " + text());
            return fail("resubscribe", "unexpected reply: " + text());
        case State::Recovering:
            if (line.type == "message") return onRecoveredMessage(line, now);
            return fail("resubscribe", "while recovering: " + text());
        case State::Done:
            // Nothing was published after the clients parked: nothing may follow T.
            return fail(line.type == "message" ? "beyond_last" : "closed",
                        "after the last recovered message: " + text());
        default: return;
    }
}

void Client::park() {
    state_ = State::Parked;
    wasParked_ = true;
    loop_.shared.parked.fetch_add(1, std::memory_order_relaxed);
    resubscribeFrame_ = R"({"id":4,"type":"subscribe","channel":")";
    resubscribeFrame_ += channelName(loop_.shared.options, channel_);
    resubscribeFrame_ += R"(","since":{"offset":)";
    appendUnsigned(resubscribeFrame_, since_);
    resubscribeFrame_ += R"(,"epoch":")";
    resubscribeFrame_ += epoch_;  // as the server wrote it: already a valid JSON string body
    resubscribeFrame_ += R"("}})";
    loop_.connectDone();  // phase 1 is over
}

void Client::resubscribe(std::uint64_t published) {
    if (state_ == State::Failed) return countFinished();
    if (state_ != State::Parked) return fail("timeout", "not parked when the publications were made");
    last_ = since_ + published;
    next_ = since_ + 1;
    state_ = State::Resubscribing;
    send(std::move(resubscribeFrame_), true);
}

void Client::onSubscribedAgain(const ServerLine& line, std::int64_t now) {
    auto text = [&] { return sample(line.begin, static_cast<std::size_t>(line.end - line.begin)); };
    subscribedNs_ = now;
    if (!contains(line.begin, static_cast<std::size_t>(line.end - line.begin), R"("recovered":true)"))
        return fail("not_recovered",
                    text() + " (the server recovers only with history_size > 0, at most recovery_max)");
    auto offset = numberField(line.begin, line.end, kOffsetKey);
    std::string_view epoch = stringField(line.begin, line.end, kEpochKey);
    if (!offset) return fail("resubscribe", "no offset in " + text());
    if (epoch != epoch_) return fail("epoch", "noted epoch " + epoch_ + ", recovered in " + std::string(epoch));
    // Every publication of the channel since the clients parked was made by this run.
    if (*offset != last_)
        return fail("position", "since " + std::to_string(since_) + " + " + std::to_string(last_ - since_) +
                                    " published = " + std::to_string(last_) + ", but subscribed says offset " +
                                    std::to_string(*offset));
    state_ = State::Recovering;
    if (next_ > last_) finish(now);
}

void Client::onRecoveredMessage(const ServerLine& line, std::int64_t now) {
    // {"type":"message","channel":…,"offset":O,"epoch":"E","mid":…,"ts":…,"data":{"t":…,"s":S,"p":…}}
    const char* from = line.type.data() + line.type.size();
    auto offset = numberField(from, line.end, kOffsetKey);
    std::string_view epoch = stringField(from, line.end, kEpochKey);
    if (!offset || epoch.empty())
        return fail("order", "a message without offset or epoch: " +
                                 sample(line.begin, static_cast<std::size_t>(line.end - line.begin)));
    if (epoch != epoch_)
        return fail("epoch",
                    "offset " + std::to_string(*offset) + " in epoch " + std::string(epoch) + ", expected " + epoch_);
    if (*offset != next_)
        return fail(*offset < next_ ? "duplicate" : "gap",
                    "expected offset " + std::to_string(next_) + ", got " + std::to_string(*offset) + " (since " +
                        std::to_string(since_) + ", T " + std::to_string(last_) + ")");
    // The payload is the publication made with sequence number offset - since (the publisher
    // numbers each channel's publications from 1).
    std::int64_t sentNs = 0;
    std::uint64_t seq = 0;
    if (findStamp(epoch.data() + epoch.size(), line.end, sentNs, seq) == nullptr || seq != *offset - since_)
        return fail("payload", "offset " + std::to_string(*offset) + " carries publication " + std::to_string(seq) +
                                   ", expected " + std::to_string(*offset - since_));
    ++messages_;
    if (++next_ > last_) finish(now);
}

void Client::finish(std::int64_t now) {
    state_ = State::Done;
    doneNs_ = now;
    countFinished();
}

void Client::countFinished() {
    if (finishedCounted_ || !loop_.resubscribed) return;
    finishedCounted_ = true;
    loop_.shared.finished.fetch_add(1, std::memory_order_release);
}

void Client::fail(const char* kind, const std::string& detail) {
    if (state_ == State::Failed) return;
    bool phaseOne = inPhaseOne();
    bool idle = state_ == State::Idle;
    state_ = State::Failed;
    failKind_ = kind;
    error_code ignored;
    ws_.next_layer().close(ignored);
    if (loop_.firstError.empty()) loop_.firstError = label() + kind + ": " + detail;
    if (idle) {
        loop_.countSettled();  // never started (aborted)
    } else if (phaseOne) {
        loop_.connectDone();
    }
    countFinished();
}

}  // namespace

struct RecoveryClients::Impl {
    Shared shared;
    ClientLoops<Loop> loops;
    bool resubscribed = false;  // phase 2 began: a client still parked at the end timed out

    Impl(const Options& o, const Target& t, std::uint64_t n)
        : shared(o, t), loops(shared, 0, n, [&o](Loop& loop, std::uint64_t i) {
              return std::make_unique<Client>(loop, i, static_cast<std::uint32_t>(i % o.channels));
          }) {}
};

RecoveryClients::RecoveryClients(const Options& options, const Target& target, std::uint64_t count)
    : impl_(std::make_unique<Impl>(options, target, count)) {}

RecoveryClients::~RecoveryClients() = default;

void RecoveryClients::start() {
    impl_->loops.start();
}

bool RecoveryClients::settled() const {
    return impl_->loops.settled();
}

std::uint64_t RecoveryClients::parkedNow() const {
    return impl_->shared.parked.load(std::memory_order_relaxed);
}

void RecoveryClients::abortConnecting() {
    impl_->loops.abortConnecting();
}

void RecoveryClients::resubscribe(const std::vector<std::uint64_t>& perChannel) {
    impl_->resubscribed = true;
    auto shared = std::make_shared<const std::vector<std::uint64_t>>(perChannel);
    impl_->loops.onEachLoop([shared](Loop& l) {
        l.resubscribed = true;
        for (auto& c : l.clients) c->resubscribe(c->channel() < shared->size() ? (*shared)[c->channel()] : 0);
    });
}

bool RecoveryClients::finished() const {
    return impl_->shared.finished.load(std::memory_order_acquire) >= impl_->loops.count();
}

RecoveryCounters RecoveryClients::stop() {
    impl_->loops.stop();
    RecoveryCounters total;
    total.clients = impl_->loops.count();
    bool anyRecovered = false;
    for (auto& loop : impl_->loops) {
        if (total.firstError.empty()) total.firstError = loop->firstError;
        for (auto& c : loop->clients) {
            if (c->wasParked()) ++total.parked;
            total.messages += c->messages();
            if (c->resubscribeSentNs() != 0 && (total.firstSendNs == 0 || c->resubscribeSentNs() < total.firstSendNs))
                total.firstSendNs = c->resubscribeSentNs();
            if (c->state() == Client::State::Done) {
                ++total.recovered;
                total.recoverNs.push_back(c->doneNs() - c->resubscribeSentNs());
                total.subscribedNs.push_back(c->subscribedNs() - c->resubscribeSentNs());
                total.lastDoneNs = std::max(total.lastDoneNs, c->doneNs());
                total.missedMin = anyRecovered ? std::min(total.missedMin, c->missed()) : c->missed();
                total.missedMax = std::max(total.missedMax, c->missed());
                anyRecovered = true;
                continue;
            }
            // Without phase 2 (publishing failed), a parked client has not failed: it was not asked.
            if (!impl_->resubscribed && c->state() == Client::State::Parked) continue;
            ++total.failed;
            if (c->state() == Client::State::Failed) {
                ++total.failureKinds[c->failKind()];
            } else {
                ++total.failureKinds["timeout"];
                if (total.firstError.empty())
                    total.firstError = "client " + std::to_string(c->index()) + ": timeout (" + c->progress() + ")";
            }
        }
    }
    return total;
}

}  // namespace bench
