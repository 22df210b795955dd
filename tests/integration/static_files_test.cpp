// The daemon serving a static folder (static_files.root, --static-root): the SDK's demo page is
// loaded from it, and the routes the daemon owns still win.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "support/test_helpers.h"

namespace wspush::testing {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// A folder with a demo page, removed with the object.
class DemoFolder {
public:
    DemoFolder() : path_(fs::temp_directory_path() / ("wspush-demo-" + std::to_string(::getpid()))) {
        fs::create_directories(path_ / "chat");
        std::ofstream(path_ / "index.html") << "<!doctype html><title>wspush</title>";
        std::ofstream(path_ / "chat" / "index.html") << "<script src=\"./app.js\"></script>";
        std::ofstream(path_ / "chat" / "app.js") << "console.log(1)";
        std::ofstream(path_ / ".secret") << "no";
    }
    ~DemoFolder() { fs::remove_all(path_); }
    std::string path() const { return path_.string(); }

private:
    fs::path path_;
};

TEST(StaticFiles, TheDaemonServesTheFolderBesideItsOwnRoutes) {
    DemoFolder folder;
    DaemonProcess daemon(json{{"static_files", {{"root", folder.path()}}}});
    HttpTestClient http(daemon.port());

    HttpResult page = http.get("/");
    EXPECT_EQ(page.status, 200u);
    EXPECT_EQ(page.body, "<!doctype html><title>wspush</title>");
    EXPECT_EQ(page.header("Content-Type"), "text/html; charset=utf-8");
    EXPECT_EQ(page.header("Cache-Control"), "no-cache");
    EXPECT_EQ(page.header("X-Content-Type-Options"), "nosniff");

    HttpResult script = http.get("/chat/app.js");
    EXPECT_EQ(script.status, 200u);
    EXPECT_EQ(script.body, "console.log(1)");
    EXPECT_EQ(script.header("Content-Type"), "text/javascript; charset=utf-8");

    HttpResult redirect = http.get("/chat");
    EXPECT_EQ(redirect.status, 308u);
    EXPECT_EQ(redirect.header("Location"), "/chat/");

    HttpResult hidden = http.get("/.secret");
    EXPECT_EQ(hidden.status, 404u);
    EXPECT_TRUE(hidden.json().contains("error")) << hidden.body;

    HttpResult post = http.post("/chat/app.js", "x", "text/plain");
    EXPECT_EQ(post.status, 405u);
    EXPECT_EQ(post.header("Allow"), "GET, HEAD");

    // The daemon's own routes are not shadowed.
    EXPECT_EQ(http.get("/healthz").body, R"({"status":"ok"})");
    EXPECT_EQ(http.postJson("/api/publish", json{{"channel", "news"}, {"data", 1}}).status, 200u);
}

TEST(StaticFiles, TheFlagOverridesTheConfigAndTheInternalApiListenerServesNoPages) {
    DemoFolder folder;
    DaemonOptions options;
    options.extraArgs = {"--static-root", folder.path()};
    DaemonProcess daemon(json{{"api", {{"listen", "127.0.0.1:0"}}}}, options);
    HttpTestClient publicHttp(daemon.port());
    EXPECT_EQ(publicHttp.get("/chat/").body, "<script src=\"./app.js\"></script>");
    HttpTestClient apiHttp(daemon.apiPort());
    EXPECT_EQ(apiHttp.get("/chat/").status, 404u);
}

TEST(StaticFiles, WithoutARootNothingIsServed) {
    DaemonProcess daemon;
    HttpTestClient http(daemon.port());
    EXPECT_EQ(http.get("/").status, 404u);
}

TEST(StaticFiles, AMissingFolderStopsStartup) {
    CommandResult result = runDaemonCommand({"--port", "0", "--static-root", "/nonexistent/wspush-demo"});
    ASSERT_TRUE(result.exitCode) << "the daemon did not exit";
    EXPECT_EQ(*result.exitCode, 1);
    EXPECT_NE((result.out + result.err).find("static_files.root"), std::string::npos) << result.out << result.err;
}

}  // namespace
}  // namespace wspush::testing
