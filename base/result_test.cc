#include "base/result.h"

#include <cerrno>

#include <gtest/gtest.h>

namespace kiln {
namespace {

Result<int> Half(int v) {
  if (v % 2 != 0) return Error::Invalid("odd value " + std::to_string(v));
  return v / 2;
}

Result<int> Quarter(int v) {
  KILN_ASSIGN_OR_RETURN(int h, Half(v));
  KILN_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

Status CheckEven(int v) {
  KILN_TRY(Half(v));
  return Ok();
}

TEST(ResultTest, PropagatesFirstError) {
  EXPECT_EQ(*Quarter(8), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), "odd value 3");
  EXPECT_EQ(r.error().code(), Error::Code::kInvalidArgument);
  EXPECT_TRUE(CheckEven(4).ok());
  EXPECT_FALSE(CheckEven(5).ok());
}

TEST(ResultTest, SysErrorNamesCallAndReason) {
  Error e = Error::Sys("mkdir('/sys/fs/cgroup/pids/kiln-42', 0700)", EACCES);
  EXPECT_EQ(e.message(), "mkdir('/sys/fs/cgroup/pids/kiln-42', 0700): Permission denied");
  EXPECT_EQ(e.code(), Error::Code::kPermission);
  EXPECT_EQ(e.sys_errno(), EACCES);
  EXPECT_EQ(e.Wrap("creating cgroup").message(),
            "creating cgroup: mkdir('/sys/fs/cgroup/pids/kiln-42', 0700): Permission denied");
  EXPECT_EQ(Error::Sys("open('/x')", ENOENT).code(), Error::Code::kNotFound);
}

}  // namespace
}  // namespace kiln
