// libFuzzer target: model replies are untrusted input (a hostile or broken
// endpoint, or a proxy in between). Feeds the bytes to both clients' body and
// stream parsers; none may crash, hang or leak, whatever they receive.
#include <cstddef>
#include <cstdint>
#include <string>

#include "runtime/model/anthropic_client.h"
#include "runtime/model/openai_client.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  kiln::model::Attempt a, b, c, d;
  kiln::anthropic_client::ParseBody(text, a);
  kiln::anthropic_client::ParseStream(text, b);
  kiln::openai_client::ParseBody(text, c);
  kiln::openai_client::ParseStream(text, d);
  return 0;
}
