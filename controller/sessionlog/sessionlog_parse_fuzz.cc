// libFuzzer target: the record parser and canonical scanner on arbitrary
// bytes. Besides not crashing, whatever the scanner accepts as canonical must
// be exactly what the serializer prints for the same value (the two halves of
// the format agree).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "controller/sessionlog/canonical.h"
#include "controller/sessionlog/record.h"

namespace sl = kiln::sessionlog;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto rec = sl::ParseRecord(text);
  if (rec.ok()) {
    // The views must point into the input.
    if (rec->payload.data() != nullptr && !rec->payload.empty() &&
        (rec->payload.data() < text.data() ||
         rec->payload.data() + rec->payload.size() > text.data() + text.size())) {
      std::abort();
    }
    if (rec->signed_record) (void)sl::SignedHead(text, *rec);
  }
  if (sl::CheckCanonical(text).ok()) {
    auto v = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (v.is_discarded()) std::abort();  // canonical but not JSON
    std::string again;
    if (!sl::AppendCanonical(v, &again, nullptr, "fuzz", 0).ok() || again != text) std::abort();
  }
  return 0;
}
