#include "api/http_api.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <map>
#include <mutex>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "api/admin_console.h"
#include "api/simple_publish_body.h"
#include "api/static_files.h"
#include "base/bounded_json.h"
#include "base/constant_time.h"
#include "protocol/client_command.h"
#include "protocol/server_message.h"
#include "wspush/channel_name.h"

namespace wspush {
namespace {

using json = nlohmann::ordered_json;  // keeps the publisher's key order in `data`

constexpr std::size_t kMaxBroadcastChannels = 1000;
constexpr std::size_t kMaxBatchPublications = 1000;
constexpr std::size_t kMaxIdempotencyKey = 128;
constexpr std::uint64_t kMaxSafeInteger = 1ull << 53;  // what a JavaScript client can hold exactly
// How long a report of a clustered publish without "wait" (/api/send) waits for the nodes: a node
// that dies, or a lost control message, must not hold the request forever.
constexpr std::chrono::milliseconds kClusteredReportLifetime{3000};
constexpr std::size_t kMaxClientId = 128;

std::string_view scopeName(unsigned scope) {
    switch (scope) {
        case kScopePublish: return "publish";
        case kScopeRead: return "read";
        case kScopeAdmin: return "admin";
        default: return "?";
    }
}
constexpr std::string_view kUsersPrefix = "/api/users/";
constexpr std::size_t kDefaultOnlinePage = 1000;
constexpr std::size_t kMaxOnlinePage = 10000;

// A decimal integer from 0 to `max`, nothing else (no sign, no spaces); nullopt otherwise.
std::optional<std::uint64_t> parseUnsigned(std::string_view text, std::uint64_t max) {
    std::uint64_t value = 0;
    auto [end, problem] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (problem != std::errc() || end != text.data() + text.size() || text.empty() || value > max) return std::nullopt;
    return value;
}

// `a=1&b=two` with percent-decoding ('+' is a space). Duplicate names: the last one wins.
class QueryParameters {
public:
    static std::optional<QueryParameters> parse(std::string_view query) {
        QueryParameters parameters;
        while (!query.empty()) {
            std::string_view pair = query.substr(0, query.find('&'));
            query.remove_prefix(std::min(query.size(), pair.size() + 1));
            if (pair.empty()) continue;
            auto equals = pair.find('=');
            auto name = decode(pair.substr(0, equals));
            auto value = decode(equals == std::string_view::npos ? std::string_view() : pair.substr(equals + 1));
            if (!name || !value) return std::nullopt;
            parameters.values_[*name] = std::move(*value);
        }
        return parameters;
    }
    std::optional<std::string> get(const std::string& name) const {
        auto it = values_.find(name);
        if (it == values_.end()) return std::nullopt;
        return it->second;
    }

    // A path segment: '+' is itself there.
    static std::optional<std::string> decodePathSegment(std::string_view text) { return decode(text, false); }

private:
    static std::optional<std::string> decode(std::string_view text, bool plusIsSpace = true) {
        std::string out;
        for (std::size_t i = 0; i < text.size(); ++i) {
            if (text[i] == '+' && plusIsSpace) {
                out += ' ';
            } else if (text[i] != '%') {
                out += text[i];
            } else {
                unsigned value = 0;
                if (i + 2 >= text.size()) return std::nullopt;
                auto [end, problem] = std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16);
                if (problem != std::errc() || end != text.data() + i + 3) return std::nullopt;
                out += static_cast<char>(value);
                i += 2;
            }
        }
        return out;
    }
    std::map<std::string, std::string> values_;
};

bool isJsonContentType(std::string_view contentType) {
    auto semicolon = contentType.find(';');
    std::string_view mediaType = contentType.substr(0, semicolon);
    while (!mediaType.empty() && mediaType.back() == ' ') mediaType.remove_suffix(1);
    if (mediaType.size() != 16) return false;
    for (std::size_t i = 0; i < 16; ++i)
        if (std::tolower(static_cast<unsigned char>(mediaType[i])) != "application/json"[i]) return false;
    return true;
}

ApiResponse ok(const json& body) {
    ApiResponse response;
    response.body = body.dump();
    return response;
}

PublishRequest publishRequest(std::string channel, std::string data) {
    return PublishRequest{std::move(channel), std::move(data)};
}

// `"qos"`: 0, 1 or 2; absent: the channel's namespace default.
std::variant<int, ApiResponse> qosOf(const json& body, int defaultQos) {
    auto qos = body.find("qos");
    if (qos == body.end() || qos->is_null()) return defaultQos;
    if (!qos->is_number_unsigned() || qos->get<std::uint64_t>() > 2)
        return HttpApi::error(ApiErrorCode::WrongType, "\"qos\" must be 0, 1 or 2");
    return qos->get<int>();
}

// `"wait":{"acks":N,"timeout_ms":T}`: answer once N recipients acknowledged, or after T.
struct WaitForAcks {
    std::uint64_t acks = 0;
    std::chrono::milliseconds timeout{0};
};
constexpr std::chrono::milliseconds kMaxWait{60000};

std::variant<std::optional<WaitForAcks>, ApiResponse> waitOf(const json& body, int qos) {
    auto wait = body.find("wait");
    if (wait == body.end() || wait->is_null()) return std::optional<WaitForAcks>{};
    auto acks = wait->is_object() ? wait->find("acks") : wait->end();
    auto timeout = wait->is_object() ? wait->find("timeout_ms") : wait->end();
    if (!wait->is_object() || acks == wait->end() || !acks->is_number_unsigned() || acks->get<std::uint64_t>() == 0 ||
        timeout == wait->end() || !timeout->is_number_unsigned() ||
        timeout->get<std::uint64_t>() > static_cast<std::uint64_t>(kMaxWait.count()))
        return HttpApi::error(ApiErrorCode::WrongType, "\"wait\" must be {\"acks\": N ≥ 1, \"timeout_ms\": 0..60000}");
    if (qos == 0)
        return HttpApi::error(ApiErrorCode::WrongType, "\"wait\" needs qos 1 or 2: QoS 0 is never acknowledged");
    return std::optional<WaitForAcks>{
        WaitForAcks{acks->get<std::uint64_t>(), std::chrono::milliseconds(timeout->get<std::uint64_t>())}};
}

json publicationJson(const Publication& p);

// Publishes and answers once both the engine has accepted the publication and its delivery
// report is complete (every loop delivered it; with `wait`, N acks or the timeout), adding
// "reached" and "acked" to the usual fields.
void publishReported(Node& node, PublishRequest request, std::optional<WaitForAcks> wait, const ApiRequest& api,
                     std::function<void(ApiResponse)> respond) {
    struct Outcome {
        std::mutex mutex;
        PublicationPtr publication;
        std::optional<std::pair<std::uint64_t, std::uint64_t>> delivery;  // reached, acked
        bool answered = false;
        std::function<void(ApiResponse)> respond;

        void answerIfComplete(std::unique_lock<std::mutex>& lock) {
            if (answered || !publication || !delivery) return;
            answered = true;
            json body = publicationJson(*publication);
            body["reached"] = delivery->first;
            if (publication->qos > 0) body["acked"] = delivery->second;
            ApiResponse response;
            response.body = body.dump();
            response.wasPublish = true;
            auto answer = std::move(respond);
            lock.unlock();
            answer(std::move(response));
        }
    };
    auto outcome = std::make_shared<Outcome>();
    outcome->respond = std::move(respond);
    auto report =
        std::make_shared<DeliveryReport>(wait ? wait->acks : 0, [outcome](std::uint64_t reached, std::uint64_t acked) {
            std::unique_lock lock(outcome->mutex);
            outcome->delivery = std::make_pair(reached, acked);
            outcome->answerIfComplete(lock);
        });
    request.report = report;
    // On a clustered engine the other nodes' parts arrive as control messages, which may be lost
    // (at most once) or never sent (a node died): every such report ends, with what it counted.
    if (api.after && (wait || node.clustered()))
        api.after(wait ? wait->timeout : kClusteredReportLifetime, [report] { report->expire(); });
    node.publish(std::move(request), [outcome](PublishResult result) {
        std::unique_lock lock(outcome->mutex);
        if (auto* failure = std::get_if<BrokerError>(&result)) {
            if (outcome->answered) return;
            outcome->answered = true;
            auto answer = std::move(outcome->respond);
            lock.unlock();
            return answer(HttpApi::error(failure->code, failure->message));
        }
        outcome->publication = std::get<Published>(result).publication;
        outcome->answerIfComplete(lock);
    });
}

json publicationJson(const Publication& p) {
    return json{{"channel", p.channel}, {"offset", p.offset}, {"epoch", p.epoch}, {"mid", p.mid}};
}

// publicationJson(p).dump(), hand-built: it answers every publish. Channel names, epochs and mids
// are restricted to characters that need no JSON escaping (as in encodeMessage).
std::string publicationBody(const Publication& p) {
    std::string body;
    body.reserve(48 + p.channel.size() + p.epoch.size() + p.mid.size());
    body += R"({"channel":")";
    body += p.channel;
    body += R"(","offset":)";
    char offset[24];
    body.append(offset, std::to_chars(offset, offset + sizeof offset, p.offset).ptr);
    body += R"(,"epoch":")";
    body += p.epoch;
    body += R"(","mid":")";
    body += p.mid;
    body += R"("})";
    return body;
}

// Parses a JSON object body; on failure returns the 4xx to answer.
std::variant<json, ApiResponse> parseBody(const ApiRequest& request) {
    if (!isJsonContentType(request.contentType))
        return HttpApi::error(ApiErrorCode::UnsupportedMediaType, "Content-Type must be application/json");
    BoundedJson<json> parsed = parseBoundedJson<json>(request.body);
    if (parsed.error == JsonParseError::TooDeep) return HttpApi::error(ApiErrorCode::MalformedJson, kJsonTooDeep);
    if (parsed.error == JsonParseError::Malformed)
        return HttpApi::error(ApiErrorCode::MalformedJson, "the body is not valid JSON");
    if (!parsed.value.is_object()) return HttpApi::error(ApiErrorCode::WrongType, "the body must be a JSON object");
    return std::move(parsed.value);
}

// 1 to 128 printable ASCII characters (0x20-0x7E).
bool isValidIdempotencyKey(std::string_view key) {
    if (key.empty() || key.size() > kMaxIdempotencyKey) return false;
    return std::all_of(key.begin(), key.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

// The request's idempotency key: the Idempotency-Key header, else the body's "mid" (ignored when
// the header is present), else none. An invalid key is a 400.
using KeyOrRefusal = std::variant<std::optional<std::string>, ApiResponse>;
KeyOrRefusal idempotencyKeyOf(const ApiRequest& request, const json& body) {
    if (request.idempotencyKey) {
        if (!isValidIdempotencyKey(*request.idempotencyKey))
            return HttpApi::error(ApiErrorCode::InvalidIdempotencyKey,
                                  "the Idempotency-Key header must be 1 to 128 printable ASCII characters");
        return request.idempotencyKey;
    }
    auto mid = body.find("mid");
    if (mid == body.end()) return std::optional<std::string>();
    if (!mid->is_string() || !isValidIdempotencyKey(mid->get_ref<const std::string&>()))
        return HttpApi::error(ApiErrorCode::InvalidIdempotencyKey,
                              "\"mid\" must be a string of 1 to 128 printable ASCII characters");
    return std::optional<std::string>(mid->get<std::string>());
}

ApiResponse replayOf(const IdempotencyCache::Response& stored) {
    ApiResponse response;
    response.status = stored.status;
    response.contentType = stored.contentType;
    response.body = stored.body;
    response.replayed = true;  // and not wasPublish: nothing was published for this request
    return response;
}

IdempotencyCache::Duration windowOf(const ApiConfig& config) {
    // Clamped so that the conversion to steady_clock ticks cannot overflow (10^9 s is ~31 years).
    double seconds = std::min(config.idempotency_window.count(), 1e9);
    return std::chrono::duration_cast<IdempotencyCache::Duration>(std::chrono::duration<double>(seconds));
}

std::optional<ApiResponse> checkChannel(const Node& node, std::string_view channel) {
    switch (node.checkChannel(channel)) {
        case ChannelCheck::InvalidName: return HttpApi::error(ApiErrorCode::InvalidChannel, "invalid channel name");
        case ChannelCheck::UnknownNamespace: return HttpApi::error(ApiErrorCode::UnknownNamespace, "unknown namespace");
        case ChannelCheck::Ok: return std::nullopt;
    }
    return std::nullopt;
}

// What a publish request asks for, once every check of docs/http-api.md passed.
struct PublishPlan {
    std::optional<std::string> key;  // the idempotency key
    PublishRequest publication;
    std::optional<WaitForAcks> wait;
};
using PlanOrRefusal = std::variant<PublishPlan, ApiResponse>;

PlanOrRefusal planOf(const ApiRequest& request, std::optional<std::string> key, std::string channel, std::string data,
                     int qos, std::optional<WaitForAcks> wait) {
    PublishPlan plan{std::move(key), publishRequest(std::move(channel), std::move(data)), wait};
    plan.publication.qos = qos;
    // The engine remembers the key too: a retry that reaches another node, or comes after this
    // node forgot the response, still publishes nothing new.
    // With the body's fingerprint: a key reused for another body (after this node forgot it) is a new publication.
    if (plan.key) plan.publication.idempotencyKey = IdempotencyCache::engineKey("http:" + *plan.key, request.body);
    return plan;
}

PlanOrRefusal planPublish(const Node& node, const ApiRequest& request) {
    auto parsed = parseBody(request);
    if (auto* refusal = std::get_if<ApiResponse>(&parsed)) return std::move(*refusal);
    const json& body = std::get<json>(parsed);
    auto key = idempotencyKeyOf(request, body);
    if (auto* refusal = std::get_if<ApiResponse>(&key)) return std::move(*refusal);
    auto channel = body.find("channel");
    if (channel == body.end()) return HttpApi::error(ApiErrorCode::MissingField, "\"channel\" is required");
    if (!channel->is_string()) return HttpApi::error(ApiErrorCode::WrongType, "\"channel\" must be a string");
    auto data = body.find("data");
    if (data == body.end()) return HttpApi::error(ApiErrorCode::MissingField, "\"data\" is required");
    const auto& name = channel->get_ref<const std::string&>();
    if (auto refusal = checkChannel(node, name)) return std::move(*refusal);
    auto qos = qosOf(body, node.config().namespaceFor(name)->default_qos);
    if (auto* refusal = std::get_if<ApiResponse>(&qos)) return std::move(*refusal);
    auto wait = waitOf(body, std::get<int>(qos));
    if (auto* refusal = std::get_if<ApiResponse>(&wait)) return std::move(*refusal);
    return planOf(request, std::get<std::optional<std::string>>(std::move(key)), name, data->dump(), std::get<int>(qos),
                  std::get<std::optional<WaitForAcks>>(wait));
}

// planPublish for a body readSimplePublishBody takes (a JSON Content-Type already checked): the
// same checks in the same order, those the body cannot fail left out. nullopt: not such a body.
std::optional<PlanOrRefusal> planSimplePublish(const Node& node, const ApiRequest& request) {
    auto body = readSimplePublishBody(request.body);
    if (!body) return std::nullopt;
    auto key = idempotencyKeyOf(request, json());  // the header's: such a body has no "mid"
    if (auto* refusal = std::get_if<ApiResponse>(&key)) return std::move(*refusal);
    if (auto refusal = checkChannel(node, body->channel)) return std::move(*refusal);
    int qos = node.config().namespaceFor(body->channel)->default_qos;
    return planOf(request, std::get<std::optional<std::string>>(std::move(key)), std::string(body->channel),
                  std::move(body->data), qos, std::nullopt);
}

// One element of a broadcast or batch: a publication, or the reason it was refused.
struct BatchItem {
    std::string channel;
    std::variant<PublishRequest, ApiResponse> publication;
};

// Publishes every item in order and answers {"results":[…]} once the last completion arrived,
// whichever thread that is on: one entry per item, the publish result or an error object.
void publishEach(Node& node, std::vector<BatchItem> items, ApiRespond respond) {
    struct Gather {
        std::mutex mutex;
        json results = json::array();
        std::size_t remaining;
        std::size_t published = 0;
        bool unavailable = false;  // an item failed because the engine cannot be reached
        ApiRespond respond;
    };
    auto gather = std::make_shared<Gather>();
    gather->remaining = items.size();
    gather->respond = std::move(respond);
    for (const auto& item : items) gather->results.push_back(json{{"channel", item.channel}});

    auto complete = [gather](std::size_t index, json outcome) {
        std::unique_lock lock(gather->mutex);
        if (outcome.contains("offset")) ++gather->published;
        if (outcome.contains("error") &&
            outcome["error"].value("code", 0) == static_cast<int>(ApiErrorCode::Unavailable))
            gather->unavailable = true;
        gather->results[index].update(outcome);
        if (--gather->remaining > 0) return;
        lock.unlock();
        // Nothing published because the engine is unreachable: a 503 the backend retries (and
        // that an idempotency key does not remember), rather than a 200 full of errors.
        if (gather->published == 0 && gather->unavailable)
            return gather->respond(HttpApi::error(ApiErrorCode::Unavailable, "the engine is unavailable: retry"));
        ApiResponse response = ok(json{{"results", std::move(gather->results)}});
        response.wasPublish = true;
        gather->respond(std::move(response));
    };
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (auto* refusal = std::get_if<ApiResponse>(&items[i].publication)) {
            complete(i, json::parse(refusal->body));
            continue;
        }
        node.publish(std::move(std::get<PublishRequest>(items[i].publication)), [complete, i](PublishResult result) {
            if (auto* failure = std::get_if<BrokerError>(&result))
                return complete(
                    i, json{{"error", {{"code", static_cast<int>(failure->code)}, {"message", failure->message}}}});
            complete(i, publicationJson(*std::get<Published>(result).publication));
        });
    }
}

}  // namespace

HttpApi::HttpApi(Node& node, IdempotencyCache::Clock clock)
    : node_(node),
      idempotency_(std::make_shared<IdempotencyCache>(windowOf(node.config().api),
                                                      node.config().api.idempotency_max_entries, std::move(clock))) {}

ApiResponse HttpApi::error(ApiErrorCode code, std::string_view message) {
    ApiResponse response;
    response.status = static_cast<unsigned>(code) / 100;
    response.body = json{{"error", {{"code", static_cast<int>(code)}, {"message", message}}}}.dump();
    return response;
}

void HttpApi::handle(const ApiRequest& request, const ListenerRoutes& routes, ApiRespond respond) {
    // `scope`: what the request's API key must allow (0: no key needed, not an API route).
    struct Route {
        std::string_view path;
        std::string_view method;
        unsigned scope;
    };
    static constexpr Route kRoutes[] = {
        {"/healthz", "GET", 0},
        {"/readyz", "GET", 0},
        {"/metrics", "GET", kScopeRead},
        {"/api/publish", "POST", kScopePublish},
        {"/api/broadcast", "POST", kScopePublish},
        {"/api/send", "POST", kScopePublish},
        {"/api/batch", "POST", kScopePublish},
        {"/api/channels", "GET", kScopeRead},
        {"/api/info", "GET", kScopeRead},
        {"/api/history", "GET", kScopeRead},
        {"/api/nodes", "GET", kScopeRead},
        {"/api/presence", "GET", kScopeRead},
        {"/api/presence/stats", "GET", kScopeRead},
        {"/api/online", "GET", kScopeRead},
        {"/api/disconnect", "POST", kScopeAdmin},
    };
    if (routes.api && request.path.starts_with(kUsersPrefix)) return userRoute(request, std::move(respond));
    // Beside the API it drives, so that the page's requests are same-origin.
    if (routes.api && node_.config().admin.console && isAdminConsolePath(request.path))
        return respond(adminConsole(request));
    const Route* route = nullptr;
    for (const auto& candidate : kRoutes)
        if (candidate.path == request.path && (routes.api || candidate.scope == 0)) route = &candidate;
    if (route == nullptr) return respond(staticFile(request, routes));
    bool head = request.method == "HEAD" && route->method == "GET";
    if (request.method != route->method && !head) {
        ApiResponse response = error(ApiErrorCode::MethodNotAllowed, "method not allowed");
        response.allow = route->method;
        return respond(std::move(response));
    }
    if (route->path == "/healthz") return respond(health());
    if (route->path == "/readyz") return respond(readiness());
    if (auto refusal = authorize(request, route->scope)) return respond(std::move(*refusal));

    if (route->path == "/api/publish") return publish(request, std::move(respond));
    if (route->path == "/api/broadcast") return broadcast(request, std::move(respond));
    if (route->path == "/api/send") return send(request, std::move(respond));
    if (route->path == "/api/batch") return batch(request, std::move(respond));
    if (route->path == "/api/history") return history(request, std::move(respond));
    if (route->path == "/api/presence") return presence(request, false, std::move(respond));
    if (route->path == "/api/presence/stats") return presence(request, true, std::move(respond));
    if (route->path == "/api/disconnect") return disconnect(request, std::move(respond));
    if (route->path == "/api/online") return onlineUsers(request, std::move(respond));
    if (route->path == "/api/nodes") return nodes(std::move(respond));
    if (route->path == "/api/channels") return respond(channels());
    if (route->path == "/api/info") return respond(info());
    respond(metrics());
}

void HttpApi::serveStaticFiles(std::shared_ptr<const StaticFiles> files) {
    staticFiles_ = std::move(files);
}

namespace {

// A page (a static file, the admin console's) answers GET and HEAD only.
ApiResponse pageOrError(const ApiRequest& request, std::optional<ApiResponse> page, const char* missing) {
    if (!page) return HttpApi::error(ApiErrorCode::NotFound, missing);
    if (request.method != "GET" && request.method != "HEAD") {
        ApiResponse response = HttpApi::error(ApiErrorCode::MethodNotAllowed, "method not allowed");
        response.allow = "GET, HEAD";
        return response;
    }
    return std::move(*page);
}

}  // namespace

ApiResponse HttpApi::staticFile(const ApiRequest& request, const ListenerRoutes& routes) const {
    // Only where browsers connect: the internal API listener has no pages.
    auto file = staticFiles_ && routes.websocket ? staticFiles_->find(request.path) : std::nullopt;
    return pageOrError(request, std::move(file), "no such endpoint");
}

ApiResponse HttpApi::adminConsole(const ApiRequest& request) const {
    return pageOrError(request, adminConsolePage(request.path), "no such page");
}

std::optional<ApiResponse> HttpApi::authorize(const ApiRequest& request, unsigned scope) const {
    auto credentials = node_.credentials().current();
    const auto& keys = credentials->apiKeys;
    if (keys.empty()) {
        if (request.fromLoopback) return std::nullopt;
        return error(ApiErrorCode::Forbidden, "no API key is configured: the API answers loopback clients only");
    }
    constexpr std::string_view kBearer = "bearer ";  // the scheme is case-insensitive (RFC 9110)
    std::string_view scheme = std::string_view(request.authorization).substr(0, kBearer.size());
    bool isBearer = scheme.size() == kBearer.size() &&
                    std::equal(scheme.begin(), scheme.end(), kBearer.begin(),
                               [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; });
    if (!isBearer) return error(ApiErrorCode::Unauthorized, "missing \"Authorization: Bearer <api key>\"");
    std::string_view presented = std::string_view(request.authorization).substr(kBearer.size());
    // Every key is compared, whichever matches: the time taken says nothing about which one did.
    const ApiKey* matched = nullptr;
    for (const auto& key : keys)
        if (constantTimeEquals(presented, key.key) && matched == nullptr) matched = &key;
    if (matched == nullptr) return error(ApiErrorCode::Unauthorized, "invalid API key");
    if ((matched->scopes & scope) != scope) {
        spdlog::debug("API key \"{}\" refused {} {}: it lacks the {} scope", matched->name, request.method,
                      request.path, scopeName(scope));
        return error(ApiErrorCode::MissingScope,
                     "this API key lacks the \"" + std::string(scopeName(scope)) + "\" scope");
    }
    return std::nullopt;
}

void HttpApi::publish(const ApiRequest& request, ApiRespond respond) {
    auto planned = isJsonContentType(request.contentType) ? planSimplePublish(node_, request) : std::nullopt;
    if (!planned) planned = planPublish(node_, request);
    if (auto* refusal = std::get_if<ApiResponse>(&*planned)) return respond(std::move(*refusal));
    PublishPlan& plan = std::get<PublishPlan>(*planned);
    runIdempotent(request, plan.key, std::move(respond), [&](ApiRespond respond) {
        if (plan.wait)
            return publishReported(node_, std::move(plan.publication), plan.wait, request, std::move(respond));
        node_.publish(std::move(plan.publication), [respond = std::move(respond)](PublishResult result) {
            if (auto* failure = std::get_if<BrokerError>(&result))
                return respond(error(failure->code, failure->message));
            ApiResponse response;
            response.body = publicationBody(*std::get<Published>(result).publication);
            response.wasPublish = true;
            respond(std::move(response));
        });
    });
}

void HttpApi::broadcast(const ApiRequest& request, ApiRespond respond) {
    auto parsed = parseBody(request);
    if (auto* refusal = std::get_if<ApiResponse>(&parsed)) return respond(std::move(*refusal));
    const json& body = std::get<json>(parsed);
    auto key = idempotencyKeyOf(request, body);
    if (auto* refusal = std::get_if<ApiResponse>(&key)) return respond(std::move(*refusal));
    auto channelsIt = body.find("channels");
    if (channelsIt == body.end()) return respond(error(ApiErrorCode::MissingField, "\"channels\" is required"));
    const json& channels = *channelsIt;
    if (!channels.is_array() || channels.empty())
        return respond(error(ApiErrorCode::WrongType, "\"channels\" must be a non-empty array of strings"));
    if (channels.size() > kMaxBroadcastChannels)
        return respond(error(ApiErrorCode::WrongType, "\"channels\" may name at most 1000 channels"));
    for (const auto& channel : channels)
        if (!channel.is_string())
            return respond(error(ApiErrorCode::WrongType, "\"channels\" must be an array of strings"));
    auto data = body.find("data");
    if (data == body.end()) return respond(error(ApiErrorCode::MissingField, "\"data\" is required"));
    std::optional<int> explicitQos;
    if (body.contains("qos") && !body["qos"].is_null()) {
        auto qos = qosOf(body, 0);
        if (auto* refusal = std::get_if<ApiResponse>(&qos)) return respond(std::move(*refusal));
        explicitQos = std::get<int>(qos);
    }

    runIdempotent(request, std::get<std::optional<std::string>>(key), std::move(respond), [&](ApiRespond respond) {
        std::string payload = data->dump();  // encoded once, shared by every channel
        std::vector<BatchItem> items;
        items.reserve(channels.size());
        for (const auto& name : channels) {
            const auto& channel = name.get_ref<const std::string&>();
            if (auto refusal = checkChannel(node_, channel)) {
                items.push_back({channel, std::move(*refusal)});
                continue;
            }
            PublishRequest publication = publishRequest(channel, payload);
            publication.qos = explicitQos.value_or(node_.config().namespaceFor(channel)->default_qos);
            items.push_back({channel, std::move(publication)});
        }
        publishEach(node_, std::move(items), std::move(respond));
    });
}

void HttpApi::batch(const ApiRequest& request, ApiRespond respond) {
    auto parsed = parseBody(request);
    if (auto* refusal = std::get_if<ApiResponse>(&parsed)) return respond(std::move(*refusal));
    const json& body = std::get<json>(parsed);
    auto key = idempotencyKeyOf(request, body);
    if (auto* refusal = std::get_if<ApiResponse>(&key)) return respond(std::move(*refusal));
    auto list = body.find("publications");
    if (list == body.end()) return respond(error(ApiErrorCode::MissingField, "\"publications\" is required"));
    if (!list->is_array() || list->empty())
        return respond(error(ApiErrorCode::WrongType, "\"publications\" must be a non-empty array of objects"));
    if (list->size() > kMaxBatchPublications)
        return respond(error(ApiErrorCode::WrongType, "\"publications\" may hold at most 1000 publications"));

    // Malformed elements fail the whole request, before anything is published.
    std::vector<BatchItem> items;
    items.reserve(list->size());
    for (std::size_t i = 0; i < list->size(); ++i) {
        const json& element = (*list)[i];
        std::string where = "publications[" + std::to_string(i) + "]";
        if (!element.is_object()) return respond(error(ApiErrorCode::WrongType, where + " must be an object"));
        auto channel = element.find("channel");
        if (channel == element.end())
            return respond(error(ApiErrorCode::MissingField, where + ": \"channel\" is required"));
        if (!channel->is_string())
            return respond(error(ApiErrorCode::WrongType, where + ": \"channel\" must be a string"));
        auto data = element.find("data");
        if (data == element.end()) return respond(error(ApiErrorCode::MissingField, where + ": \"data\" is required"));
        const auto& name = channel->get_ref<const std::string&>();
        if (auto refusal = checkChannel(node_, name)) {
            items.push_back({name, std::move(*refusal)});
            continue;
        }
        auto qos = qosOf(element, node_.config().namespaceFor(name)->default_qos);
        if (auto* refusal = std::get_if<ApiResponse>(&qos)) return respond(std::move(*refusal));
        PublishRequest publication = publishRequest(name, data->dump());
        publication.qos = std::get<int>(qos);
        items.push_back({name, std::move(publication)});
    }
    runIdempotent(request, std::get<std::optional<std::string>>(key), std::move(respond),
                  [&](ApiRespond respond) { publishEach(node_, std::move(items), std::move(respond)); });
}

void HttpApi::runIdempotent(const ApiRequest& request, const std::optional<std::string>& key, ApiRespond respond,
                            const std::function<void(ApiRespond)>& perform) {
    if (!key) return perform(std::move(respond));
    using Outcome = IdempotencyCache::Outcome;
    // Whichever of the waiter and the completion below is used calls it, once.
    auto shared = std::make_shared<ApiRespond>(std::move(respond));
    auto begun = idempotency_->begin(request.path, *key, IdempotencyCache::fingerprint(request.body),
                                     [shared](const IdempotencyCache::Response& first) { (*shared)(replayOf(first)); });
    switch (begun.outcome) {
        case Outcome::Replay: return (*shared)(replayOf(begun.response));
        case Outcome::Conflict:
            return (*shared)(
                error(ApiErrorCode::Conflict, "this idempotency key was used with a different request body"));
        case Outcome::Wait: return;  // the waiter answers when the first request with this key does
        case Outcome::Proceed: break;
    }
    perform([cache = idempotency_, shared, scope = request.path, key = *key](ApiResponse response) {
        IdempotencyCache::Response stored{response.status, response.contentType, response.body};
        // Only successes are remembered: after a failure the client may retry with the same key.
        if (response.status >= 200 && response.status < 300)
            cache->complete(scope, key, std::move(stored));
        else
            cache->abandon(scope, key, stored);
        (*shared)(std::move(response));
    });
}

void HttpApi::send(const ApiRequest& request, ApiRespond respond) {
    auto parsed = parseBody(request);
    if (auto* refusal = std::get_if<ApiResponse>(&parsed)) return respond(std::move(*refusal));
    const json& body = std::get<json>(parsed);
    auto key = idempotencyKeyOf(request, body);
    if (auto* refusal = std::get_if<ApiResponse>(&key)) return respond(std::move(*refusal));
    auto user = body.find("user");
    if (user == body.end()) return respond(error(ApiErrorCode::MissingField, "\"user\" is required"));
    if (!user->is_string()) return respond(error(ApiErrorCode::WrongType, "\"user\" must be a string"));
    std::string channel = personalChannel(user->get_ref<const std::string&>());
    if (channel.empty())
        return respond(error(ApiErrorCode::WrongType, "\"user\" must be 1 to 240 letters, digits or _-.:@/=+!#"));
    auto data = body.find("data");
    if (data == body.end()) return respond(error(ApiErrorCode::MissingField, "\"data\" is required"));
    auto qos = qosOf(body, node_.config().channel_defaults.default_qos);
    if (auto* refusal = std::get_if<ApiResponse>(&qos)) return respond(std::move(*refusal));
    auto wait = waitOf(body, std::get<int>(qos));
    if (auto* refusal = std::get_if<ApiResponse>(&wait)) return respond(std::move(*refusal));

    PublishRequest publication = publishRequest(std::move(channel), data->dump());
    publication.qos = std::get<int>(qos);
    runIdempotent(request, std::get<std::optional<std::string>>(key), std::move(respond), [&](ApiRespond respond) {
        // Every connection of the user holds the user's personal channel; the report counts them.
        publishReported(node_, std::move(publication), std::get<std::optional<WaitForAcks>>(wait), request,
                        [respond = std::move(respond), user = user->get<std::string>(),
                         stored = node_.inboxEnabled()](ApiResponse response) {
                            if (response.status == 200) {
                                json body = json::parse(response.body);
                                body.erase("channel");
                                body.erase("offset");
                                body.erase("epoch");
                                body["user"] = user;
                                body["stored"] = stored;
                                response.body = body.dump();
                            }
                            respond(std::move(response));
                        });
    });
}

void HttpApi::history(const ApiRequest& request, ApiRespond respond) {
    auto parameters = QueryParameters::parse(request.query);
    if (!parameters) return respond(error(ApiErrorCode::WrongType, "the query string is malformed"));
    auto channel = parameters->get("channel");
    if (!channel) return respond(error(ApiErrorCode::MissingField, "\"channel\" is required"));
    if (auto refusal = checkChannel(node_, *channel)) return respond(std::move(*refusal));
    HistoryQuery query{0, kDefaultHistoryLimit, false};
    if (auto since = parameters->get("since")) {
        auto value = parseUnsigned(*since, kMaxSafeInteger);
        if (!value) return respond(error(ApiErrorCode::WrongType, "\"since\" must be an integer from 0 to 2^53"));
        query.since = *value;
    }
    if (auto limit = parameters->get("limit")) {
        auto value = parseUnsigned(*limit, kMaxHistoryLimit);
        if (!value) return respond(error(ApiErrorCode::WrongType, "\"limit\" must be an integer from 0 to 1000"));
        query.limit = static_cast<std::size_t>(*value);
    }
    if (auto reverse = parameters->get("reverse")) {
        if (*reverse != "true" && *reverse != "false")
            return respond(error(ApiErrorCode::WrongType, "\"reverse\" must be true or false"));
        query.reverse = *reverse == "true";
    }
    node_.history(*channel, query, [respond = std::move(respond), name = *channel](auto result) {
        if (auto* failure = std::get_if<BrokerError>(&result)) return respond(error(failure->code, failure->message));
        ApiResponse response;
        response.body = encodeHistoryBody(name, std::get<HistoryPage>(result));
        respond(std::move(response));
    });
}

void HttpApi::presence(const ApiRequest& request, bool stats, ApiRespond respond) {
    auto parameters = QueryParameters::parse(request.query);
    if (!parameters) return respond(error(ApiErrorCode::WrongType, "the query string is malformed"));
    auto channel = parameters->get("channel");
    if (!channel) return respond(error(ApiErrorCode::MissingField, "\"channel\" is required"));
    if (auto refusal = checkChannel(node_, *channel)) return respond(std::move(*refusal));
    if (!node_.presenceEnabled(*channel))
        return respond(error(ApiErrorCode::NoPresence, "this channel's namespace keeps no presence"));
    auto answer = [respond = std::move(respond), name = *channel](auto encode) mutable {
        return [respond = std::move(respond), name, encode](auto result) {
            if (auto* failure = std::get_if<BrokerError>(&result))
                return respond(error(failure->code, failure->message));
            ApiResponse response;
            response.body = encode(name, result);
            respond(std::move(response));
        };
    };
    if (stats)
        return node_.presenceStats(*channel, answer([](const std::string& name, const auto& result) {
            return encodePresenceStats(std::nullopt, name, std::get<PresenceStats>(result), false);
        }));
    node_.presence(*channel, answer([](const std::string& name, const auto& result) {
        return encodePresence(std::nullopt, name, std::get<std::vector<PresenceEntry>>(result), false);
    }));
}

void HttpApi::userRoute(const ApiRequest& request, ApiRespond respond) {
    std::string_view rest = std::string_view(request.path).substr(kUsersPrefix.size());
    std::string_view method = request.method == "HEAD" ? std::string_view("GET") : request.method;
    auto refuseMethod = [&](const char* allow) {
        ApiResponse response = error(ApiErrorCode::MethodNotAllowed, "method not allowed");
        response.allow = allow;
        respond(std::move(response));
    };
    if (rest == "status" && method != "GET") {
        if (method != "POST") return refuseMethod("POST");
        if (auto refusal = authorize(request, kScopeRead)) return respond(std::move(*refusal));
        return usersStatus(request, std::move(respond));
    }
    // A user id's '/' and '#' arrive percent-encoded: a raw '/' ends the id.
    auto slash = rest.find('/');
    std::string_view tail = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
    if (!tail.empty() && tail != "/inbox") return respond(error(ApiErrorCode::NotFound, "not found"));
    if (tail.empty() && method != "GET") return refuseMethod("GET");
    if (!tail.empty() && method != "GET" && method != "DELETE") return refuseMethod("GET, DELETE");
    if (auto refusal = authorize(request, method == "DELETE" ? kScopeAdmin : kScopeRead))
        return respond(std::move(*refusal));
    auto user = QueryParameters::decodePathSegment(rest.substr(0, slash));
    if (!user || personalChannel(*user).empty())
        return respond(error(ApiErrorCode::WrongType, "the user id must be 1 to 240 letters, digits or _-.:@/=+!#"));
    if (tail.empty()) return userStatus(*user, std::move(respond));
    if (!node_.inboxEnabled()) return respond(error(ApiErrorCode::NotFound, "inboxes are off (inbox.max_messages 0)"));
    if (method == "DELETE") return clearInbox(*user, std::move(respond));
    inbox(*user, std::move(respond));
}

void HttpApi::inbox(const std::string& user, ApiRespond respond) {
    HistoryQuery everything{0, node_.config().inbox.max_messages, false};
    node_.history(personalChannel(user), everything, [this, user, respond = std::move(respond)](auto result) mutable {
        if (auto* failure = std::get_if<BrokerError>(&result)) return respond(error(failure->code, failure->message));
        auto page = std::get<HistoryPage>(std::move(result));
        json messages = json::array();
        for (const PublicationPtr& publication : page.publications)
            messages.push_back(json{{"offset", publication->offset},
                                    {"mid", publication->mid},
                                    {"ts", publication->timestampMs},
                                    {"qos", publication->qos},
                                    {"data", json::parse(publication->data, nullptr, false)}});
        node_.afterCompletion([this, user, epoch = page.position.epoch, messages = std::move(messages),
                               respond = std::move(respond)]() mutable {
            node_.inboxDevices(
                user, [user, epoch, messages = std::move(messages), respond = std::move(respond)](auto listed) mutable {
                    if (auto* failure = std::get_if<BrokerError>(&listed))
                        return respond(error(failure->code, failure->message));
                    json devices = json::array();
                    for (const InboxDevice& device : std::get<std::vector<InboxDevice>>(listed))
                        // A cursor of an earlier epoch is before every message kept now.
                        devices.push_back(json{{"device", device.device},
                                               {"cursor", device.cursor.epoch == epoch ? device.cursor.offset : 0},
                                               {"last_seen", device.lastSeenMs}});
                    respond(ok(json{{"user", user},
                                    {"epoch", epoch},
                                    {"messages", std::move(messages)},
                                    {"devices", std::move(devices)}}));
                });
        });
    });
}

void HttpApi::clearInbox(const std::string& user, ApiRespond respond) {
    node_.clearInbox(user, [user, respond = std::move(respond)](std::optional<BrokerError> failure) {
        if (failure) return respond(error(failure->code, failure->message));
        respond(ok(json{{"user", user}, {"cleared", true}}));
    });
}

void HttpApi::userStatus(const std::string& user, ApiRespond respond) {
    node_.userConnections(user, [respond = std::move(respond)](auto result) {
        if (auto* failure = std::get_if<BrokerError>(&result)) return respond(error(failure->code, failure->message));
        json connections = json::array();
        for (const PresenceEntry& entry : std::get<std::vector<PresenceEntry>>(result))
            connections.push_back(json{{"client", entry.client},
                                       {"device", entry.device},
                                       {"node", entry.node},
                                       {"connected_at", entry.connectedAtMs}});
        bool online = !connections.empty();
        respond(ok(json{{"online", online}, {"connections", std::move(connections)}}));
    });
}

void HttpApi::usersStatus(const ApiRequest& request, ApiRespond respond) {
    auto parsed = parseBody(request);
    if (auto* refusal = std::get_if<ApiResponse>(&parsed)) return respond(std::move(*refusal));
    const json& body = std::get<json>(parsed);
    auto list = body.find("users");
    if (list == body.end()) return respond(error(ApiErrorCode::MissingField, "\"users\" is required"));
    if (!list->is_array() || list->empty() || list->size() > kMaxStatusUsers)
        return respond(error(ApiErrorCode::WrongType, "\"users\" must be an array of 1 to 1000 user ids"));
    std::vector<std::string> users;
    users.reserve(list->size());
    for (const json& user : *list) {
        if (!user.is_string()) return respond(error(ApiErrorCode::WrongType, "\"users\" must hold strings"));
        users.push_back(user.get<std::string>());
    }
    node_.usersOnline(users, [respond = std::move(respond), users](auto result) {
        if (auto* failure = std::get_if<BrokerError>(&result)) return respond(error(failure->code, failure->message));
        const auto& online = std::get<std::vector<bool>>(result);
        std::vector<std::pair<std::string, bool>> status;
        status.reserve(users.size());
        for (std::size_t i = 0; i < users.size(); ++i) status.emplace_back(users[i], online[i]);
        ApiResponse response;
        response.body = encodeStatus(std::nullopt, status, false);
        respond(std::move(response));
    });
}

void HttpApi::onlineUsers(const ApiRequest& request, ApiRespond respond) {
    auto parameters = QueryParameters::parse(request.query);
    if (!parameters) return respond(error(ApiErrorCode::WrongType, "the query string is malformed"));
    std::size_t limit = kDefaultOnlinePage;
    if (auto text = parameters->get("limit")) {
        auto value = parseUnsigned(*text, kMaxOnlinePage);
        if (!value || *value == 0)
            return respond(error(ApiErrorCode::WrongType, "\"limit\" must be an integer from 1 to 10000"));
        limit = static_cast<std::size_t>(*value);
    }
    node_.onlineUsers(parameters->get("cursor").value_or(""), limit, [respond = std::move(respond)](auto result) {
        if (auto* failure = std::get_if<BrokerError>(&result)) return respond(error(failure->code, failure->message));
        auto& page = std::get<PresenceUserPage>(result);
        json body{{"users", std::move(page.users)}};
        if (!page.cursor.empty()) body["cursor"] = std::move(page.cursor);
        respond(ok(body));
    });
}

void HttpApi::disconnect(const ApiRequest& request, ApiRespond respond) {
    auto parsed = parseBody(request);
    if (auto* refusal = std::get_if<ApiResponse>(&parsed)) return respond(std::move(*refusal));
    const json& body = std::get<json>(parsed);
    auto user = body.find("user");
    auto client = body.find("client");
    auto reconnect = body.find("reconnect");
    if (user == body.end() && client == body.end())
        return respond(error(ApiErrorCode::MissingField, "\"user\" or \"client\" is required"));
    if (user != body.end() && client != body.end())
        return respond(error(ApiErrorCode::WrongType, "name either \"user\" or \"client\", not both"));
    DisconnectTarget target;
    if (user != body.end()) {
        // The names a session may have: those of its personal channel.
        if (!user->is_string() || personalChannel(user->get_ref<const std::string&>()).empty())
            return respond(error(ApiErrorCode::WrongType, "\"user\" must be 1 to 240 letters, digits or _-.:@/=+!#"));
        target.user = user->get<std::string>();
    } else {
        if (!client->is_string() || client->get_ref<const std::string&>().empty() ||
            client->get_ref<const std::string&>().size() > kMaxClientId)
            return respond(error(ApiErrorCode::WrongType, "\"client\" must be a connection id (1 to 128 characters)"));
        target.client = client->get<std::string>();
    }
    if (reconnect != body.end() && !reconnect->is_null()) {
        if (!reconnect->is_boolean())
            return respond(error(ApiErrorCode::WrongType, "\"reconnect\" must be true or false"));
        target.reconnect = reconnect->get<bool>();
    }
    node_.disconnect(target);
    ApiResponse response = ok(json{{"status", "sent"}, {"scope", "cluster"}});
    response.status = 202;
    respond(std::move(response));
}

void HttpApi::nodes(ApiRespond respond) {
    node_.nodes([respond = std::move(respond)](std::variant<std::vector<NodeHeartbeat>, BrokerError> result) {
        if (auto* failure = std::get_if<BrokerError>(&result))
            return respond(error(ApiErrorCode::Unavailable, failure->message));
        json list = json::array();
        for (const NodeHeartbeat& heartbeat : std::get<std::vector<NodeHeartbeat>>(result)) {
            json entry{{"name", heartbeat.name}};
            // Written by wspush nodes (Server::sendHeartbeat); a field a node did not send is left out.
            BoundedJson<json> info = parseBoundedJson<json>(heartbeat.info);
            if (info.error == JsonParseError::None && info.value.is_object())
                for (const char* key : {"address", "version", "connections", "subscriptions", "uptime_s"})
                    if (auto it = info.value.find(key); it != info.value.end()) entry[key] = *it;
            list.push_back(std::move(entry));
        }
        respond(ok(json{{"nodes", std::move(list)}}));
    });
}

namespace {

json shardsJson(const std::vector<EngineShardHealth>& shards) {
    json list = json::array();
    for (const auto& shard : shards)
        list.push_back(json{{"shard", shard.shard}, {"ok", shard.ok}, {"error", shard.error}});
    return list;
}

bool allShardsOk(const std::vector<EngineShardHealth>& shards) {
    return std::all_of(shards.begin(), shards.end(), [](const EngineShardHealth& shard) { return shard.ok; });
}

}  // namespace

ApiResponse HttpApi::health() const {
    // The process is alive whatever the engine does: always 200, "degraded" names the shards.
    std::vector<EngineShardHealth> shards = node_.engineHealth();
    if (allShardsOk(shards)) return ok(json{{"status", "ok"}});
    return ok(json{{"status", "degraded"}, {"redis", shardsJson(shards)}});
}

ApiResponse HttpApi::readiness() const {
    ApiResponse response;
    if (draining_.load(std::memory_order_relaxed)) {
        response = ok(json{{"status", "draining"}});
        response.status = 503;
        return response;
    }
    std::vector<EngineShardHealth> shards = node_.engineHealth();
    if (allShardsOk(shards)) return ok(json{{"status", "ready"}});
    response = ok(json{{"status", "unavailable"}, {"redis", shardsJson(shards)}});
    response.status = 503;
    return response;
}

ApiResponse HttpApi::channels() const {
    json list = json::array();
    for (const auto& [name, subscribers] : node_.channels())
        list.push_back(json{{"channel", name}, {"subscribers", subscribers}});
    // This node's subscribers only; /api/nodes is the view of the cluster.
    return ok(json{{"scope", "node"}, {"channels", std::move(list)}});
}

ApiResponse HttpApi::info() const {
    NodeTotals totals = node_.totals();
    double uptime = std::chrono::duration<double>(node_.uptime()).count();
    std::vector<const LoopMetrics*> loops = node_.loopMetrics();
    std::uint64_t messagesIn = 0;
    std::uint64_t messagesOut = 0;
    for (const LoopMetrics* loop : loops) {
        messagesIn += loop->messagesIn.get();
        messagesOut += loop->messagesOut.get();
    }
    return ok(json{{"node", node_.name()},
                   {"version", Node::version()},
                   {"uptime_seconds", uptime},
                   {"connections", totals.websocketConnections},
                   {"sessions", totals.sessions},
                   {"channels", totals.channels},
                   {"publications", totals.publications},
                   {"messages_in", messagesIn},
                   {"messages_out", messagesOut},
                   {"threads", loops.size()},
                   {"engine", node_.engineName()},
                   {"shards", shardsJson(node_.engineHealth())},
                   {"scope", "node"}});
}

ApiResponse HttpApi::metrics() const {
    ApiResponse response;
    response.contentType = "text/plain; version=0.0.4";
    response.body = renderPrometheus(node_.loopMetrics(), node_.totals());
    for (const auto& render : extraMetrics_) response.body += render();
    return response;
}

}  // namespace wspush
