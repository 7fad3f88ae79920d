// libFuzzer target: the verifier. The first input byte picks a mode:
//   0      the rest of the input is the log;
//   1      byte edits (offset, value) applied to a valid log;
//   2..255 line edits (delete, copy, swap, truncate) applied to a valid log.
// Besides not crashing, the verifier must pass the unedited log and must not
// pass any log whose bytes differ from it: every change is evidence.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "base/fd.h"
#include "controller/sessionlog/verify.h"
#include "controller/sessionlog/writer.h"

namespace sl = kiln::sessionlog;

namespace {

struct Fixture {
  std::string log;
  sl::VerifyOptions options;
  sl::BlobLookup blobs;
  std::string blob_name;
  sl::BlobInfo blob;
};

// A valid log with every writer-made record type and one blob, written once.
const Fixture& GetFixture() {
  static const Fixture* f = [] {
    auto* fx = new Fixture;
    auto signer = sl::Signer::Generate();
    if (!signer.ok()) std::abort();
    std::shared_ptr<const sl::Signer> key(std::move(*signer));
    std::string dir =
        (std::filesystem::temp_directory_path() / ("kiln-fuzz-" + std::to_string(::getpid())))
            .string();
    std::filesystem::create_directories(dir);
    sl::WriterOptions o;
    o.durability = sl::Durability::kNone;
    o.checkpoint_every = 3;
    o.blob_threshold = 200;
    auto w = sl::Writer::Create(dir + "/log", "fuzz-run", key, o);
    if (!w.ok()) std::abort();
    bool ok = (*w)->Append("run.start", {{"role", "fuzz"}}).ok();
    for (int i = 0; i < 8; ++i) {
      ok &= (*w)->Append(i == 4 ? "tool.result" : "steer",
                         {{"i", i}, {"text", std::string(i == 4 ? 300 : 5, 'a' + i)}})
                .ok();
    }
    ok &= (*w)->Close({{"status", "succeeded"}}).ok();
    if (!ok) std::abort();
    fx->log = *kiln::ReadFile(dir + "/log");
    for (const auto& e : std::filesystem::directory_iterator(dir + "/blobs")) {
      fx->blob_name = e.path().filename().string();
      std::string content = *kiln::ReadFile(e.path().string());
      fx->blob = {content.size(), kiln::Sha256Of(content)};
    }
    std::filesystem::remove_all(dir);
    fx->options.trusted_keys = {key->public_key()};
    fx->options.max_line_bytes = 4096;
    fx->options.max_findings = 50;
    const Fixture* cfx = fx;
    fx->blobs = [cfx](const std::string& name) -> std::optional<sl::BlobInfo> {
      if (name == cfx->blob_name) return cfx->blob;
      return std::nullopt;
    };
    if (!sl::VerifyBuffer(fx->log, fx->options, fx->blobs).ok()) std::abort();
    return fx;
  }();
  return *f;
}

std::vector<std::string> SplitLines(const std::string& s) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < s.size()) {
    size_t nl = s.find('\n', at);
    if (nl == std::string::npos) nl = s.size() - 1;
    out.push_back(s.substr(at, nl + 1 - at));
    at = nl + 1;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Fixture& fx = GetFixture();
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  ++data;
  --size;
  if (mode == 0) {
    sl::VerifyReport r = sl::VerifyBuffer(
        std::string_view(reinterpret_cast<const char*>(data), size), fx.options, fx.blobs);
    if (r.findings.size() > fx.options.max_findings || r.findings_total < r.findings.size()) {
      std::abort();
    }
    return 0;
  }
  std::string log = fx.log;
  if (mode == 1) {
    for (size_t i = 0; i + 2 < size; i += 3) {
      size_t at = (static_cast<size_t>(data[i]) << 8 | data[i + 1]) % log.size();
      log[at] = static_cast<char>(data[i + 2]);
    }
  } else {
    std::vector<std::string> lines = SplitLines(log);
    for (size_t i = 0; i + 2 < size && !lines.empty(); i += 3) {
      size_t a = data[i + 1] % lines.size(), b = data[i + 2] % lines.size();
      switch (data[i] % 5) {
        case 0:
          lines.erase(lines.begin() + static_cast<ptrdiff_t>(a));
          break;
        case 1:
          lines.insert(lines.begin() + static_cast<ptrdiff_t>(b), lines[a]);
          break;
        case 2:
          std::swap(lines[a], lines[b]);
          break;
        case 3:
          lines[a].resize(data[i + 2] % (lines[a].size() + 1));
          break;
        default:
          lines.insert(lines.begin() + static_cast<ptrdiff_t>(b),
                       std::string(data + i, data + i + 3));
          break;
      }
    }
    log.clear();
    for (const auto& l : lines) log += l;
  }
  sl::VerifyReport r = sl::VerifyBuffer(log, fx.options, fx.blobs);
  if (r.ok() != (log == fx.log)) std::abort();  // a change that went unnoticed
  return 0;
}
