#include "api/static_files.h"

#include <fstream>
#include <iterator>
#include <system_error>

namespace wspush {
namespace {

std::string_view contentTypeFor(const std::filesystem::path& file) {
    static const std::unordered_map<std::string_view, std::string_view> kTypes{
        {".html", "text/html; charset=utf-8"},
        {".htm", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".map", "application/json"},
        {".txt", "text/plain; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".jpg", "image/jpeg"},
        {".jpeg", "image/jpeg"},
        {".gif", "image/gif"},
        {".ico", "image/x-icon"},
        {".webp", "image/webp"},
        {".woff2", "font/woff2"},
        {".wasm", "application/wasm"},
    };
    auto it = kTypes.find(file.extension().string());
    return it == kTypes.end() ? "application/octet-stream" : it->second;
}

// "%20" → ' '; nullopt for a malformed escape or an encoded NUL.
std::optional<std::string> percentDecoded(std::string_view path) {
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    std::string decoded;
    decoded.reserve(path.size());
    for (std::size_t i = 0; i < path.size(); ++i) {
        if (path[i] != '%') {
            decoded += path[i];
            continue;
        }
        if (i + 2 >= path.size() || hex(path[i + 1]) < 0 || hex(path[i + 2]) < 0) return std::nullopt;
        char byte = static_cast<char>(hex(path[i + 1]) * 16 + hex(path[i + 2]));
        if (byte == '\0') return std::nullopt;
        decoded += byte;
        i += 2;
    }
    return decoded;
}

bool isHidden(const std::filesystem::path& relative) {
    for (const auto& part : relative)
        if (part.string().starts_with('.')) return true;
    return false;
}

}  // namespace

std::variant<StaticFiles, std::string> StaticFiles::load(const std::filesystem::path& root) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(root, ec)) return "\"" + root.string() + "\" is not a readable folder";
    StaticFiles files;
    std::size_t totalBytes = 0;
    for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
        fs::path relative = it->path().lexically_relative(root);
        if (isHidden(relative)) {
            if (it->is_directory(ec)) it.disable_recursion_pending();
            continue;
        }
        std::string urlPath = "/" + relative.generic_string();
        if (it->is_directory(ec)) {
            files.folders_.insert(urlPath);
            continue;
        }
        if (!it->is_regular_file(ec)) continue;
        if (files.fileCount_ == kMaxFiles)
            return "\"" + root.string() + "\" holds more than " + std::to_string(kMaxFiles) + " files";
        std::ifstream in(it->path(), std::ios::binary);
        std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (!in.good() && !in.eof()) return "cannot read \"" + it->path().string() + "\"";
        totalBytes += body.size();
        if (totalBytes > kMaxTotalBytes)
            return "\"" + root.string() + "\" holds more than " + std::to_string(kMaxTotalBytes >> 20) + " MiB";
        File file{std::string(contentTypeFor(it->path())), std::move(body)};
        if (relative.filename() == "index.html") {
            std::string folder = urlPath.substr(0, urlPath.size() - std::string_view("index.html").size());
            files.files_.emplace(folder, file);
        }
        files.files_.emplace(std::move(urlPath), std::move(file));
        ++files.fileCount_;
    }
    if (ec) return "cannot list \"" + root.string() + "\": " + ec.message();
    return files;
}

std::optional<ApiResponse> StaticFiles::find(std::string_view path) const {
    auto decoded = percentDecoded(path);
    if (!decoded) return std::nullopt;
    if (auto file = files_.find(*decoded); file != files_.end()) {
        ApiResponse response;
        response.contentType = file->second.contentType;
        response.body = file->second.body;
        response.cacheControl = "no-cache";  // revalidate: a restart may have changed the file
        return response;
    }
    if (folders_.contains(*decoded)) {
        // Relative links in the folder's index.html resolve against the URL ending in '/'.
        ApiResponse response;
        response.status = 308;
        response.location = std::string(path) + "/";
        response.contentType = "text/plain; charset=utf-8";
        return response;
    }
    return std::nullopt;
}

}  // namespace wspush
