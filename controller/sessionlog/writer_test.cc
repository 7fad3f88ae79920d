#include "controller/sessionlog/writer.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "controller/sessionlog/canonical.h"
#include "controller/sessionlog/testutil.h"

namespace kiln::sessionlog {
namespace {

using testing::Describe;
using testing::NewSigner;
using testing::TempDir;

WriterOptions Quiet() {
  WriterOptions o;
  o.durability = Durability::kNone;
  o.checkpoint_interval_ms = 0;
  return o;
}

std::unique_ptr<Writer> Open(const std::string& path, std::shared_ptr<const Signer> signer,
                             WriterOptions o = Quiet()) {
  auto w = Writer::Create(path, "run-42", std::move(signer), o);
  EXPECT_TRUE(w.ok()) << w.error().message();
  return w.ok() ? std::move(*w) : nullptr;
}

VerifyReport VerifyWith(const std::string& path, const Signer& s) {
  VerifyOptions o;
  o.trusted_keys = {s.public_key()};
  auto r = Verify(path, o);
  EXPECT_TRUE(r.ok());
  return r.ok() ? *r : VerifyReport{};
}

TEST(SessionLogWriter, RecordsAreCanonicalLinesChainedBySha256) {
  TempDir tmp;
  auto signer = NewSigner();
  auto w = Open(tmp / "log", signer);
  auto a0 = w->Append("run.start", {{"role", "triage"}});
  ASSERT_TRUE(a0.ok());
  auto a1 = w->Append("steer", {{"from", "bob"}, {"message", "stop"}});
  ASSERT_TRUE(a1.ok());
  EXPECT_EQ(a0->seq, 0u);
  EXPECT_EQ(a1->seq, 1u);
  ASSERT_TRUE(w->Close({{"status", "succeeded"}}).ok());

  auto lines = testing::Lines(testing::Slurp(tmp / "log"));
  ASSERT_EQ(lines.size(), 3u);
  for (const auto& l : lines) EXPECT_TRUE(CheckCanonical(l).ok()) << l;
  EXPECT_EQ(Sha256Of(lines[0] + "\n"), a0->hash);
  EXPECT_EQ(Sha256Of(lines[1] + "\n"), a1->hash);
  auto j0 = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(j0["prev"], Hex(GenesisHash("run-42", signer->key_id())));
  EXPECT_EQ(j0["payload"]["log"]["run_id"], "run-42");
  EXPECT_EQ(j0["payload"]["log"]["key_id"], signer->key_id());
  EXPECT_EQ(j0["payload"]["log"]["format"], "kiln-session-log/1");
  EXPECT_EQ(nlohmann::json::parse(lines[1])["prev"], Hex(a0->hash));
  EXPECT_TRUE(ValidTimestamp(j0["ts"].get<std::string>()));
  auto end = nlohmann::json::parse(lines[2]);
  EXPECT_EQ(end["type"], "run.end");
  EXPECT_EQ(end["payload"]["log"]["records"], 3);
  EXPECT_EQ(end["sig"]["key_id"], signer->key_id());
  EXPECT_TRUE(VerifyWith(tmp / "log", *signer).ok());
}

TEST(SessionLogWriter, EnforcesTheRecordSequence) {
  TempDir tmp;
  auto w = Open(tmp / "log", NewSigner());
  auto r = w->Append("steer", {{"message", "hi"}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("must be run.start"), std::string::npos);
  ASSERT_TRUE(w->Append("run.start", nlohmann::json::object()).ok());
  EXPECT_FALSE(w->Append("run.start", nlohmann::json::object()).ok());
  for (const char* reserved : {"checkpoint", "run.end", "recovery"}) {
    EXPECT_FALSE(w->Append(reserved, nlohmann::json::object()).ok()) << reserved;
  }
  EXPECT_FALSE(w->Append("tool.calls", nlohmann::json::object()).ok());
  auto arr = w->Append("steer", nlohmann::json::array());
  ASSERT_FALSE(arr.ok());
  EXPECT_NE(arr.error().message().find("must be a JSON object"), std::string::npos);
  auto flt = w->Append("model.response", {{"usage", {{"cost", 0.25}}}});
  ASSERT_FALSE(flt.ok());
  EXPECT_NE(flt.error().message().find("payload.usage.cost"), std::string::npos);
  EXPECT_TRUE(w->Append("model.response", {{"latency", 12.0}}).ok());  // integral: stored as 12
  ASSERT_TRUE(w->Close({{"status", "failed"}}).ok());
  EXPECT_FALSE(w->Append("steer", nlohmann::json::object()).ok());
  EXPECT_FALSE(w->Close(nlohmann::json::object()).ok());
}

TEST(SessionLogWriter, RefusesToOverwriteOrShareALog) {
  TempDir tmp;
  auto signer = NewSigner();
  auto w = Open(tmp / "log", signer);
  auto again = Writer::Create(tmp / "log", "run-42", signer, Quiet());
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().message().find("log"), std::string::npos);
  auto rec = Writer::Recover(tmp / "log", signer, Quiet());
  ASSERT_FALSE(rec.ok());
  EXPECT_NE(rec.error().message().find("another writer"), std::string::npos)
      << rec.error().message();
  EXPECT_FALSE(Writer::Create(tmp / "x", "bad id with spaces", signer, Quiet()).ok());
}

TEST(SessionLogWriter, CheckpointsEveryNRecordsAndEveryTSeconds) {
  TempDir tmp;
  auto signer = NewSigner();
  int64_t now = 1'700'000'000'000'000'000;
  WriterOptions o = Quiet();
  o.checkpoint_every = 5;
  o.checkpoint_interval_ms = 2000;
  o.clock = [&now] { return now; };
  auto w = Open(tmp / "log", signer, o);
  ASSERT_TRUE(w->Append("run.start", nlohmann::json::object()).ok());
  for (int i = 0; i < 11; ++i) ASSERT_TRUE(w->Append("steer", {{"i", i}}).ok());
  now += 2'500'000'000;  // 2.5 s later: the next append also checkpoints
  ASSERT_TRUE(w->Append("steer", {{"i", 99}}).ok());
  ASSERT_TRUE(w->Checkpoint().ok());  // nothing new since: no record
  ASSERT_TRUE(w->Close(nlohmann::json::object()).ok());
  std::vector<std::string> reasons;
  for (const auto& l : testing::Lines(testing::Slurp(tmp / "log"))) {
    auto j = nlohmann::json::parse(l);
    if (j["type"] == "checkpoint") {
      reasons.push_back(j["payload"]["reason"]);
      EXPECT_EQ(j["payload"]["count"], j["seq"].get<int>() + 1);
    }
  }
  EXPECT_EQ(reasons, (std::vector<std::string>{"count", "count", "time"}));
  EXPECT_NE(testing::Slurp(tmp / "log").find("2023-11-14T22:13:20.000000000Z"), std::string::npos);
  EXPECT_TRUE(VerifyWith(tmp / "log", *signer).ok());
}

TEST(SessionLogWriter, LargePayloadsGoToContentAddressedBlobs) {
  TempDir tmp;
  auto signer = NewSigner();
  WriterOptions o = Quiet();
  o.blob_threshold = 1000;
  auto w = Open(tmp / "log", signer, o);
  ASSERT_TRUE(w->Append("run.start", nlohmann::json::object()).ok());
  nlohmann::json big = {{"output", std::string(5000, 'o')}, {"exit_status", 0}};
  ASSERT_TRUE(w->Append("tool.result", big).ok());
  ASSERT_TRUE(w->Append("tool.result", big).ok());  // same bytes, same blob
  ASSERT_TRUE(w->Close(nlohmann::json::object()).ok());

  auto lines = testing::Lines(testing::Slurp(tmp / "log"));
  auto rec = nlohmann::json::parse(lines[1]);
  ASSERT_TRUE(rec.contains("blob")) << lines[1];
  EXPECT_FALSE(rec.contains("payload"));
  std::string name = rec["blob"]["sha256"];
  std::string content = testing::Slurp(tmp / ("blobs/" + name));
  std::string canon;
  ASSERT_TRUE(AppendCanonical(big, &canon, nullptr, "p", 1).ok());
  EXPECT_EQ(content, canon + "\n");
  EXPECT_EQ(Hex(Sha256Of(content)), name);
  EXPECT_EQ(rec["blob"]["size"], content.size());
  struct stat st {};
  ASSERT_EQ(::stat((tmp / ("blobs/" + name)).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  ASSERT_EQ(::stat((tmp / "log").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0137, 0u) << "the log is at most 0640 (less with a stricter umask)";
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(tmp / "blobs"),
                          std::filesystem::directory_iterator{}),
            1);
  auto end = nlohmann::json::parse(lines.back());
  EXPECT_EQ(end["payload"]["log"]["blobs"], 2);
  EXPECT_TRUE(VerifyWith(tmp / "log", *signer).ok());
}

// No secret value, in any form, reaches the raw bytes of the log or a blob.
TEST(SessionLogWriter, SecretsNeverReachTheFile) {
  TempDir tmp;
  auto signer = NewSigner();
  WriterOptions o = Quiet();
  o.blob_threshold = 2000;
  auto w = Open(tmp / "log", signer, o);
  const std::string secret = "sk-live-0123456789abcdef";
  const std::string other = "p@ss w0rd/+";
  ASSERT_TRUE(w->AddSecret("MODEL_KEY", secret).ok());
  ASSERT_TRUE(w->AddSecret("DB_PASSWORD", other).ok());
  std::string leak;
  for (const auto& v : {secret, other}) {
    leak += " " + v + " " + Base64(v) + " " + Base64("user:" + v) + " " + Hex(v);
  }
  leak += " postgres://u:p%40ss%20w0rd%2F%2B@db";
  ASSERT_TRUE(w->Append("run.start", {{"task", "t" + leak}, {secret, "as a key"}}).ok());
  ASSERT_TRUE(w->Append("tool.result", {{"output", leak}}).ok());
  ASSERT_TRUE(w->Append("tool.result", {{"output", std::string(3000, '.') + leak}}).ok());
  ASSERT_TRUE(w->Close({{"status", "succeeded"}, {"error", leak}}).ok());

  std::vector<std::string> needles = {secret,        Base64(secret), Hex(secret),          other,
                                      Base64(other), Hex(other),     "p%40ss%20w0rd%2F%2B"};
  std::string everything = testing::Slurp(tmp / "log");
  for (const auto& e : std::filesystem::directory_iterator(tmp / "blobs")) {
    everything += testing::Slurp(e.path().string());
  }
  for (const auto& n : needles) EXPECT_EQ(everything.find(n), std::string::npos) << n;
  EXPECT_NE(everything.find("[secret:MODEL_KEY]"), std::string::npos);
  EXPECT_NE(everything.find("[secret:DB_PASSWORD]"), std::string::npos);
  EXPECT_TRUE(VerifyWith(tmp / "log", *signer).ok());
}

TEST(SessionLogWriter, ConcurrentAppendsKeepTheChain) {
  TempDir tmp;
  auto signer = NewSigner();
  WriterOptions o = Quiet();
  o.checkpoint_every = 50;
  auto w = Open(tmp / "log", signer, o);
  ASSERT_TRUE(w->Append("run.start", nlohmann::json::object()).ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 250; ++i) {
        EXPECT_TRUE(w->Append("proxy.request", {{"thread", t}, {"i", i}}).ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(w->Close(nlohmann::json::object()).ok());
  VerifyReport r = VerifyWith(tmp / "log", *signer);
  EXPECT_TRUE(r.ok()) << Describe(r);
  EXPECT_EQ(r.records, 1u + 1000u + 1000u / 50u + 1u);
}

TEST(SessionLogWriter, FsyncModesProduceTheSameLog) {
  for (Durability d : {Durability::kCheckpoint, Durability::kEveryRecord}) {
    TempDir tmp;
    auto signer = NewSigner();
    WriterOptions o = Quiet();
    o.durability = d;
    o.checkpoint_every = 3;
    o.blob_threshold = 100;
    auto w = Open(tmp / "log", signer, o);
    ASSERT_TRUE(w->Append("run.start", nlohmann::json::object()).ok());
    for (int i = 0; i < 7; ++i) {
      ASSERT_TRUE(w->Append("tool.result", {{"output", std::string(i * 40, 'x')}}).ok());
    }
    ASSERT_TRUE(w->Close(nlohmann::json::object()).ok());
    EXPECT_TRUE(VerifyWith(tmp / "log", *signer).ok());
  }
}

// Opening a log waits for no disk: the first fsync (a checkpoint's, a
// blob's, or the close's) takes the directory's with it, and is counted.
TEST(SessionLogWriter, TheFirstSyncIsTheOnlyWaitAndIsCounted) {
  TempDir tmp;
  auto signer = NewSigner();
  WriterOptions o = Quiet();
  o.durability = Durability::kCheckpoint;
  o.checkpoint_every = 0;
  auto w = Open(tmp / "log", signer, o);
  ASSERT_TRUE(w->Append("run.start", nlohmann::json::object()).ok());
  EXPECT_EQ(w->sync_ms(), 0.0);
  ASSERT_TRUE(w->Close(nlohmann::json::object()).ok());
  EXPECT_GT(w->sync_ms(), 0.0);
  EXPECT_TRUE(VerifyWith(tmp / "log", *signer).ok());

  // Without durability, nothing is synced and nothing counted.
  auto quiet = Open(tmp / "quiet", signer);
  ASSERT_TRUE(quiet->Append("run.start", nlohmann::json::object()).ok());
  ASSERT_TRUE(quiet->Close(nlohmann::json::object()).ok());
  EXPECT_EQ(quiet->sync_ms(), 0.0);
}

// A crash: the writer goes away without run.end, the last write torn.
TEST(SessionLogWriter, RecoverAcknowledgesATornLastLine) {
  testing::LogSpec spec;
  spec.close = false;
  testing::TestLog log(spec);
  std::string data = log.data();
  for (size_t keep : {size_t{0}, size_t{1}, size_t{17}}) {
    // keep = 0: the crash hit between records; otherwise `keep` bytes of a
    // further record made it to disk.
    std::string next = "{\"payload\":{\"partial\":true},\"prev\":\"";
    log.WriteRaw(data + next.substr(0, keep));
    VerifyReport before = log.Verify();
    ASSERT_EQ(before.findings_total, 1u) << Describe(before);
    EXPECT_EQ(before.findings[0].kind, FindingKind::kTruncated);

    auto w = Writer::Recover(log.path, log.signer, Quiet());
    ASSERT_TRUE(w.ok()) << w.error().message();
    ASSERT_TRUE((*w)->Append("steer", {{"message", "continuing"}}).ok());
    ASSERT_TRUE((*w)->Close({{"status", "crashed"}}).ok());
    VerifyReport after = log.Verify();
    EXPECT_TRUE(after.ok()) << Describe(after);
    EXPECT_TRUE(after.complete);
    EXPECT_EQ(after.notes.size(), keep == 0 ? 0u : 1u);
    std::string text = log.data();
    EXPECT_EQ(text.substr(0, data.size()), data) << "recovery must not rewrite records";
    EXPECT_NE(text.find("\"type\":\"recovery\""), std::string::npos);
  }
}

TEST(SessionLogWriter, RecoverAcknowledgesACompleteRecordMissingItsNewline) {
  testing::LogSpec spec;
  spec.close = false;
  testing::TestLog log(spec);
  std::string data = log.data();
  log.WriteRaw(data.substr(0, data.size() - 1));
  auto w = Writer::Recover(log.path, log.signer, Quiet());
  ASSERT_TRUE(w.ok()) << w.error().message();
  ASSERT_TRUE((*w)->Close({{"status", "crashed"}}).ok());
  VerifyReport r = log.Verify();
  EXPECT_TRUE(r.ok()) << Describe(r);
}

TEST(SessionLogWriter, RecoverRefusesCompleteDamagedOrForeignLogs) {
  testing::TestLog complete;
  auto r1 = Writer::Recover(complete.path, complete.signer, Quiet());
  ASSERT_FALSE(r1.ok());
  EXPECT_NE(r1.error().message().find("already ends with run.end"), std::string::npos);

  testing::LogSpec spec;
  spec.close = false;
  testing::TestLog open(spec);
  auto lines = open.lines();
  lines.erase(lines.begin() + 3);
  open.Write(lines);
  auto r2 = Writer::Recover(open.path, open.signer, Quiet());
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.error().message().find("deleted"), std::string::npos) << r2.error().message();

  testing::TestLog other(spec);
  auto r3 = Writer::Recover(other.path, NewSigner(), Quiet());
  ASSERT_FALSE(r3.ok());
  EXPECT_NE(r3.error().message().find("started with key"), std::string::npos);
}

// A write that fails (here: past RLIMIT_FSIZE, as on a full disk) is final:
// the records after it would follow a gap, so none is accepted, not even
// once space returns, and Close() refuses too; Recover() then continues the
// file with the reason, and the log verifies.
TEST(SessionLogWriter, AFailedWriteIsFinalUntilRecovered) {
  TempDir tmp;
  auto signer = NewSigner();
  std::string path = tmp / "log";
  // In a child: the file size limit is the process's.
  pid_t pid = ::fork();
  if (pid == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    int failures = 0;
    std::string first;
    WriterOptions o = Quiet();
    o.on_failure = [&](const std::string& why) {
      ++failures;
      first = why;
    };
    auto w = Writer::Create(path, "run-42", signer, o);
    if (!w.ok() || !(*w)->Append("run.start", {{"role", "triage"}}).ok()) ::_exit(10);
    rlimit small{4096, RLIM_INFINITY};
    ::setrlimit(RLIMIT_FSIZE, &small);
    std::string text(1000, 'x');
    bool failed = false;
    for (int i = 0; i < 20 && !failed; ++i) failed = !(*w)->Append("steer", {{"m", text}}).ok();
    if (!failed) ::_exit(11);
    rlimit big{RLIM_INFINITY, RLIM_INFINITY};
    ::setrlimit(RLIMIT_FSIZE, &big);
    auto again = (*w)->Append("steer", {{"m", "after space returned"}});
    if (again.ok() || again.error().message().find("File too large") == std::string::npos)
      ::_exit(12);
    if ((*w)->Close({{"status", "succeeded"}}).ok()) ::_exit(13);
    if (failures != 1 || first.find("File too large") == std::string::npos) ::_exit(14);
    if ((*w)->failure() != first) ::_exit(15);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  ASSERT_EQ(WEXITSTATUS(status), 0) << "step " << WEXITSTATUS(status) << " failed";
  EXPECT_EQ(testing::Slurp(path).find("after space returned"), std::string::npos);
  EXPECT_EQ(testing::Slurp(path).back(), '\n') << "the refused record left part of itself";

  auto r = Writer::Recover(path, signer, Quiet(), "write failed: File too large");
  ASSERT_TRUE(r.ok()) << r.error().message();
  ASSERT_TRUE((*r)->Close({{"status", "error"}}).ok());
  auto lines = testing::Lines(testing::Slurp(path));
  auto recovery = nlohmann::json::parse(lines[lines.size() - 2]);
  EXPECT_EQ(recovery["type"], "recovery");
  EXPECT_EQ(recovery["payload"]["reason"], "write failed: File too large");
  EXPECT_TRUE(VerifyWith(path, *signer).ok());
}

// A recovery that the disk cuts short leaves the log as it found it (torn),
// so that the next recovery, once there is space, succeeds.
TEST(SessionLogWriter, ARecoveryCutShortCanBeRepeated) {
  TempDir tmp;
  auto signer = NewSigner();
  std::string path = tmp / "log";
  {
    auto w = Open(path, signer);
    ASSERT_TRUE(w->Append("run.start", {{"role", "triage"}}).ok());
    ASSERT_TRUE(w->Append("steer", {{"m", "one"}}).ok());
  }
  std::string torn = testing::Slurp(path) + "{\"payload\":{\"m\":\"half";
  testing::Spit(path, torn);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit tight{static_cast<rlim_t>(torn.size() + 20), RLIM_INFINITY};
    ::setrlimit(RLIMIT_FSIZE, &tight);
    auto r = Writer::Recover(path, signer, Quiet(), "first try");
    ::_exit(r.ok() ? 1 : 0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the recovery fitted after all";
  EXPECT_EQ(testing::Slurp(path), torn) << "the cut-short recovery left bytes behind";
  auto again = Writer::Recover(path, signer, Quiet(), "second try");
  ASSERT_TRUE(again.ok()) << again.error().message();
  ASSERT_TRUE((*again)->Close({{"status", "error"}}).ok());
  EXPECT_TRUE(VerifyWith(path, *signer).ok());
}

TEST(SessionLogWriter, ADeletedOrTruncatedLogStopsTheWriter) {
  TempDir tmp;
  auto signer = NewSigner();
  for (bool deleted : {true, false}) {
    std::string path = tmp / (deleted ? "deleted" : "truncated");
    std::string reason;
    WriterOptions o = Quiet();
    o.on_failure = [&](const std::string& why) { reason = why; };
    auto w = Open(path, signer, o);
    ASSERT_TRUE(w->Append("run.start", {{"role", "triage"}}).ok());
    ASSERT_TRUE(w->Append("steer", {{"m", "one"}}).ok());
    ASSERT_TRUE(w->CheckFile().ok());
    if (deleted) {
      ASSERT_EQ(::unlink(path.c_str()), 0);
    } else {
      ASSERT_EQ(::truncate(path.c_str(), 10), 0);
    }
    auto check = w->CheckFile();
    ASSERT_FALSE(check.ok());
    EXPECT_NE(reason.find(deleted ? "was deleted" : "truncated or written by another"),
              std::string::npos)
        << reason;
    EXPECT_FALSE(w->Append("steer", {{"m", "two"}}).ok());
    EXPECT_FALSE(w->Close({{"status", "succeeded"}}).ok());
  }
}

}  // namespace
}  // namespace kiln::sessionlog
