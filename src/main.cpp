// wspushd: the composition root. Parses flags, loads the config, sets up logging, runs the server.
#include <sys/resource.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "auth/credentials.h"
#include "server.h"
#include "wspush/config.h"

namespace {

constexpr int kExitConfigError = 2;

const char* kUsage = R"(usage: wspushd [options]
  --config PATH        JSON config file (default: built-in defaults)
  --check-config       validate the config (file + environment + flags) and exit
  --port N             override the port of "listen"
  --threads N          override "threads"
  --log-level LEVEL    override "log.level"
  --static-root DIR    override "static_files.root": serve DIR's files over HTTP (demo page)
  --echo               conformance mode: /ws echoes every message (tests only)
  --ready-file PATH    write {"pid","port","api_port"} here once listening
  --version, --help
Every config key can also be set with an environment variable, e.g.
WSPUSH_WEBSOCKET_PING_INTERVAL=15 (see docs/configuration.md).
)";

// Escapes the message of a JSON log line (%v), so that quotes or control bytes cannot break it.
class JsonEscapedMessage final : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
        static constexpr char kHex[] = "0123456789abcdef";
        for (char ch : std::string_view(msg.payload.data(), msg.payload.size())) {
            auto byte = static_cast<unsigned char>(ch);
            if (ch == '"' || ch == '\\') {
                dest.push_back('\\');
                dest.push_back(ch);
            } else if (byte < 0x20) {
                const char escape[] = {'\\', 'u', '0', '0', kHex[byte >> 4], kHex[byte & 15]};
                dest.append(escape, escape + sizeof escape);
            } else {
                dest.push_back(ch);
            }
        }
    }
    std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<JsonEscapedMessage>(); }
};

void setUpLogging(const wspush::LogConfig& log) {
    auto logger = std::make_shared<spdlog::logger>("wspush", std::make_shared<spdlog::sinks::stdout_sink_mt>());
    if (log.format == "json") {
        auto formatter = std::make_unique<spdlog::pattern_formatter>();
        formatter->add_flag<JsonEscapedMessage>('*').set_pattern(
            R"({"ts":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","msg":"%*"})");
        logger->set_formatter(std::move(formatter));
    } else {
        logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %v");
    }
    logger->set_level(spdlog::level::from_str(log.level));
    logger->flush_on(spdlog::level::info);
    spdlog::set_default_logger(std::move(logger));
}

// Each connection is a descriptor; take everything the hard limit allows.
void raiseDescriptorLimit() {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
}

bool readFile(const std::string& path, std::string& text) {
    std::ifstream in(path);
    if (!in) return false;
    std::ostringstream buffer;
    buffer << in.rdbuf();
    text = buffer.str();
    return true;
}

bool parseUnsigned(const std::string& text, unsigned long max, unsigned long& out) {
    if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos || text.size() > 10) return false;
    out = std::stoul(text);
    return out <= max;
}

}  // namespace

int main(int argc, char** argv) {
    std::string configPath;
    bool checkOnly = false;
    wspush::ServerOptions options;
    std::optional<unsigned long> port, threads;
    std::optional<std::string> logLevel, staticRoot;

    std::vector<std::string> args(argv + 1, argv + argc);
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        auto value = [&](const char* flag) -> std::string {
            if (i + 1 >= args.size()) {
                std::cerr << "wspushd: " << flag << " needs a value\n" << kUsage;
                std::exit(kExitConfigError);
            }
            return args[++i];
        };
        if (arg == "--config")
            configPath = value("--config");
        else if (arg == "--check-config")
            checkOnly = true;
        else if (arg == "--echo")
            options.echo = true;
        else if (arg == "--ready-file")
            options.readyFile = value("--ready-file");
        else if (arg == "--log-level")
            logLevel = value("--log-level");
        else if (arg == "--static-root")
            staticRoot = value("--static-root");
        else if (arg == "--port" || arg == "--threads") {
            std::string text = value(arg.c_str());
            unsigned long number = 0;
            if (!parseUnsigned(text, arg == "--port" ? 65535 : 64, number)) {
                std::cerr << "wspushd: " << arg << ": invalid value \"" << text << "\"\n";
                return kExitConfigError;
            }
            (arg == "--port" ? port : threads) = number;
        } else if (arg == "--version") {
            std::cout << "wspushd " << WSPUSH_VERSION << '\n';
            return 0;
        } else if (arg == "--help" || arg == "-h") {
            std::cout << kUsage;
            return 0;
        } else {
            std::cerr << "wspushd: unknown option \"" << arg << "\"\n" << kUsage;
            return kExitConfigError;
        }
    }

    std::string text;
    if (!configPath.empty() && !readFile(configPath, text)) {
        std::cerr << "wspushd: cannot read config file \"" << configPath << "\"\n";
        return kExitConfigError;
    }
    auto result = wspush::parseConfig(text, [](const char* name) -> const char* { return std::getenv(name); });
    if (result.error) {
        std::cerr << "wspushd: invalid config" << (configPath.empty() ? "" : " in " + configPath) << ": "
                  << result.error->describe() << '\n';
        return kExitConfigError;
    }
    wspush::Config config = std::move(*result.config);
    // Flags are the last word, after the file and the environment.
    if (port) config.listen.port = static_cast<unsigned short>(*port);
    if (threads) config.threads = static_cast<unsigned>(*threads);
    if (staticRoot) config.static_files.root = *staticRoot;
    if (logLevel) {
        static const std::set<std::string> kLevels{"trace", "debug", "info", "warn", "error", "critical", "off"};
        if (!kLevels.contains(*logLevel)) {
            std::cerr << "wspushd: --log-level: invalid level \"" << *logLevel << "\"\n";
            return kExitConfigError;
        }
        config.log.level = *logLevel;
    }
    if (checkOnly) {
        // The key files the token settings name are part of the configuration too.
        if (auto credentials = wspush::loadCredentials(config);
            auto* problem = std::get_if<wspush::ConfigError>(&credentials)) {
            std::cerr << "wspushd: invalid config" << (configPath.empty() ? "" : " in " + configPath) << ": "
                      << problem->describe() << '\n';
            return kExitConfigError;
        }
        std::cout << "config ok\n";
        return 0;
    }
    if (!configPath.empty()) {
        options.reloadConfig = [configPath]() -> std::optional<wspush::Config> {
            std::string text;
            if (!readFile(configPath, text)) {
                spdlog::error("reload refused: cannot read config file \"{}\"", configPath);
                return std::nullopt;
            }
            auto reread = wspush::parseConfig(text, [](const char* name) -> const char* { return std::getenv(name); });
            if (reread.error) {
                spdlog::error("reload refused: invalid config in {}: {}", configPath, reread.error->describe());
                return std::nullopt;
            }
            return std::move(reread.config);
        };
    }

    setUpLogging(config.log);
    raiseDescriptorLimit();
    wspush::Server server(std::move(config), std::move(options));
    if (!server.open()) return 1;
    return server.run();
}
