// Files compiled into wspushd by cmake/embed_files.cmake, so that a package or an image needs
// nothing beside the binary to serve them.
#pragma once

#include <span>
#include <string_view>

namespace wspush {

struct EmbeddedFile {
    std::string_view path;  // relative to its folder, with a leading '/': "/index.html"
    std::string_view body;
};

// The admin console's files, from src/api/admin_console/ (generated: admin_console_files.cpp).
std::span<const EmbeddedFile> adminConsoleFiles();

}  // namespace wspush
