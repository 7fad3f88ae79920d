#include "runtime/model/sse.h"

namespace kiln::sse {

void Parser::Feed(std::string_view bytes) {
  for (char c : bytes) {
    if (saw_cr_) {
      saw_cr_ = false;
      if (c == '\n') continue;  // CRLF is one line end
    }
    if (c == '\r' || c == '\n') {
      saw_cr_ = c == '\r';
      std::string line;
      line.swap(line_);
      Line(line);
    } else {
      line_ += c;
    }
  }
}

void Parser::Line(std::string_view line) {
  if (line.empty()) {
    if (has_data_) on_event_(cur_);
    cur_ = Event{};
    has_data_ = false;
    return;
  }
  if (line[0] == ':') return;  // comment, used as keep-alive
  size_t colon = line.find(':');
  std::string_view field = line.substr(0, colon);
  std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
  if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  if (field == "event") {
    cur_.event = value;
  } else if (field == "data") {
    if (has_data_) cur_.data += '\n';
    cur_.data += value;
    has_data_ = true;
  }
}

}  // namespace kiln::sse
