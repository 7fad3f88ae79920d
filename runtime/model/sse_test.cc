#include "runtime/model/sse.h"

#include <gtest/gtest.h>

#include <vector>

namespace kiln::sse {
namespace {

TEST(Sse, ParsesEventsAcrossArbitraryChunking) {
  std::string stream =
      "event: message_start\r\ndata: {\"a\":1}\r\n\r\n: keep-alive\n\ndata: x\ndata: y\n\n"
      "event: ping\ndata:{}\n\n";
  for (size_t chunk = 1; chunk <= stream.size(); ++chunk) {
    std::vector<Event> got;
    Parser p([&](const Event& e) { got.push_back(e); });
    for (size_t i = 0; i < stream.size(); i += chunk) p.Feed(stream.substr(i, chunk));
    ASSERT_EQ(got.size(), 3u) << "chunk " << chunk;
    EXPECT_EQ(got[0].event, "message_start");
    EXPECT_EQ(got[0].data, "{\"a\":1}");
    EXPECT_EQ(got[1].event, "");
    EXPECT_EQ(got[1].data, "x\ny");
    EXPECT_EQ(got[2].data, "{}");
    EXPECT_FALSE(p.pending());
  }
}

TEST(Sse, ReportsAnUnfinishedEvent) {
  int n = 0;
  Parser p([&](const Event&) { ++n; });
  p.Feed("event: content_block_delta\ndata: {\"partial");
  EXPECT_EQ(n, 0);
  EXPECT_TRUE(p.pending());
}

}  // namespace
}  // namespace kiln::sse
