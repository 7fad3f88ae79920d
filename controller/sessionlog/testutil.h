// Helpers shared by the session log unit tests: temporary directories, logs
// written with a throwaway key, and line-level tampering.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "controller/sessionlog/signer.h"
#include "controller/sessionlog/verify.h"
#include "controller/sessionlog/writer.h"
#include "tests/support/temp_dir.h"

namespace kiln::sessionlog::testing {

using TempDir = ::kiln::testing::TempDir;

using ::kiln::testing::Slurp;
using ::kiln::testing::Spit;

// The lines of a file without their newlines (a last line without one too).
inline std::vector<std::string> Lines(const std::string& data) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < data.size()) {
    size_t nl = data.find('\n', at);
    if (nl == std::string::npos) nl = data.size();
    out.push_back(data.substr(at, nl - at));
    at = nl + 1;
  }
  return out;
}

inline std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

inline std::shared_ptr<const Signer> NewSigner() {
  auto s = Signer::Generate();
  EXPECT_TRUE(s.ok());
  return std::shared_ptr<const Signer>(std::move(*s));
}

// A log of `records` records (run.start ... run.end, checkpoints included)
// cycling through the ordinary record types.
struct LogSpec {
  uint64_t records = 30;
  uint64_t checkpoint_every = 7;
  size_t blob_threshold = 64 * 1024;
  bool close = true;
  std::string big_payload_at;  // if set, one tool.result with this output
};

inline nlohmann::json SamplePayload(uint64_t i) {
  switch (i % 5) {
    case 0:
      return {{"turn", i}, {"model", "m"}, {"body", "request " + std::to_string(i)}};
    case 1:
      return {{"turn", i},
              {"request_id", "req_" + std::to_string(i)},
              {"usage", {{"input_tokens", 10}}}};
    case 2:
      return {
          {"call_id", "c" + std::to_string(i)}, {"tool", "shell"}, {"input", {{"command", "ls"}}}};
    case 3:
      return {{"call_id", "c" + std::to_string(i)}, {"output", "file\n"}, {"exit_status", 0}};
    default:
      return {{"method", "GET"}, {"host", "example.com"}, {"path", "/"}, {"status", 200}};
  }
}

inline const char* SampleType(uint64_t i) {
  static const char* kTypes[] = {"model.request", "model.response", "tool.call", "tool.result",
                                 "proxy.request"};
  return kTypes[i % 5];
}

struct TestLog {
  TempDir dir;
  std::string path;
  std::shared_ptr<const Signer> signer;

  explicit TestLog(const LogSpec& spec = {}) : path(dir / "run.jsonl"), signer(NewSigner()) {
    WriterOptions o;
    o.checkpoint_every = spec.checkpoint_every;
    o.checkpoint_interval_ms = 0;
    o.blob_threshold = spec.blob_threshold;
    o.durability = Durability::kNone;
    auto w = Writer::Create(path, "run-1", signer, o);
    EXPECT_TRUE(w.ok()) << w.error().message();
    EXPECT_TRUE((*w)->Append("run.start", {{"role", "implement"}}).ok());
    uint64_t i = 0;
    while ((*w)->next_seq() + (spec.close ? 1 : 0) < spec.records) {
      if (i == 3 && !spec.big_payload_at.empty()) {
        EXPECT_TRUE((*w)->Append("tool.result", {{"output", spec.big_payload_at}}).ok());
      } else {
        auto r = (*w)->Append(SampleType(i), SamplePayload(i));
        EXPECT_TRUE(r.ok()) << r.error().message();
      }
      ++i;
    }
    if (spec.close) {
      auto r = (*w)->Close({{"status", "succeeded"}});
      EXPECT_TRUE(r.ok()) << r.error().message();
    }
  }

  std::string data() const { return Slurp(path); }
  std::vector<std::string> lines() const { return Lines(data()); }
  void Write(const std::vector<std::string>& lines) const { Spit(path, Join(lines)); }
  void WriteRaw(const std::string& data) const { Spit(path, data); }

  VerifyReport Verify(std::vector<PublicKey> keys = {}) const {
    VerifyOptions o;
    o.trusted_keys = keys.empty() ? std::vector<PublicKey>{signer->public_key()} : keys;
    auto r = sessionlog::Verify(path, o);
    EXPECT_TRUE(r.ok()) << r.error().message();
    return r.ok() ? *r : VerifyReport{};
  }
};

inline std::string Describe(const VerifyReport& r) {
  std::string out;
  for (const auto& f : r.findings) out += FormatFinding(f) + "\n";
  return out.empty() ? "(no findings)" : out;
}

}  // namespace kiln::sessionlog::testing
