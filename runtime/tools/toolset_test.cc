#include "runtime/tools/toolset.h"

#include <gtest/gtest.h>

#include "runtime/tools/testutil.h"

namespace kiln::tools {
namespace {

using nlohmann::json;

TEST(ToolSet, UnknownToolsAndBadArgumentsBecomeToolErrors) {
  testutil::TempDir d;
  auto ws = workspace_path::Workspace::Open(d.path());
  ASSERT_TRUE(ws.ok());
  auto set = ToolSet::Make(*ws, {}, {"read"}, {{"type", "object"}});
  ASSERT_TRUE(set.ok());
  ASSERT_EQ((*set)->defs().size(), 2u);                   // read, and submit always
  auto o = (*set)->Call("shell", {{"command", "true"}});  // not allowed in this run
  EXPECT_TRUE(o.is_error);
  EXPECT_EQ(o.content, "unknown tool 'shell'; the tools are: read, submit");
  o = (*set)->Call("read", {{"path", 3}});
  EXPECT_TRUE(o.is_error);
  EXPECT_EQ(o.content, "invalid arguments for read:\n- /path: expected string, got integer");
  o = (*set)->Call("read", {{"path", "x"}, {"force", true}});
  EXPECT_NE(o.content.find("property 'force' is not allowed"), std::string::npos);
}

TEST(ToolSet, SubmitValidatesAgainstTheRoleSchema) {
  testutil::TempDir d;
  auto ws = workspace_path::Workspace::Open(d.path());
  json schema = {{"type", "object"},
                 {"properties", {{"verdict", {{"enum", {"approve", "reject"}}}}}},
                 {"required", {"verdict"}}};
  auto set = ToolSet::Make(*ws, {}, {}, schema);
  ASSERT_TRUE(set.ok());
  auto o = (*set)->Call("submit", {{"verdict", "maybe"}});
  EXPECT_TRUE(o.is_error);
  EXPECT_FALSE(o.submitted);
  EXPECT_NE(o.content.find("/verdict: \"maybe\" is not one of [\"approve\",\"reject\"]"),
            std::string::npos)
      << o.content;
  o = (*set)->Call("submit", {{"verdict", "approve"}});
  EXPECT_FALSE(o.is_error);
  ASSERT_TRUE(o.submitted);
  EXPECT_EQ((*o.submitted)["verdict"], "approve");
}

TEST(ToolSet, NonObjectResultSchemasAreWrapped) {
  testutil::TempDir d;
  auto ws = workspace_path::Workspace::Open(d.path());
  auto set = ToolSet::Make(*ws, {}, {}, {{"type", "string"}, {"minLength", 1}});
  ASSERT_TRUE(set.ok());
  auto o = (*set)->Call("submit", {{"result", "done"}});
  ASSERT_TRUE(o.submitted);
  EXPECT_EQ(*o.submitted, "done");
}

}  // namespace
}  // namespace kiln::tools
