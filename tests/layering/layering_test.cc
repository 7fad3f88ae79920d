// kiln-layering against small trees of its own: each rule of
// docs/architecture.md broken once, and a tree that keeps them.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include "tests/support/temp_dir.h"

namespace kiln::testing {
namespace {

struct Outcome {
  int status = -1;
  std::string output;  // stdout and stderr
};

Outcome Layering(const std::string& root, const std::string& extra = "") {
  Outcome o;
  std::string cmd = std::string(KILN_LAYERING) + " '" + root + "' " + extra + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return o;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) o.output.append(buf.data(), n);
  int st = ::pclose(p);
  o.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return o;
}

constexpr char kDoc[] =
    "# map\n\n<!-- begin: the map, written by kiln-layering -->\n<!-- end: the map -->\n";

// A tree that keeps every rule: base, the sandbox on base, the runtime on
// base, a controller folder on all three, app on top; tests may reach in.
void WriteGoodTree(const TempDir& d) {
  d.Write("docs/architecture.md", kDoc);
  d.Write("base/fd.h", "#pragma once\n#include <string>\n");
  d.Write("sandbox/spec.h", "#include \"base/fd.h\"\n");
  d.Write("runtime/spec.h", "#include \"base/fd.h\"\n");
  d.Write("runtime/model/client.h", "#include \"runtime/spec.h\"\n");
  d.Write("controller/run/runner.cc",
          "#include \"sandbox/spec.h\"\n#include \"runtime/model/client.h\"\n");
  d.Write("controller/app/main.cc", "#include \"controller/run/runner.cc\"\n");
  d.Write("controller/run/runner_test.cc", "#include \"controller/app/main.cc\"\n");
}

TEST(Layering, ATreeThatKeepsTheRulesPassesOnceItsMapIsWritten) {
  TempDir d;
  WriteGoodTree(d);
  Outcome stale = Layering(d.path());
  EXPECT_EQ(stale.status, 1) << stale.output;
  EXPECT_NE(stale.output.find("the map is not the tree's"), std::string::npos) << stale.output;

  Outcome write = Layering(d.path(), "--write");
  ASSERT_EQ(write.status, 0) << write.output;
  Outcome ok = Layering(d.path());
  EXPECT_EQ(ok.status, 0) << ok.output;
  std::string doc = d.Read("docs/architecture.md");
  EXPECT_NE(doc.find("| `controller/run/` | `runtime/model/`, `sandbox/` |"), std::string::npos)
      << doc;
  EXPECT_NE(doc.find("| `base/` | nothing |"), std::string::npos) << doc;
  // A test's include is not an edge: nothing may use app/, but its test may.
  EXPECT_EQ(doc.find("| `controller/run/` | `controller/app/`"), std::string::npos) << doc;
}

TEST(Layering, EachForbiddenEdgeIsNamedWithTheIncludeBehindIt) {
  TempDir d;
  WriteGoodTree(d);
  ASSERT_EQ(Layering(d.path(), "--write").status, 0);
  d.Write("sandbox/mount.cc", "#include \"base/fd.h\"\n#include \"runtime/spec.h\"\n");
  d.Write("runtime/tools/shell.cc", "#include \"controller/run/runner.cc\"\n");
  d.Write("controller/forge/api.cc", "#include \"controller/app/main.cc\"\n");
  d.Write("base/strings.cc", "#include \"sandbox/spec.h\"\n");
  Outcome o = Layering(d.path());
  EXPECT_EQ(o.status, 1);
  for (const char* expected :
       {"sandbox/mount.cc:2: sandbox/ -> runtime/ (#include \"runtime/spec.h\") is forbidden: the "
        "sandbox uses nothing but base",
        "runtime/tools/shell.cc:1: runtime/tools/ -> controller/run/",
        "controller/forge/api.cc:1: controller/forge/ -> controller/app/",
        "base/strings.cc:1: base/ -> sandbox/"}) {
    EXPECT_NE(o.output.find(expected), std::string::npos) << expected << "\n" << o.output;
  }
}

TEST(Layering, LibgitAndSqliteStayInTheirFolders) {
  TempDir d;
  WriteGoodTree(d);
  d.Write("controller/git/repo.cc", "#include <git2.h>\n");
  d.Write("controller/store/sqlite.cc", "#include <sqlite3.h>\n");
  ASSERT_EQ(Layering(d.path(), "--write").status, 0);
  EXPECT_EQ(Layering(d.path()).status, 0);
  d.Write("controller/forge/bare.cc", "#include <git2/refs.h>\n");
  d.Write("controller/store/store.h", "#include <sqlite3.h>\n");
  ASSERT_EQ(Layering(d.path(), "--write").status, 0);
  Outcome o = Layering(d.path());
  EXPECT_EQ(o.status, 1);
  EXPECT_NE(o.output.find("controller/forge/bare.cc:1: <git2/refs.h> belongs to controller/git/ "
                          "alone"),
            std::string::npos)
      << o.output;
  EXPECT_NE(o.output.find("controller/store/store.h:1: <sqlite3.h> belongs to "
                          "controller/store/sqlite.cc alone"),
            std::string::npos)
      << o.output;
}

TEST(Layering, ACycleBetweenFoldersIsNamed) {
  TempDir d;
  WriteGoodTree(d);
  d.Write("controller/store/store.h", "#include \"controller/forge/forge.h\"\n");
  d.Write("controller/forge/forge.h", "#include \"controller/store/store.h\"\n");
  ASSERT_EQ(Layering(d.path(), "--write").status, 0);
  Outcome o = Layering(d.path());
  EXPECT_EQ(o.status, 1);
  EXPECT_NE(o.output.find("a cycle between folders: controller/forge -> controller/store -> "
                          "controller/forge"),
            std::string::npos)
      << o.output;
}

TEST(Layering, ADocumentWithoutAMapIsAnError) {
  TempDir d;
  WriteGoodTree(d);
  d.Write("docs/architecture.md", "# no map here\n");
  Outcome o = Layering(d.path());
  EXPECT_EQ(o.status, 1);
  EXPECT_NE(o.output.find("no map"), std::string::npos) << o.output;
  EXPECT_EQ(Layering(d.path(), "--bogus").status, 2);
}

}  // namespace
}  // namespace kiln::testing
