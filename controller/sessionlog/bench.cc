// Benchmark driver for tests/bench/sessionlog.sh: append throughput with
// 1 KiB payloads and a checkpoint every 1000 records, verify throughput, and
// raw SHA-256 over the same bytes in the same process, printed as one JSON
// object.
//
//   kiln_sessionlog_bench DIR [RECORDS] [PAYLOAD_BYTES] [CHECKPOINT_EVERY]
//
// It leaves DIR/bench.jsonl and its public key DIR/bench.pub for the script
// to time the CLI and the external SHA-256 tools on the same bytes.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/digest.h"
#include "base/fd.h"
#include "controller/sessionlog/canonical.h"
#include "controller/sessionlog/signer.h"
#include "controller/sessionlog/verify.h"
#include "controller/sessionlog/writer.h"

namespace sl = kiln::sessionlog;

namespace {

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

int Die(const std::string& what) {
  std::cerr << "kiln_sessionlog_bench: " << what << "\n";
  return 2;
}

// Text like a tool's output: words, newlines, a few quotes to escape.
std::string Filler(size_t n) {
  static const char* kWords[] = {"compiling", "src/parser.cc", "warning:", "\"unused\"",
                                 "ok",        "[100%]",        "linking",  "tests\tpassed"};
  std::string s;
  for (size_t i = 0; s.size() < n; ++i) {
    s += kWords[i % 8];
    s += i % 9 == 8 ? '\n' : ' ';
  }
  s.resize(n);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Die("usage: kiln_sessionlog_bench DIR [RECORDS] [PAYLOAD_BYTES] [EVERY]");
  const std::string dir = argv[1];
  const uint64_t records = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 200000;
  const size_t payload_bytes = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 1024;
  const uint64_t every = argc > 4 ? std::strtoull(argv[4], nullptr, 10) : 1000;
  const std::string path = dir + "/bench.jsonl";
  std::remove(path.c_str());

  auto signer = sl::Signer::Generate();
  if (!signer.ok()) return Die(signer.error().message());
  std::shared_ptr<const sl::Signer> key(std::move(*signer));
  // For `kiln log verify --pubkey` on the same file.
  if (auto st = kiln::WriteFileAtomic(dir + "/bench.pub", key->public_key().Pem(), 0644);
      !st.ok()) {
    return Die(st.error().message());
  }

  // The payload's canonical form is payload_bytes long: size the output
  // string to make up the difference.
  auto payload_for = [&](uint64_t i, const std::string& output) {
    return nlohmann::json{{"call_id", "call-" + std::to_string(i)},
                          {"exit_status", 0},
                          {"output", output},
                          {"tool", "shell"}};
  };
  std::string output = Filler(payload_bytes);
  {
    std::string canon;
    sl::AppendCanonicalString(output, &canon);
    size_t overhead = payload_for(0, "").dump().size();
    while (!output.empty() && canon.size() + overhead > payload_bytes + 8) {
      output.pop_back();
      canon.clear();
      sl::AppendCanonicalString(output, &canon);
    }
  }

  sl::WriterOptions o;
  o.checkpoint_every = every;
  o.checkpoint_interval_ms = 0;
  o.durability = sl::Durability::kCheckpoint;  // fsync at checkpoints, not per record
  auto t0 = std::chrono::steady_clock::now();
  auto w = sl::Writer::Create(path, "bench-run", key, o);
  if (!w.ok()) return Die(w.error().message());
  if (auto r = (*w)->Append("run.start", {{"role", "bench"}}); !r.ok()) {
    return Die(r.error().message());
  }
  for (uint64_t i = 1; i < records; ++i) {
    auto r = (*w)->Append("tool.result", payload_for(i, output));
    if (!r.ok()) return Die(r.error().message());
  }
  if (auto r = (*w)->Close({{"status", "succeeded"}}); !r.ok()) return Die(r.error().message());
  const double append_s = Seconds(t0);
  const uint64_t written = (*w)->next_seq();

  auto data = kiln::ReadFile(path);
  if (!data.ok()) return Die(data.error().message());
  const double mb = static_cast<double>(data->size()) / 1e6;

  // Best of three for the read-side numbers (the file is in the page cache).
  sl::VerifyOptions vo;
  vo.trusted_keys = {key->public_key()};
  double verify_s = 1e9;
  for (int i = 0; i < 3; ++i) {
    auto t = std::chrono::steady_clock::now();
    auto rep = sl::Verify(path, vo);
    double s = Seconds(t);
    if (!rep.ok()) return Die(rep.error().message());
    if (!rep->ok()) return Die("the benchmark log does not verify");
    verify_s = std::min(verify_s, s);
  }
  double sha_s = 1e9;
  for (int i = 0; i < 3; ++i) {
    auto t = std::chrono::steady_clock::now();
    kiln::Digest d = kiln::Sha256Of(*data);
    double s = Seconds(t);
    if (d[0] == 0 && d[1] == 0 && d[2] == 0 && d[3] == 0) std::cerr << "";  // keep d
    sha_s = std::min(sha_s, s);
  }

  nlohmann::json out = {{"records", written},
                        {"payload_bytes", payload_bytes},
                        {"file_bytes", data->size()},
                        {"checkpoint_every", every},
                        {"append_seconds", append_s},
                        {"append_records_per_s", static_cast<double>(written) / append_s},
                        {"append_mb_per_s", mb / append_s},
                        {"verify_seconds", verify_s},
                        {"verify_mb_per_s", mb / verify_s},
                        {"sha256_mb_per_s", mb / sha_s}};
  std::cout << out.dump() << "\n";
  return 0;
}
