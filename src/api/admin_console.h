// The admin console (docs/ops.md, "Admin console"): a static page at /admin/ that drives the HTTP
// API from the browser with a key typed into it. Socket-free, like HttpApi, which asks it for the
// /admin paths when admin.console is on.
#pragma once

#include <optional>
#include <string_view>

#include "api/http_api.h"

namespace wspush {

// "/admin" and everything below it: paths the console owns once it is on.
bool isAdminConsolePath(std::string_view path);

// The answer to GET or HEAD `path` (without the query): a page, or the redirect from "/admin" to
// "/admin/"; nullopt when the console has no such file.
std::optional<ApiResponse> adminConsolePage(std::string_view path);

}  // namespace wspush
