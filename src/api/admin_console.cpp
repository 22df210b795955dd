#include "api/admin_console.h"

#include "api/embedded_file.h"

namespace wspush {
namespace {

constexpr std::string_view kRoot = "/admin";

std::string_view contentTypeOf(std::string_view name) {
    if (name.ends_with(".html")) return "text/html; charset=utf-8";
    if (name.ends_with(".js")) return "text/javascript; charset=utf-8";
    if (name.ends_with(".css")) return "text/css; charset=utf-8";
    if (name.ends_with(".svg")) return "image/svg+xml";
    return "application/octet-stream";
}

// The page holds an admin key while it is open: no script but its own may run (no inline code,
// so injected markup stays inert), it talks to this origin only, no other site may frame it (a
// clickjacked "disconnect"), and neither caches nor Referer headers keep what it showed.
void addPageHeaders(ApiResponse& response) {
    response.cacheControl = "no-store";
    response.headers = {
        {"Content-Security-Policy",
         "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; frame-ancestors 'none'"},
        {"Referrer-Policy", "no-referrer"},
    };
}

}  // namespace

bool isAdminConsolePath(std::string_view path) {
    return path == kRoot || (path.starts_with(kRoot) && path[kRoot.size()] == '/');
}

std::optional<ApiResponse> adminConsolePage(std::string_view path) {
    ApiResponse response;
    addPageHeaders(response);
    if (path == kRoot) {
        // The page's relative links (console.js, console.css) resolve against the URL ending in '/'.
        response.status = 308;
        response.location = "/admin/";
        response.contentType = "text/plain; charset=utf-8";
        return response;
    }
    std::string_view name = path.substr(kRoot.size());
    if (name == "/") name = "/index.html";
    for (const EmbeddedFile& file : adminConsoleFiles()) {
        if (file.path != name) continue;
        response.contentType = contentTypeOf(name);
        response.body = file.body;
        return response;
    }
    return std::nullopt;
}

}  // namespace wspush
