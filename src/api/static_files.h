// A folder of files served over plain HTTP (config `static_files.root`): the SDK's demo page and
// small admin pages. Socket-free, like HttpApi, which asks it for paths no API route owns.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <variant>

#include "api/http_api.h"

namespace wspush {

class StaticFiles {
public:
    // Startup bounds: the whole folder is held in memory.
    static constexpr std::size_t kMaxFiles = 4096;
    static constexpr std::size_t kMaxTotalBytes = 64 * 1024 * 1024;

    // Reads every file under `root` (names starting with '.' excepted), or says why it cannot.
    // Reading once up front keeps disk I/O off the event loops and makes path traversal
    // impossible by construction: a request can only name a key of the map.
    static std::variant<StaticFiles, std::string> load(const std::filesystem::path& root);

    // The answer to GET or HEAD `path` (percent-encoded, without the query), or nullopt when no
    // file or folder has that name.
    std::optional<ApiResponse> find(std::string_view path) const;

    std::size_t fileCount() const { return fileCount_; }  // files read: an index.html once

private:
    struct File {
        std::string contentType;
        std::string body;
    };
    std::unordered_map<std::string, File> files_;  // "/css/site.css"; a folder's index.html also as "/css/"
    std::unordered_set<std::string> folders_;      // "/css", answered with a redirect to "/css/"
    std::size_t fileCount_ = 0;
};

}  // namespace wspush
