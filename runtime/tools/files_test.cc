// Tests of the file tools: read, write, edit (and the shared helpers in tool.h).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/tools/edit.h"
#include "runtime/tools/read.h"
#include "runtime/tools/testutil.h"
#include "runtime/tools/write.h"

namespace kiln {
namespace {

using nlohmann::json;

class FileTools : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ws = workspace_path::Workspace::Open(dir_.path());
    ASSERT_TRUE(ws.ok());
    ws_ = std::make_unique<workspace_path::Workspace>(std::move(*ws));
    limits_.max_output_bytes = 4096;
  }
  testutil::TempDir dir_, outside_;
  std::unique_ptr<workspace_path::Workspace> ws_;
  tool::Limits limits_;
};

TEST_F(FileTools, ReadNumbersLinesAndPages) {
  std::string text;
  for (int i = 1; i <= 10; ++i) text += "line " + std::to_string(i) + "\n";
  dir_.Write("f.txt", text);
  auto o = tool_read::Run(*ws_, limits_, {{"path", "f.txt"}, {"offset", 3}, {"limit", 2}});
  EXPECT_FALSE(o.is_error) << o.content;
  EXPECT_EQ(
      o.content,
      "     3\tline 3\n     4\tline 4\n[lines 3-4 of 10; use offset and limit to read more]\n");
}

TEST_F(FileTools, ReadMissingBinaryAndPastTheEnd) {
  auto o = tool_read::Run(*ws_, limits_, {{"path", "missing.txt"}});
  EXPECT_TRUE(o.is_error);
  EXPECT_EQ(o.content, "no such file: 'missing.txt'");
  dir_.Write("bin", std::string("\x7f"
                                "ELF\0\0\x01",
                                7));
  o = tool_read::Run(*ws_, limits_, {{"path", "bin"}});
  EXPECT_TRUE(o.is_error);
  EXPECT_NE(o.content.find("binary file 'bin' (7 bytes)"), std::string::npos);
  dir_.Write("short", "one\n");
  o = tool_read::Run(*ws_, limits_, {{"path", "short"}, {"offset", 5}});
  EXPECT_TRUE(o.is_error);
  EXPECT_NE(o.content.find("past the end"), std::string::npos);
}

TEST_F(FileTools, ReadRefusesEscapesAndFifos) {
  outside_.Write("secret", "s");
  ASSERT_EQ(::symlink((outside_ / "secret").c_str(), (dir_ / "link").c_str()), 0);
  auto o = tool_read::Run(*ws_, limits_, {{"path", "link"}});
  EXPECT_TRUE(o.is_error);
  EXPECT_NE(o.content.find("escapes the workspace"), std::string::npos);
  o = tool_read::Run(*ws_, limits_, {{"path", "../x"}});
  EXPECT_TRUE(o.is_error);
  ASSERT_EQ(::mkfifo((dir_ / "fifo").c_str(), 0600), 0);
  o = tool_read::Run(*ws_, limits_, {{"path", "fifo"}});  // must not block
  EXPECT_TRUE(o.is_error);
  EXPECT_NE(o.content.find("not a regular file"), std::string::npos);
}

TEST_F(FileTools, ReadCapsHugeFiles) {
  std::string text;
  for (int i = 0; i < 3000; ++i) text += std::string(100, 'a' + i % 26) + "\n";
  dir_.Write("big.txt", text);
  auto o = tool_read::Run(*ws_, limits_, {{"path", "big.txt"}});
  EXPECT_TRUE(o.truncated);
  EXPECT_LE(o.content.size(), 4096u + 64);
  EXPECT_NE(o.content.find("of 3000; use offset"), std::string::npos);
}

TEST_F(FileTools, WriteCreatesDirectoriesAndKeepsMode) {
  auto o = tool_write::Run(*ws_, {{"path", "a/b/c.txt"}, {"content", "hi"}});
  EXPECT_FALSE(o.is_error) << o.content;
  EXPECT_EQ(dir_.Read("a/b/c.txt"), "hi");
  ASSERT_EQ(::chmod((dir_ / "a/b/c.txt").c_str(), 0750), 0);
  o = tool_write::Run(*ws_, {{"path", "a/b/c.txt"}, {"content", "again"}});
  EXPECT_FALSE(o.is_error);
  struct stat st;
  ASSERT_EQ(::stat((dir_ / "a/b/c.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0750u);
  EXPECT_EQ(dir_.Read("a/b/c.txt"), "again");
}

TEST_F(FileTools, WriteReplacesASymlinkInsteadOfWritingThroughIt) {
  outside_.Write("target", "original");
  ASSERT_EQ(::symlink((outside_ / "target").c_str(), (dir_ / "link").c_str()), 0);
  auto o = tool_write::Run(*ws_, {{"path", "link"}, {"content", "new"}});
  EXPECT_FALSE(o.is_error) << o.content;
  EXPECT_EQ(outside_.Read("target"), "original");
  EXPECT_EQ(dir_.Read("link"), "new");
  o = tool_write::Run(*ws_, {{"path", (outside_ / "x")}, {"content", "no"}});
  EXPECT_TRUE(o.is_error);
  EXPECT_NE(::access((outside_ / "x").c_str(), F_OK), 0);
}

TEST_F(FileTools, EditReplacesAUniqueString) {
  dir_.Write("f.cc", "int a = 1;\nint b = 2;\n");
  auto o = tool_edit::Run(*ws_, limits_,
                          {{"path", "f.cc"}, {"old_string", "b = 2"}, {"new_string", "b = 3"}});
  EXPECT_FALSE(o.is_error) << o.content;
  EXPECT_EQ(dir_.Read("f.cc"), "int a = 1;\nint b = 3;\n");
}

TEST_F(FileTools, EditRefusesAmbiguousAndMissingStrings) {
  dir_.Write("f.cc", "x = 1;\ny = 2;\nx = 1;\n");
  auto o = tool_edit::Run(*ws_, limits_,
                          {{"path", "f.cc"}, {"old_string", "x = 1"}, {"new_string", "x = 5"}});
  EXPECT_TRUE(o.is_error);
  EXPECT_EQ(o.content,
            "old_string occurs 2 times in 'f.cc' (lines 1, 3); include more surrounding text to "
            "make it unique, or set replace_all");
  EXPECT_EQ(dir_.Read("f.cc"), "x = 1;\ny = 2;\nx = 1;\n");
  o = tool_edit::Run(*ws_, limits_, {{"path", "f.cc"}, {"old_string", "z"}, {"new_string", "w"}});
  EXPECT_TRUE(o.is_error);
  EXPECT_EQ(o.content, "old_string was not found in 'f.cc'");
  o = tool_edit::Run(
      *ws_, limits_,
      {{"path", "f.cc"}, {"old_string", "x = 1"}, {"new_string", "x = 5"}, {"replace_all", true}});
  EXPECT_FALSE(o.is_error);
  EXPECT_EQ(dir_.Read("f.cc"), "x = 5;\ny = 2;\nx = 5;\n");
}

TEST_F(FileTools, EditRefusesBinaryAndMissingFiles) {
  dir_.Write("bin", std::string("a\0b", 3));
  auto o =
      tool_edit::Run(*ws_, limits_, {{"path", "bin"}, {"old_string", "a"}, {"new_string", "b"}});
  EXPECT_TRUE(o.is_error);
  EXPECT_NE(o.content.find("binary file"), std::string::npos);
  o = tool_edit::Run(*ws_, limits_, {{"path", "nope"}, {"old_string", "a"}, {"new_string", "b"}});
  EXPECT_EQ(o.content, "no such file: 'nope'");
}

TEST(ToolHelpers, CapHeadTailCutsOnUtf8Boundaries) {
  std::string s;
  for (int i = 0; i < 100; ++i) s += "é";  // 200 bytes
  bool truncated = false;
  std::string out = tool::CapHeadTail(s, 51, &truncated);
  EXPECT_TRUE(truncated);
  EXPECT_EQ(tool::SanitizeUtf8(out), out);  // no sequence was split
  EXPECT_NE(out.find("bytes omitted"), std::string::npos);
  EXPECT_FALSE(tool::LooksBinary("plain text\n"));
  EXPECT_TRUE(tool::LooksBinary(std::string("a\0", 2)));
}

}  // namespace
}  // namespace kiln
