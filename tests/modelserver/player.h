// Plays a Script against requests: picks the conversation a request belongs
// to, keeps one cursor per agent run through it (so that runs of the same role
// never take each other's replies), and fills in a conversation's
// placeholders. docs/runtime.md ("Scripted model server") has the rules.
//
// Thread-safe: the server calls Next() from its connection threads.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tests/modelserver/script.h"

namespace kiln::modelserver {

// What answered one request, for the reply and for the record.
struct Served {
  std::optional<Reply> reply;  // nullopt: that cursor's script is exhausted
  // "replies[2]", "rules[0]", "default", "conversations[1].replies[0]", ...;
  // "exhausted" or "conversations[1].exhausted" when there is no reply.
  std::string step;
  std::optional<size_t> conversation;  // index in Script::conversations; nullopt: top level
  std::string cursor;  // the run: hex SHA-256 of its first user message; "" at top level
  // Placeholders left verbatim in the reply, each with the reason.
  std::vector<std::string> notes;
  std::optional<std::string> error;  // the request could not be keyed (hashing failed)
};

class Player {
 public:
  explicit Player(Script s) : script_(std::move(s)) {}
  Player(const Player&) = delete;
  Player& operator=(const Player&) = delete;

  Served Next(const RequestSeen& req);
  size_t conversations() const { return script_.conversations.size(); }

 private:
  struct Cursor {
    size_t index = 0;
    int64_t used = 0;  // times replies[index] was served
    std::vector<int64_t> rule_hits;
  };
  // The reply at c for a request whose latest tool results are `last`;
  // nullopt when seq is exhausted. *step is set to "replies[i]" and so on.
  static std::optional<Reply> Advance(const Sequence& seq, Cursor& c,
                                      const std::vector<ToolResultSeen>& last, std::string* step);

  const Script script_;
  std::mutex mu_;
  Cursor top_;                                             // guarded by mu_
  std::map<std::pair<size_t, std::string>, Cursor> runs_;  // guarded by mu_
};

// The digits right after the first occurrence of marker in text that has any;
// nullopt when there is none.
std::optional<std::string> CaptureDigits(const std::string& text, const std::string& marker);

// Replaces {{name}} in the reply's text, raw_arguments and tool-input string
// values (at any depth) with values[name]. A {{name}} not in values is left
// as it is, and a note saying why is appended to *notes; `declared` holds the
// names the conversation captures (known, but absent from this run's task).
void Substitute(Reply& r, const std::map<std::string, std::string>& values,
                const std::map<std::string, std::string>& declared,
                std::vector<std::string>* notes);

}  // namespace kiln::modelserver
