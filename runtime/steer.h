// Steering: messages a person sends to a running agent through the
// controller (`kiln runs steer`). The controller writes one JSON object per
// line, {"from": WHO, "message": TEXT}, on a pipe; the loop takes what has
// arrived before each model request and adds it to the conversation as user
// text. The controller records each message as a `steer` session-log record
// when it sends it.
#pragma once

#include <string>
#include <vector>

namespace kiln::steer {

class Inbox {
 public:
  // fd: the read end, made non-blocking here; -1 for none.
  explicit Inbox(int fd);

  // Every complete message that has arrived, formatted for the model:
  // "[kiln] Message from WHO while you work: TEXT". Malformed lines are
  // skipped with a line on stderr. Never blocks.
  std::vector<std::string> Take();

 private:
  int fd_;
  bool eof_ = false;
  std::string partial_;
};

}  // namespace kiln::steer
