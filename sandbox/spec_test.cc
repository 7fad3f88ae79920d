#include "sandbox/spec.h"

#include <gtest/gtest.h>

namespace kiln::sandbox {
namespace {

TEST(ParseBindTest, AcceptsModes) {
  auto b = ParseBind("/src:/dst");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->source, "/src");
  EXPECT_EQ(b->dest, "/dst");
  EXPECT_FALSE(b->read_only);
  EXPECT_TRUE(ParseBind("/a:/b:ro")->read_only);
  EXPECT_FALSE(ParseBind("/a:/b:rw")->read_only);
}

TEST(ParseBindTest, RejectsMalformedWithTheReason) {
  struct Case {
    const char* text;
    const char* reason;
  } cases[] = {
      {"/only", "expected SRC:DST"},          {"/a:relative", "not an absolute path"},
      {"/a:/b:rx", "unknown mode 'rx'"},      {"/a:/x/../etc", "contains '..'"},
      {"/a:/proc", "managed by the sandbox"}, {":/b", "expected SRC:DST"},
      {"/a:/b:ro:extra", "expected SRC:DST"},
  };
  for (const auto& c : cases) {
    auto r = ParseBind(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_NE(r.error().message().find(c.reason), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().message().find(std::string("'") + c.text + "'"), std::string::npos)
        << r.error().message();
  }
}

TEST(ParseTmpfsTest, SizeIsOptional) {
  EXPECT_EQ(ParseTmpfs("/scratch")->size_bytes, 64ull << 20);
  EXPECT_EQ(ParseTmpfs("/scratch:1M")->size_bytes, 1ull << 20);
  auto bad = ParseTmpfs("/scratch:lots");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("cannot parse 'lots'"), std::string::npos);
  EXPECT_FALSE(ParseTmpfs("/scratch:0").ok());
  EXPECT_FALSE(ParseTmpfs("scratch").ok());
}

TEST(ParseEnvTest, CopiesOrTakesValue) {
  EXPECT_EQ(*ParseEnv("A=b=c"), "A=b=c");
  setenv("KILN_TEST_ENV", "v1", 1);
  EXPECT_EQ(*ParseEnv("KILN_TEST_ENV"), "KILN_TEST_ENV=v1");
  EXPECT_FALSE(ParseEnv("KILN_TEST_UNSET_VARIABLE").ok());
  EXPECT_FALSE(ParseEnv("=x").ok());
  EXPECT_FALSE(ParseEnv("1A=x").ok());
}

Spec Valid() {
  Spec s;
  s.argv = {"true"};
  return s;
}

TEST(ValidateTest, AcceptsDefaults) { EXPECT_TRUE(Validate(Valid()).ok()); }

TEST(ValidateTest, RejectsEachProblem) {
  auto expect_error = [](Spec s, const char* needle) {
    auto st = Validate(s);
    ASSERT_FALSE(st.ok()) << needle;
    EXPECT_NE(st.error().message().find(needle), std::string::npos) << st.error().message();
  };
  Spec s = Valid();
  s.argv.clear();
  expect_error(s, "no command given");
  s = Valid();
  s.argv = {"/proc/self/exe"};
  expect_error(s, "refusing to execute a /proc path");
  s = Valid();
  s.binds = {{"/a", "/x"}, {"/b", "/x/"}};
  expect_error(s, "mounted twice");
  s = Valid();
  s.workspace = "/w";
  s.tmpfs = {{"/workspace", 1}};
  expect_error(s, "mounted twice");
  s = Valid();
  s.workdir = "rel";
  expect_error(s, "--workdir");
  s = Valid();
  s.uid = 70000;
  expect_error(s, "below 65536");
  s = Valid();
  s.limits.cpus = 0;
  expect_error(s, "--cpus");
  s = Valid();
  s.use_cgroup = false;
  s.limits.pids.reset();
  expect_error(s, "--no-cgroup conflicts");
  s.limits.memory_bytes.reset();
  EXPECT_TRUE(Validate(s).ok())
      << "without a cgroup, only the pids limit remains (as RLIMIT_NPROC)";
  s.limits.pids = 64;
  EXPECT_TRUE(Validate(s).ok());
  s = Valid();
  s.id = "../x";
  expect_error(s, "--id");
  s = Valid();
  s.hostname = std::string(65, 'h');
  expect_error(s, "--hostname");
}

}  // namespace
}  // namespace kiln::sandbox
