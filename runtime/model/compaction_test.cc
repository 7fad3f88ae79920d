#include "runtime/model/compaction.h"

#include <gtest/gtest.h>

namespace kiln::compaction {
namespace {

using model::Block;
using model::Message;

std::vector<Message> Conversation(int turns, size_t output_bytes) {
  std::vector<Message> m(1);
  m[0].blocks.push_back(Block{Block::Kind::kText, "the task", {}, {}});
  for (int i = 0; i < turns; ++i) {
    Message a;
    a.role = Message::Role::kAssistant;
    Block b;
    b.kind = Block::Kind::kToolUse;
    b.call.id = "c" + std::to_string(i);
    b.call.name = "shell";
    b.call.input = {{"command", "cat big"}};
    a.blocks.push_back(b);
    Message u;
    u.results.push_back({b.call.id, std::string(output_bytes, 'x'), false});
    m.push_back(a);
    m.push_back(u);
  }
  return m;
}

TEST(Compaction, ElidesOldToolOutputsFirstKeepingRecentTurns) {
  auto m = Conversation(10, 4000);
  uint64_t before = EstimateTokens("", m, {});
  auto out = Compact("", m, {}, before / 2, 2, 1.0);
  EXPECT_GT(out.elided_items, 0u);
  EXPECT_EQ(out.dropped_turns, 0u);
  EXPECT_LE(out.tokens_after, before / 2);
  EXPECT_EQ(m.size(), 21u);
  EXPECT_EQ(m[0].blocks[0].text, "the task");
  EXPECT_NE(m[2].results[0].content.find("elided by compaction: 4000 bytes"), std::string::npos);
  EXPECT_EQ(m[20].results[0].content.size(), 4000u);  // the recent turns are intact
  EXPECT_EQ(m[18].results[0].content.size(), 4000u);
}

TEST(Compaction, DropsWholeOldTurnsWhenElidingIsNotEnough) {
  auto m = Conversation(10, 4000);
  auto out = Compact("", m, {}, 2100, 2, 1.0);
  EXPECT_GT(out.dropped_turns, 0u);
  // Calls and results stay paired: assistant, user, assistant, user...
  for (size_t i = 1; i < m.size(); ++i) {
    EXPECT_EQ(m[i].role, i % 2 ? Message::Role::kAssistant : Message::Role::kUser);
    if (i % 2 == 0) {
      EXPECT_EQ(m[i].results[0].call_id, m[i - 1].blocks[0].call.id);
    }
  }
  EXPECT_EQ(m.size(), 5u);  // the task and the two protected turns
  EXPECT_NE(m[0].blocks.back().text.find("earlier turns were removed"), std::string::npos);
}

TEST(Compaction, NothingHappensUnderTheTarget) {
  auto m = Conversation(3, 100);
  auto out = Compact("", m, {}, 1'000'000, 2, 1.0);
  EXPECT_EQ(out.elided_items + out.dropped_turns, 0u);
}

}  // namespace
}  // namespace kiln::compaction
