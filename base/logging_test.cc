#include "base/logging.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace kiln::logging {
namespace {

TEST(Logging, JsonLineCarriesTheRunId) {
  auto j = nlohmann::json::parse(
      JsonLine("2026-11-25T10:00:00.000001Z", "info", "run r1-2: sandbox r1-2-1 started"));
  EXPECT_EQ(j["ts"], "2026-11-25T10:00:00.000001Z");
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["msg"], "run r1-2: sandbox r1-2-1 started");
  EXPECT_EQ(j["run"], "r1-2");
}

TEST(Logging, JsonLineEscapesAndHasNoRunWhenNoneIsNamed) {
  std::string line = JsonLine("t", "error", "bad \"quote\"\nnew line \xff");
  EXPECT_EQ(line.find('\n'), std::string::npos);
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["msg"], "bad \"quote\"\nnew line \xef\xbf\xbd");
  EXPECT_FALSE(j.contains("run"));
  EXPECT_FALSE(
      nlohmann::json::parse(JsonLine("t", "info", "running the queue: 3")).contains("run"));
}

TEST(Logging, UnknownFormatIsRefused) {
  auto st = kiln::logging::Setup("xml");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("expected text or json"), std::string::npos);
}

}  // namespace
}  // namespace kiln::logging
