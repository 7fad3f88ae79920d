#include "controller/images/recipe.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "controller/images/build.h"
#include "tests/support/temp_dir.h"

namespace kiln::images {
namespace {

namespace fs = std::filesystem;
using kiln::testing::TempDir;

class RecipeTest : public ::testing::Test {
 protected:
  Result<Recipe> Load(const std::string& name, const std::string& yaml) {
    tmp_.Write(name + ".yaml", yaml);
    return LoadRecipe(tmp_.path(), name);
  }
  std::string Error(const std::string& yaml) {
    auto r = Load("bad", yaml);
    EXPECT_FALSE(r.ok()) << yaml;
    return r.ok() ? "" : r.error().message();
  }
  TempDir tmp_;
};

TEST_F(RecipeTest, ReadsEveryField) {
  tmp_.Write("files/gitconfig", "[user]\n");
  auto r = Load("tools", R"(suite: bookworm
snapshot: 20250520T000000Z
architecture: amd64
variant: essential
packages: [bash, git=1:2.39.5-0+deb12u2]
sources:
  - deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian/ bookworm main contrib
files:
  - {source: files/gitconfig, dest: /etc/gitconfig, mode: "0600"}
users:
  - {name: builder, uid: 1000}
env:
  LANG: C.UTF-8
  DEPTH: 3
workdir: /src
user: builder
test: git --version
source_date_epoch: 1600000000
)");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->suite, "bookworm");
  EXPECT_EQ(r->variant, "essential");
  EXPECT_EQ(r->packages, (std::vector<std::string>{"bash", "git=1:2.39.5-0+deb12u2"}));
  ASSERT_EQ(r->sources.size(), 1u);
  EXPECT_EQ(r->sources[0].uri, "http://snapshot.debian.org/archive/debian/20250520T000000Z")
      << "a snapshot points deb.debian.org at that moment";
  EXPECT_EQ(r->sources[0].Line(),
            "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg check-valid-until=no] "
            "http://snapshot.debian.org/archive/debian/20250520T000000Z bookworm main contrib");
  ASSERT_EQ(r->files.size(), 1u);
  EXPECT_EQ(r->files[0].source, tmp_ / "files/gitconfig");
  EXPECT_EQ(r->files[0].mode, 0600u);
  ASSERT_EQ(r->users.size(), 1u);
  EXPECT_EQ(r->users[0].gid, 1000u);
  EXPECT_EQ(r->users[0].home, "/home/builder");
  EXPECT_EQ(r->env, (std::vector<std::string>{"LANG=C.UTF-8", "DEPTH=3"}));
  EXPECT_EQ(r->source_date_epoch, 1600000000u);
  EXPECT_EQ(r->Config()["workdir"], "/src");
}

TEST_F(RecipeTest, DefaultsComeFromTheHost) {
  auto r = Load("min", "packages: [bash]\n");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_FALSE(r->suite.empty());
  EXPECT_FALSE(r->architecture.empty());
  EXPECT_EQ(r->variant, "apt");
  ASSERT_FALSE(r->sources.empty());
  for (const AptSource& s : r->sources) EXPECT_TRUE(s.suite.starts_with(r->suite)) << s.Line();
  EXPECT_EQ(r->source_date_epoch, 1700000000u);
}

TEST_F(RecipeTest, BadFieldsNameFileLineAndField) {
  std::string f = tmp_ / "bad.yaml";
  EXPECT_EQ(Error("packages: [bash]\npackagez: [git]\n"),
            f + ":2: 'packagez' is not a known field");
  EXPECT_NE(Error("packages: bash\n").find(f + ":1: 'packages'"), std::string::npos);
  EXPECT_NE(Error("packages: [bash]\nsnapshot: yesterday\n").find(f + ":2: 'snapshot'"),
            std::string::npos);
  EXPECT_NE(Error("packages: [bash]\nvariant: huge\n").find("'variant' must be one of"),
            std::string::npos);
  EXPECT_NE(Error("packages: [bash]\nsources: [\"http://x bookworm\"]\n")
                .find("an apt source starts with 'deb '"),
            std::string::npos);
  EXPECT_NE(Error("packages: [bash]\nsources: [\"deb ftp://x bookworm main\"]\n")
                .find("http://, https:// or file:/"),
            std::string::npos);
  EXPECT_NE(Error("packages: [\"bash; rm -rf /\"]\n").find("is not a package name"),
            std::string::npos);
  tmp_.Write("f", "x");
  EXPECT_NE(Error("packages: [bash]\nfiles:\n  - {source: f, dest: /etc/x, mode: rw}\n")
                .find(f + ":3: 'files[0].mode'"),
            std::string::npos);
  EXPECT_NE(
      Error("packages: [bash]\nfiles:\n  - {source: f, dest: /etc/../../x}\n").find("without '..'"),
      std::string::npos);
  EXPECT_NE(
      Error("packages: [bash]\nfiles:\n  - {source: missing, dest: /x}\n").find("is not a file"),
      std::string::npos);
  EXPECT_NE(Error("packages: [bash]\nusers:\n  - {name: Root!, uid: 5}\n").find("'users[0].name'"),
            std::string::npos);
  EXPECT_NE(Error("packages: [bash]\nusers:\n  - {name: x, uid: 0}\n").find("'users[0].uid'"),
            std::string::npos);
  EXPECT_NE(Error("packages: [bash]\nenv: {\"A-B\": 1}\n").find("not a variable name"),
            std::string::npos);
  EXPECT_NE(Error("suite: bookworm\n").find("names no packages"), std::string::npos);
  EXPECT_NE(Error("packages: [bash\n").find(f + ":"), std::string::npos) << "YAML syntax";
  auto missing = LoadRecipe(tmp_.path(), "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find("nope.yaml' does not exist"), std::string::npos);
}

TEST_F(RecipeTest, FlattenMergesOntoTheBase) {
  auto base = Load("base",
                   "suite: bookworm\npackages: [bash, git]\nenv: {A: 1, B: 2}\n"
                   "workdir: /w\ntest: 'true'\n");
  auto child = Load("child", "from: base\npackages: [git, python3]\nenv: {B: 3}\n");
  ASSERT_TRUE(base.ok() && child.ok());
  auto flat = Flatten(*base, *child);
  ASSERT_TRUE(flat.ok()) << flat.error().message();
  EXPECT_EQ(flat->packages, (std::vector<std::string>{"bash", "git", "python3"}));
  EXPECT_EQ(flat->env, (std::vector<std::string>{"A=1", "B=3"}));
  EXPECT_EQ(flat->workdir, "/w");
  EXPECT_EQ(flat->test, "") << "the base's test is the base's";
  EXPECT_EQ(flat->suite, "bookworm");

  auto other = Load("other", "from: base\nsuite: trixie\npackages: [x]\n");
  ASSERT_TRUE(other.ok());
  auto clash = Flatten(*base, *other);
  ASSERT_FALSE(clash.ok());
  EXPECT_NE(clash.error().message().find(tmp_ / "other.yaml" + ":2: 'suite' is 'trixie'"),
            std::string::npos)
      << clash.error().message();
}

TEST_F(RecipeTest, HostSourcesReadBothFormats) {
  tmp_.Write(
      "etc/apt/sources.list",
      "# comment\ndeb http://a.example/debian bookworm main\ndeb-src http://a.example/debian "
      "bookworm main\n");
  tmp_.Write("etc/apt/sources.list.d/debian.sources",
             "Types: deb deb-src\nURIs: http://b.example/debian/\nSuites: bookworm "
             "bookworm-updates\nComponents: main contrib\nSigned-By: /k.gpg\n\nTypes: deb\n"
             "URIs: http://c.example\nSuites: x\nComponents: main\nEnabled: no\n");
  tmp_.Write("etc/apt/sources.list.d/off.list.disabled", "deb http://d.example x main\n");
  auto sources = HostSources(tmp_.path());
  ASSERT_TRUE(sources.ok()) << sources.error().message();
  std::vector<std::string> lines;
  for (const AptSource& s : *sources) lines.push_back(s.Line());
  EXPECT_EQ(lines,
            (std::vector<std::string>{
                "deb http://a.example/debian bookworm main",
                "deb [signed-by=/k.gpg] http://b.example/debian bookworm main contrib",
                "deb [signed-by=/k.gpg] http://b.example/debian bookworm-updates main contrib",
            }));
}

TEST_F(RecipeTest, BuildNamesACycleAndAnUnreachableMirrorBeforeRunningAnything) {
  tmp_.Write("a.yaml", "from: b\npackages: [x]\n");
  tmp_.Write("b.yaml", "from: a\npackages: [y]\n");
  auto store = Store::Open(tmp_ / "state");
  ASSERT_TRUE(store.ok());
  BuildOptions o;
  o.recipes_dir = tmp_.path();
  o.state_dir = tmp_ / "state";
  auto cycle = Build(*store, "a", o);
  ASSERT_FALSE(cycle.ok());
  EXPECT_NE(cycle.error().message().find("in a circle: a -> b -> a"), std::string::npos)
      << cycle.error().message();

  // Port 9 (discard) on loopback: nothing listens, the connection is refused.
  tmp_.Write("offline.yaml",
             "suite: bookworm\npackages: [bash]\nsources:\n  - deb http://127.0.0.1:9/debian "
             "bookworm main\n");
  auto offline = Build(*store, "offline", o);
  ASSERT_FALSE(offline.ok());
  EXPECT_NE(offline.error().message().find(tmp_ / "offline.yaml" +
                                           ":3: the apt source 'deb http://127.0.0.1:9/debian "
                                           "bookworm main' does not answer"),
            std::string::npos)
      << offline.error().message();
  EXPECT_FALSE(store->Lookup("offline").ok());
  EXPECT_TRUE(fs::is_empty(store->root() + "/tmp")) << "nothing half-built is left";
}

}  // namespace
}  // namespace kiln::images
