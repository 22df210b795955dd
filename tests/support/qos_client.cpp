#include "support/qos_client.h"

#include "support/http_test_client.h"

namespace wspush::testing {

using json = nlohmann::json;

bool ChannelLog::hasAll(std::uint64_t last) const {
    if (delivered.size() < last) return false;
    return missing(last, 1).empty();
}

std::vector<std::uint64_t> ChannelLog::missing(std::uint64_t last, std::size_t limit) const {
    std::vector<std::uint64_t> result;
    for (std::uint64_t offset = 1; offset <= last && result.size() < limit; ++offset)
        if (!delivered.contains(offset)) result.push_back(offset);
    return result;
}

void QosApp::handle(const json& message, std::vector<json>& answers) {
    std::string type = message.value("type", "");
    if (type == "message") {
        ChannelLog& channel = log(message.value("channel", ""));
        int qos = message.value("qos", 0);
        bool dup = message.value("dup", false);
        std::uint64_t offset = message.value("offset", std::uint64_t{0});
        std::uint64_t did = message.value("did", std::uint64_t{0});
        ++channel.frames;
        if (dup) ++channel.dupFrames;
        if (!channel.qos)
            channel.qos = qos;
        else if (*channel.qos != qos)
            ++channel.wrongQos;

        if (qos == 2) {
            if (awaitingRel.contains(did)) {
                // Seen before: the application has it already; only the rec is repeated.
                if (!dup) ++channel.unflaggedRepeats;
            } else {
                awaitingRel.insert(did);
                if (++channel.delivered[offset] > 1) ++channel.appDuplicates;
            }
            if (answering) answers.push_back(json{{"type", "rec"}, {"did", did}});
            return;
        }
        bool repeat = ++channel.delivered[offset] > 1;
        if (repeat) ++channel.appDuplicates;
        if (qos == 1) {
            repeat |= !seenQos1Dids.insert(did).second;
            if (answering) answers.push_back(json{{"type", "ack"}, {"did", did}});
        }
        if (repeat && !dup) ++channel.unflaggedRepeats;
        return;
    }
    if (type == "rel") {
        ++rels;
        std::uint64_t did = message.value("did", std::uint64_t{0});
        if (awaitingRel.erase(did) == 0) ++relsForUnknownDid;
        // comp even for a did we forgot: our first comp was lost with its connection.
        if (answering) answers.push_back(json{{"type", "comp"}, {"did", did}});
        return;
    }
    if (type == "error") {
        errors.push_back(message);
        return;
    }
    if (type == "disconnect") {
        ++disconnects[message.value("code", 0)];
        return;
    }
    ++others;
}

std::optional<json> ResumingClient::connect(unsigned short port, Millis timeout) {
    json fields = json::object();
    if (!user_.empty()) fields["user"] = user_;
    if (!session_.empty()) {
        fields["session"] = session_;
        fields["resume"] = resume_;
    }
    WsConnectOptions options;
    options.timeout = timeout;
    auto reply = ws_.connectWith(port, fields, options);
    if (!reply || reply->value("type", "") != "connected") {
        ++stats.failedConnects;
        lastError_ = reply ? "connect refused: " + reply->dump() : ws_.lastError();
        return std::nullopt;
    }
    ++stats.connects;
    bool resumed = reply->value("resumed", false);
    if (resumed) {
        ++stats.resumed;
    } else {
        if (!session_.empty()) ++stats.notResumed;
        confirmed_.clear();  // a new, empty session
    }
    session_ = reply->value("session", "");
    resume_ = reply->value("resume", "");
    return reply;
}

bool ResumingClient::subscribe(const std::vector<std::string>& channels, Millis timeout) {
    for (const auto& channel : channels) {
        if (confirmed_.contains(channel)) continue;
        auto reply = ws_.subscribe(channel, timeout);
        if (!reply) {
            lastError_ = "no reply to subscribe " + channel + ": " + ws_.lastError();
            return false;
        }
        // 105: a subscribe whose reply was lost with its connection took effect in the session.
        if (reply->value("type", "") == "subscribed" || reply->value("code", 0) == 105) {
            confirmed_.insert(channel);
        } else {
            lastError_ = "subscribe " + channel + ": " + reply->dump();
            return false;
        }
    }
    return true;
}

bool ResumingClient::sendAnswers(std::vector<json>& answers) {
    if (answers.empty()) return true;
    std::string frame;
    for (const auto& answer : answers) {
        if (!frame.empty()) frame += '\n';
        frame += answer.dump();
    }
    answers.clear();
    return ws_.sendText(frame);
}

bool ResumingClient::pump(Millis duration) {
    auto deadline = std::chrono::steady_clock::now() + duration;
    std::vector<json> answers;
    while (ws_.isOpen()) {
        auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
        if (left <= 0ms) break;
        auto message = ws_.nextMessage(left);
        if (!message) continue;
        app.handle(*message, answers);
        while (auto more = ws_.nextMessage(0ms)) app.handle(*more, answers);
        if (!sendAnswers(answers)) break;
    }
    if (!ws_.isOpen()) {
        // Whatever arrived before the end is still handed over (and its answers are lost).
        while (auto more = ws_.nextMessage(0ms)) app.handle(*more, answers);
        answers.clear();
        return false;
    }
    return true;
}

bool ResumingClient::pumpUntil(const std::function<bool()>& done, Millis timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
        auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
        if (left <= 0ms) return done();
        if (!pump(std::min<Millis>(left, 20ms))) return done();
    }
    return true;
}

PacedPublisher::PacedPublisher(unsigned short apiPort, Plan plan)
    : plan_(std::move(plan)), counts_(new std::atomic<std::uint64_t>[plan_.channels.size()]) {
    for (std::size_t i = 0; i < plan_.channels.size(); ++i) counts_[i].store(0);
    thread_ = std::thread([this, apiPort] { run(apiPort); });
}

void PacedPublisher::stop() {
    stopping_.store(true);
    if (thread_.joinable()) thread_.join();
}

std::uint64_t PacedPublisher::totalPublished() const {
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < plan_.channels.size(); ++i) total += counts_[i].load();
    return total;
}

std::vector<std::string> PacedPublisher::failures() const {
    std::lock_guard lock(mutex_);
    return failures_;
}

void PacedPublisher::run(unsigned short apiPort) {
    using Clock = std::chrono::steady_clock;
    HttpTestClient api(apiPort);
    auto start = Clock::now();
    auto interval = std::chrono::duration<double>(1.0 / plan_.perSecond);
    auto fail = [this](std::string what) {
        std::lock_guard lock(mutex_);
        if (failures_.size() < 20) failures_.push_back(std::move(what));
    };
    std::uint64_t made = 0;
    const std::uint64_t planned = plan_.perChannel * plan_.channels.size();
    while (!stopping_.load() && (planned == 0 || made < planned)) {
        std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(interval * made));
        std::size_t index = made % plan_.channels.size();
        const std::string& channel = plan_.channels[index];
        std::uint64_t n = counts_[index].load() + 1;
        json body{{"channel", channel}, {"data", {{"n", n}}}};
        if (plan_.qos) body["qos"] = *plan_.qos;
        Headers headers{{"Idempotency-Key", plan_.keyPrefix + "-" + channel + "-" + std::to_string(n)}};
        HttpResult result;
        for (int attempt = 0; attempt < 3; ++attempt) {
            result = api.postJson("/api/publish", body, headers);
            if (result.status != 0) break;
        }
        ++made;
        if (result.status != 200) {
            fail(channel + " #" + std::to_string(n) + ": HTTP " + std::to_string(result.status) + " " + result.body +
                 result.error);
            break;
        }
        std::uint64_t offset = result.json().value("offset", std::uint64_t{0});
        if (offset != n) fail(channel + " #" + std::to_string(n) + " got offset " + std::to_string(offset));
        counts_[index].store(n);
    }
    elapsed_.store(std::chrono::duration<double>(Clock::now() - start).count());
    if (planned > 0 && made == planned) finished_.store(true);
}

}  // namespace wspush::testing
