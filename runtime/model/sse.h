// An incremental Server-Sent Events parser (the WHATWG event-stream format):
// bytes in, complete events out, whatever the chunking of the transport.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace kiln::sse {

struct Event {
  std::string event;  // "" when the stream did not name it (OpenAI)
  std::string data;   // data lines joined with '\n'
};

class Parser {
 public:
  explicit Parser(std::function<void(const Event&)> on_event) : on_event_(std::move(on_event)) {}
  void Feed(std::string_view bytes);
  // True when bytes of an unfinished event are pending (a cut stream).
  bool pending() const { return !line_.empty() || has_data_ || !cur_.event.empty(); }

 private:
  void Line(std::string_view line);

  std::function<void(const Event&)> on_event_;
  std::string line_;
  bool saw_cr_ = false;
  bool has_data_ = false;
  Event cur_;
};

}  // namespace kiln::sse
