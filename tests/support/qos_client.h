// The client side of QoS 1/2 and sessions (docs/protocol.md, "Sessions" and "QoS") for integration
// tests: an "application layer" that records what it was handed, and a client that resumes its
// session after every lost connection.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/ws_test_client.h"

namespace wspush::testing {

// What the application saw of one channel.
struct ChannelLog {
    std::map<std::uint64_t, int> delivered;  // offset → times handed to the application
    std::uint64_t frames = 0;                // message frames received (first sends and resends)
    std::uint64_t dupFrames = 0;             // of which flagged "dup":true
    std::uint64_t appDuplicates = 0;         // hand-overs of an offset the application already had
    std::uint64_t unflaggedRepeats = 0;      // a frame of an already received offset/did without "dup":true
    std::uint64_t wrongQos = 0;              // frames whose "qos" differs from the first one of the channel
    std::optional<int> qos;                  // "qos" of the first frame (0 when absent)

    // Every offset in 1..last reached the application.
    bool hasAll(std::uint64_t last) const;
    // The offsets in 1..last that did not reach the application (at most `limit` of them).
    std::vector<std::uint64_t> missing(std::uint64_t last, std::size_t limit = 20) const;
};

// The application layer of a QoS client, as the protocol describes it:
// - QoS 0 and 1: every frame is handed to the application; a QoS 1 frame is answered with `ack`.
// - QoS 2: a message is handed to the application when its `did` is first seen, answered with `rec`
//   (again for every dup); `rel` makes the client forget the did and answer `comp`.
class QosApp {
public:
    // Handles one server message; appends the client's answers to `answers`.
    void handle(const nlohmann::json& message, std::vector<nlohmann::json>& answers);

    // Whether QoS answers are sent (false: the client withholds ack/rec/comp, like a stalled app).
    bool answering = true;

    std::map<std::string, ChannelLog> channels;
    std::set<std::uint64_t> awaitingRel;   // QoS 2 dids handed to the application, no rel yet
    std::set<std::uint64_t> seenQos1Dids;  // QoS 1 dids received (to spot unflagged repeats)
    std::uint64_t rels = 0;
    std::uint64_t relsForUnknownDid = 0;  // rel for a did not awaiting one (our comp was lost)
    std::vector<nlohmann::json> errors;   // `error` replies (none is expected)
    std::map<int, int> disconnects;       // `disconnect` codes received → count
    std::uint64_t others = 0;             // anything else (replies to our commands)

    ChannelLog& log(const std::string& channel) { return channels[channel]; }
};

struct ResumingClientStats {
    std::uint64_t connects = 0;        // connections that got a `connected`
    std::uint64_t failedConnects = 0;  // TCP/handshake/connect attempts that got no `connected`
    std::uint64_t resumed = 0;         // `"resumed":true`
    std::uint64_t notResumed = 0;      // `"resumed":false` although a session was known: the session was lost
};

// A client that keeps one session across connections: it connects, resumes with the session and
// token of the last `connected` whenever it has them, (re)subscribes the channels it has not had
// confirmed yet, and answers QoS deliveries through its QosApp.
class ResumingClient {
public:
    explicit ResumingClient(std::string user = "") : user_(std::move(user)) {}

    // Connects (resuming when a session is known); the `connected` reply, or nullopt (see lastError()).
    std::optional<nlohmann::json> connect(unsigned short port, Millis timeout = 2000ms);
    // Subscribes every channel of `channels` that is not confirmed yet ("subscribed", or error 105
    // after a resume). False if the connection failed meanwhile.
    bool subscribe(const std::vector<std::string>& channels, Millis timeout = 2000ms);
    // Reads for `duration` (less if the connection ends), handing each message to the app and
    // sending its answers, batched in one frame per read. Returns whether the connection is open.
    bool pump(Millis duration);
    // pump() until `done()` holds, the connection ends, or `timeout` passes; returns done().
    bool pumpUntil(const std::function<bool()>& done, Millis timeout);
    // Ends the connection without a close frame (RST or FIN).
    void drop(bool reset = true) { ws_.drop(reset); }

    bool isOpen() const { return ws_.isOpen(); }
    const std::string& session() const { return session_; }
    const std::string& lastError() const { return lastError_; }
    WsTestClient& ws() { return ws_; }
    QosApp app;
    ResumingClientStats stats;

private:
    bool sendAnswers(std::vector<nlohmann::json>& answers);

    WsTestClient ws_;
    std::string user_;
    std::string session_;
    std::string resume_;
    std::set<std::string> confirmed_;  // channels whose subscription is known to be in the session
    std::string lastError_;
};

// Publishes through POST /api/publish on its own thread (its own keep-alive connection) at a steady
// pace, taking `channels` in turn. The body names no "qos" unless `qos` is set, so the channel's
// namespace default applies. Every publication carries an Idempotency-Key, so a request that got
// no response is retried without risk of publishing twice. Each response's offset is checked: the
// n-th publication to a channel must get offset n (the channels must be fresh).
class PacedPublisher {
public:
    struct Plan {
        std::vector<std::string> channels;
        std::uint64_t perChannel = 0;  // 0: until stop()
        double perSecond = 500;        // publications per second, all channels together
        std::optional<int> qos;
        std::string keyPrefix = "paced";
    };

    PacedPublisher(unsigned short apiPort, Plan plan);
    ~PacedPublisher() { stop(); }
    PacedPublisher(const PacedPublisher&) = delete;
    PacedPublisher& operator=(const PacedPublisher&) = delete;

    // Stops after the publication in progress and joins the thread.
    void stop();
    // Whether every planned publication was made (only with perChannel > 0).
    bool finished() const { return finished_.load(); }
    // Publications to channel `index` of the plan that got their offset.
    std::uint64_t published(std::size_t index) const { return counts_[index].load(); }
    std::uint64_t totalPublished() const;
    // Responses that were not 200 or carried an unexpected offset (empty when all went well).
    std::vector<std::string> failures() const;
    double elapsedSeconds() const { return elapsed_.load(); }

private:
    void run(unsigned short apiPort);

    Plan plan_;
    std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;
    std::atomic<bool> stopping_{false};
    std::atomic<bool> finished_{false};
    std::atomic<double> elapsed_{0};
    mutable std::mutex mutex_;
    std::vector<std::string> failures_;
    std::thread thread_;
};

}  // namespace wspush::testing
