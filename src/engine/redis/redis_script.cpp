#include "engine/redis/redis_script.h"

#include <array>
#include <cstdio>
#include <utility>

#include <openssl/evp.h>

namespace wspush {

namespace {

// Redis names a script by the SHA-1 of its source, in lowercase hex.
std::string sha1Hex(const std::string& text) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int length = 0;
    if (EVP_Digest(text.data(), text.size(), digest.data(), &length, EVP_sha1(), nullptr) != 1) {
        // Without the SHA every run takes the NOSCRIPT fallback: slower, still correct.
        return std::string(40, '0');
    }
    std::string hex;
    hex.reserve(2 * length);
    static constexpr char kDigits[] = "0123456789abcdef";
    for (unsigned int i = 0; i < length; ++i) {
        hex += kDigits[digest[i] >> 4];
        hex += kDigits[digest[i] & 0xf];
    }
    return hex;
}

}  // namespace

RedisScript::RedisScript(std::string source)
    : source_(std::make_shared<const std::string>(std::move(source))), sha1_(sha1Hex(*source_)) {}

std::vector<std::string> RedisScript::command(std::vector<std::string> keys, std::vector<std::string> args,
                                              bool cached) const {
    std::vector<std::string> argv;
    argv.reserve(3 + keys.size() + args.size());
    argv.emplace_back(cached ? "EVALSHA" : "EVAL");
    argv.push_back(cached ? sha1_ : *source_);
    argv.push_back(std::to_string(keys.size()));
    for (auto& key : keys) argv.push_back(std::move(key));
    for (auto& arg : args) argv.push_back(std::move(arg));
    return argv;
}

void RedisScript::run(RedisConnection& connection, std::vector<std::string> keys, std::vector<std::string> args,
                      RedisReplyHandler done) const {
    std::vector<std::string> argv = command(std::move(keys), std::move(args));

    // The fallback keeps argv (only the script changes) and the connection weakly: a connection
    // gone in the meantime fails the command like a stopped one.
    auto evalsha = argv;
    connection.command(std::move(evalsha),
                       [weak = connection.weak_from_this(), source = source_, argv = std::move(argv),
                        done = std::move(done)](RedisResult result) mutable {
                           auto* reply = std::get_if<RedisReply>(&result);
                           if (reply == nullptr || !reply->isErrorWith("NOSCRIPT")) {
                               done(std::move(result));
                               return;
                           }
                           auto connection = weak.lock();
                           if (!connection) {
                               done(RedisFailure{"stopped"});
                               return;
                           }
                           // EVAL also caches the script again, so the next EVALSHA finds it.
                           argv[0] = "EVAL";
                           argv[1] = *source;
                           connection->command(std::move(argv), std::move(done));
                       });
}

void RedisScript::load(RedisConnection& connection, RedisReplyHandler done) const {
    connection.command({"SCRIPT", "LOAD", *source_}, std::move(done));
}

}  // namespace wspush
