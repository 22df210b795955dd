#include "api/static_files.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

namespace wspush {
namespace {

namespace fs = std::filesystem;

class StaticFilesTest : public ::testing::Test {
protected:
    void SetUp() override {
        root_ = fs::temp_directory_path() / ("wspush-static-" + std::to_string(::getpid()) + "-" +
                                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(root_);
        fs::create_directories(root_);
    }
    void TearDown() override { fs::remove_all(root_); }

    void write(const fs::path& relative, const std::string& content) {
        fs::create_directories((root_ / relative).parent_path());
        std::ofstream(root_ / relative, std::ios::binary) << content;
    }

    StaticFiles load() {
        auto loaded = StaticFiles::load(root_);
        auto* files = std::get_if<StaticFiles>(&loaded);
        if (files == nullptr) {
            ADD_FAILURE() << std::get<std::string>(loaded);
            return {};
        }
        return std::move(*files);
    }

    fs::path root_;
};

TEST_F(StaticFilesTest, ServesFilesWithTheirContentType) {
    write("index.html", "<h1>hi</h1>");
    write("js/app.js", "let x = 1;");
    write("data.bin", std::string("\0\1\2", 3));
    StaticFiles files = load();
    EXPECT_EQ(files.fileCount(), 3u);  // index.html once, though it is served as itself and as "/"

    auto page = files.find("/index.html");
    ASSERT_TRUE(page);
    EXPECT_EQ(page->status, 200u);
    EXPECT_EQ(page->body, "<h1>hi</h1>");
    EXPECT_EQ(page->contentType, "text/html; charset=utf-8");
    EXPECT_EQ(page->cacheControl, "no-cache");

    auto script = files.find("/js/app.js");
    ASSERT_TRUE(script);
    EXPECT_EQ(script->contentType, "text/javascript; charset=utf-8");

    auto binary = files.find("/data.bin");
    ASSERT_TRUE(binary);
    EXPECT_EQ(binary->body, std::string("\0\1\2", 3));
    EXPECT_EQ(binary->contentType, "application/octet-stream");
}

TEST_F(StaticFilesTest, AFolderServesItsIndexAndRedirectsWithoutTheSlash) {
    write("index.html", "root");
    write("chat/index.html", "chat");
    StaticFiles files = load();

    auto root = files.find("/");
    ASSERT_TRUE(root);
    EXPECT_EQ(root->body, "root");
    auto chat = files.find("/chat/");
    ASSERT_TRUE(chat);
    EXPECT_EQ(chat->body, "chat");

    auto redirect = files.find("/chat");
    ASSERT_TRUE(redirect);
    EXPECT_EQ(redirect->status, 308u);
    EXPECT_EQ(redirect->location, "/chat/");
}

TEST_F(StaticFilesTest, HiddenFilesAndUnknownPathsAreNotFound) {
    write(".env", "SECRET=1");
    write(".git/config", "x");
    write("a.txt", "a");
    StaticFiles files = load();
    EXPECT_FALSE(files.find("/.env"));
    EXPECT_FALSE(files.find("/.git/config"));
    EXPECT_FALSE(files.find("/.git"));
    EXPECT_FALSE(files.find("/b.txt"));
    EXPECT_FALSE(files.find("/"));  // no index.html here
    EXPECT_TRUE(files.find("/a.txt"));
}

TEST_F(StaticFilesTest, PathsCannotClimbOutOfTheFolder) {
    write("a.txt", "a");
    std::ofstream(root_.parent_path() / "wspush-static-outside.txt") << "outside";
    StaticFiles files = load();
    EXPECT_FALSE(files.find("/../wspush-static-outside.txt"));
    EXPECT_FALSE(files.find("/%2e%2e/wspush-static-outside.txt"));
    EXPECT_FALSE(files.find("/./a.txt"));
    EXPECT_FALSE(files.find("//a.txt"));
    fs::remove(root_.parent_path() / "wspush-static-outside.txt");
}

TEST_F(StaticFilesTest, PercentEncodedNamesAreDecoded) {
    write("my page.html", "spaced");
    StaticFiles files = load();
    auto page = files.find("/my%20page.html");
    ASSERT_TRUE(page);
    EXPECT_EQ(page->body, "spaced");
    EXPECT_FALSE(files.find("/my%2"));       // truncated escape
    EXPECT_FALSE(files.find("/my%zzpage"));  // not hex
    EXPECT_FALSE(files.find("/a%00.html"));  // encoded NUL
}

TEST_F(StaticFilesTest, AMissingFolderIsAnError) {
    auto loaded = StaticFiles::load(root_ / "missing");
    ASSERT_TRUE(std::holds_alternative<std::string>(loaded));
    EXPECT_NE(std::get<std::string>(loaded).find("not a readable folder"), std::string::npos);
}

TEST_F(StaticFilesTest, TooManyFilesIsAnError) {
    for (std::size_t i = 0; i <= StaticFiles::kMaxFiles; ++i) std::ofstream(root_ / (std::to_string(i) + ".txt"));
    auto loaded = StaticFiles::load(root_);
    ASSERT_TRUE(std::holds_alternative<std::string>(loaded));
    EXPECT_NE(std::get<std::string>(loaded).find("more than 4096 files"), std::string::npos);
}

}  // namespace
}  // namespace wspush
