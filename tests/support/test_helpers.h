// Small helpers shared by the integration tests.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/daemon_process.h"
#include "support/http_test_client.h"
#include "support/ws_test_client.h"

namespace wspush::testing {

// Polls `condition` every 10 ms until it holds or `timeout` passes; returns its last value.
inline bool eventually(const std::function<bool()>& condition,
                       std::chrono::milliseconds timeout = std::chrono::milliseconds(3000)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!condition()) {
        if (std::chrono::steady_clock::now() >= deadline) return condition();
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
}

// A metric of the daemon's /metrics, or -1 when it cannot be read.
inline double readMetric(unsigned short apiPort, const std::string& name) {
    HttpResult metrics = httpGet(apiPort, "/metrics");
    if (metrics.status != 200) return -1;
    return metricValue(metrics.body, name).value_or(-1);
}

// "type" of a message, "" if it has none; keeps EXPECT lines short.
inline std::string typeOf(const nlohmann::json& message) {
    return message.value("type", "");
}

// The error code of an `error` reply, 0 for anything else.
inline int errorCodeOf(const std::optional<nlohmann::json>& reply) {
    if (!reply || typeOf(*reply) != "error") return 0;
    return reply->value("code", 0);
}

// Subscribes `client` to `channel`; fails (with the reply) unless the reply is `subscribed`.
inline ::testing::AssertionResult subscribeOk(WsTestClient& client, const std::string& channel) {
    auto reply = client.subscribe(channel);
    if (!reply)
        return ::testing::AssertionFailure() << "no reply to subscribe " << channel << ": " << client.lastError();
    if (typeOf(*reply) != "subscribed")
        return ::testing::AssertionFailure() << "subscribe " << channel << ": " << reply->dump();
    return ::testing::AssertionSuccess();
}

}  // namespace wspush::testing
