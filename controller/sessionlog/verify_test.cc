// The verifier against every kind of tampering the issue lists: each must be
// reported as the right kind at the right seq, and nothing else.
#include "controller/sessionlog/verify.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "controller/sessionlog/testutil.h"

namespace kiln::sessionlog {
namespace {

using testing::Describe;
using testing::LogSpec;
using testing::TestLog;

// Asserts the report holds exactly one finding, of `kind` at `seq`.
void ExpectOnly(const VerifyReport& r, FindingKind kind, uint64_t seq, const std::string& ctx) {
  ASSERT_EQ(r.findings_total, 1u) << ctx << "\n" << Describe(r);
  EXPECT_EQ(r.findings[0].kind, kind) << ctx << "\n" << Describe(r);
  EXPECT_EQ(r.findings[0].seq, seq) << ctx << "\n" << Describe(r);
}

uint64_t SeqOf(const std::string& line) {
  return nlohmann::json::parse(line)["seq"].get<uint64_t>();
}
std::string TypeOf(const std::string& line) { return nlohmann::json::parse(line)["type"]; }

TEST(SessionLogVerify, IntactLogIsCompleteAndSigned) {
  TestLog log;
  VerifyReport r = log.Verify();
  EXPECT_TRUE(r.ok()) << Describe(r);
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.records, 30u);
  EXPECT_EQ(r.run_id, "run-1");
  EXPECT_EQ(r.key_id, log.signer->key_id());
  // Checkpoints at every 7 records, plus run.end.
  size_t signed_records = 0;
  for (const auto& l : log.lines()) signed_records += l.find("\"sig\":") != std::string::npos;
  EXPECT_GE(signed_records, 4u);
  EXPECT_EQ(r.signatures, signed_records);
}

// Flip every byte of a middle record, two ways: each flip is a modification
// of that record and nothing else.
TEST(SessionLogVerify, FlippedByteAnywhereInAMiddleRecordIsModifiedAtItsSeq) {
  TestLog log;
  auto lines = log.lines();
  size_t m = 12;
  ASSERT_EQ(lines[m].find("\"sig\""), std::string::npos) << "pick an unsigned record";
  const std::string original = lines[m];
  for (uint8_t mask : {0x01, 0x80}) {
    for (size_t at = 0; at < original.size(); ++at) {
      lines[m] = original;
      lines[m][at] = static_cast<char>(lines[m][at] ^ mask);
      log.Write(lines);
      std::string ctx = "flip 0x" + std::to_string(mask) + " at byte " + std::to_string(at) + ": " +
                        lines[m].substr(0, at + 1);
      ExpectOnly(log.Verify(), FindingKind::kModified, m, ctx);
    }
  }
}

TEST(SessionLogVerify, ValidButChangedFieldsAreModified) {
  TestLog log;
  auto lines = log.lines();
  const size_t m = 9;
  auto change = [&](const std::function<void(nlohmann::json&)>& edit, const char* what) {
    auto copy = lines;
    auto j = nlohmann::json::parse(copy[m]);
    edit(j);
    copy[m] = j.dump();  // still canonical: nlohmann sorts keys, no floats here
    log.Write(copy);
    ExpectOnly(log.Verify(), FindingKind::kModified, m, what);
  };
  change([](auto& j) { j["payload"]["extra"] = 1; }, "payload");
  change([](auto& j) { j["seq"] = 15; }, "seq");
  change([](auto& j) { j["seq"] = 3; }, "seq backwards");
  change([](auto& j) { j["ts"] = "2020-01-01T00:00:00.000000000Z"; }, "ts");
  change([](auto& j) { j["type"] = "steer"; }, "type");
  change([](auto& j) { j["prev"] = std::string(64, '0'); }, "prev");
}

TEST(SessionLogVerify, FlippedByteInACheckpointIsModifiedAndItsSignatureFails) {
  TestLog log;
  auto lines = log.lines();
  size_t c = 0;
  for (size_t i = 1; i + 1 < lines.size(); ++i) {
    if (TypeOf(lines[i]) == "checkpoint") c = i;
  }
  ASSERT_NE(c, 0u);
  size_t at = lines[c].find("\"value\":\"") + 12;
  lines[c][at] = lines[c][at] == 'A' ? 'B' : 'A';
  log.Write(lines);
  VerifyReport r = log.Verify();
  ASSERT_EQ(r.findings_total, 2u) << Describe(r);
  for (const auto& f : r.findings) EXPECT_EQ(f.seq, c) << Describe(r);
  EXPECT_EQ(r.findings[0].kind, FindingKind::kModified);
  EXPECT_EQ(r.findings[1].kind, FindingKind::kBadSignature);
}

TEST(SessionLogVerify, BadSignatureOnRunEnd) {
  TestLog log;
  auto lines = log.lines();
  std::string& last = lines.back();
  size_t at = last.find("\"value\":\"") + 20;
  last[at] = last[at] == 'A' ? 'B' : 'A';
  log.Write(lines);
  VerifyReport r = log.Verify();
  ExpectOnly(r, FindingKind::kBadSignature, lines.size() - 1, "sig byte of run.end");
  EXPECT_FALSE(r.complete);
}

// The last character before "==" carries 2 bits of the signature and 4
// unused ones: setting an unused bit must not give the same signature back.
TEST(SessionLogVerify, SignatureWithNonzeroUnusedBitsIsABadSignature) {
  TestLog log;
  auto lines = log.lines();
  std::string& last = lines.back();
  size_t at = last.find("==\"");
  ASSERT_NE(at, std::string::npos) << last;
  --at;
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t index = alphabet.find(last[at]);
  ASSERT_EQ(index % 16, 0u) << "written signatures keep the unused bits zero: " << last;
  last[at] = alphabet[index | 1];
  log.Write(lines);
  VerifyReport r = log.Verify();
  ExpectOnly(r, FindingKind::kBadSignature, lines.size() - 1, "unused bits of the sig");
  EXPECT_FALSE(r.complete);
}

TEST(SessionLogVerify, ChangedRunEndPayloadFailsItsSignature) {
  TestLog log;
  auto lines = log.lines();
  auto j = nlohmann::json::parse(lines.back());
  j["payload"]["status"] = "failed";
  lines.back() = j.dump();
  log.Write(lines);
  ExpectOnly(log.Verify(), FindingKind::kBadSignature, lines.size() - 1, "run.end status");
}

TEST(SessionLogVerify, UnsignedRunEndIsABadSignature) {
  TestLog log;
  auto lines = log.lines();
  auto j = nlohmann::json::parse(lines.back());
  j.erase("sig");
  lines.back() = j.dump();
  log.Write(lines);
  ExpectOnly(log.Verify(), FindingKind::kBadSignature, lines.size() - 1, "no sig");
}

TEST(SessionLogVerify, DeletedRecords) {
  TestLog log;
  auto lines = log.lines();
  for (size_t m : {size_t{0}, size_t{5}, size_t{17}}) {
    auto copy = lines;
    copy.erase(copy.begin() + static_cast<ptrdiff_t>(m));
    log.Write(copy);
    ExpectOnly(log.Verify(), FindingKind::kDeleted, m, "delete " + std::to_string(m));
  }
  auto copy = lines;
  copy.erase(copy.begin() + 10, copy.begin() + 13);
  log.Write(copy);
  VerifyReport r = log.Verify();
  ExpectOnly(r, FindingKind::kDeleted, 10, "delete 10..12");
  EXPECT_NE(r.findings[0].message.find("10..12"), std::string::npos) << Describe(r);
}

TEST(SessionLogVerify, RemovedCheckpointIsADeletedRecord) {
  TestLog log;
  auto lines = log.lines();
  for (size_t i = 1; i + 1 < lines.size(); ++i) {
    if (TypeOf(lines[i]) != "checkpoint") continue;
    auto copy = lines;
    copy.erase(copy.begin() + static_cast<ptrdiff_t>(i));
    log.Write(copy);
    ExpectOnly(log.Verify(), FindingKind::kDeleted, i, "checkpoint at " + std::to_string(i));
  }
}

TEST(SessionLogVerify, InsertedRecords) {
  TestLog log;
  const auto lines = log.lines();
  const size_t m = 8;
  auto insert_at = [&](size_t pos, const std::string& line, uint64_t want_seq, const char* what) {
    auto copy = lines;
    copy.insert(copy.begin() + static_cast<ptrdiff_t>(pos), line);
    log.Write(copy);
    VerifyReport r = log.Verify();
    ExpectOnly(r, FindingKind::kInserted, want_seq, what);
    if (r.findings_total == 1) {
      EXPECT_EQ(r.findings[0].line, pos + 1) << what << Describe(r);
    }
  };
  // A copy of a record right after it, and far away from it.
  insert_at(m + 1, lines[m], m, "duplicate after itself");
  insert_at(20, lines[m], m, "duplicate later");
  // A forged record that links correctly to the record before it.
  {
    auto j = nlohmann::json::parse(lines[m + 1]);
    j["payload"] = {{"forged", true}};
    insert_at(m + 1, j.dump(), m + 1, "forged with a valid prev");
  }
  // A forged record with a made-up prev.
  {
    auto j = nlohmann::json::parse(lines[m + 1]);
    j["prev"] = std::string(64, 'e');
    j["payload"] = {{"forged", true}};
    insert_at(m + 1, j.dump(), m + 1, "forged with a bad prev");
    j["seq"] = 99;
    insert_at(m + 1, j.dump(), 99, "forged with a far seq");
  }
  insert_at(m + 1, "this is not json", m + 1, "garbage line");
  insert_at(0, lines[3], 3, "copy before run.start");
  // After run.end.
  {
    auto j = nlohmann::json::parse(lines[5]);
    j["seq"] = lines.size();
    insert_at(lines.size(), j.dump(), lines.size(), "after run.end");
  }
}

TEST(SessionLogVerify, ForgedRecordLinkedAfterRunEndIsInserted) {
  TestLog log;
  auto lines = log.lines();
  nlohmann::json j = {{"payload", {{"x", 1}}},
                      {"prev", Hex(Sha256Of(lines.back() + "\n"))},
                      {"seq", lines.size()},
                      {"ts", "2024-01-01T00:00:00.000000000Z"},
                      {"type", "steer"}};
  lines.push_back(j.dump());
  log.Write(lines);
  ExpectOnly(log.Verify(), FindingKind::kInserted, lines.size() - 1, "chained after run.end");
}

TEST(SessionLogVerify, SwappedRecordsAreReordered) {
  TestLog log;
  const auto lines = log.lines();
  for (size_t m : {size_t{0}, size_t{6}, size_t{14}, lines.size() - 2}) {
    auto copy = lines;
    std::swap(copy[m], copy[m + 1]);
    log.Write(copy);
    VerifyReport r = log.Verify();
    ExpectOnly(r, FindingKind::kReordered, m + 1, "swap " + std::to_string(m));
  }
}

TEST(SessionLogVerify, MovedRecordIsReordered) {
  TestLog log;
  auto lines = log.lines();
  std::string moved = lines[4];
  lines.erase(lines.begin() + 4);
  lines.insert(lines.begin() + 20, moved);
  log.Write(lines);
  ExpectOnly(log.Verify(), FindingKind::kReordered, 4, "record 4 moved later");
}

TEST(SessionLogVerify, TruncationAtEveryByteOfTheLastRecord) {
  TestLog log;
  const std::string data = log.data();
  const auto lines = log.lines();
  const size_t last_start = data.size() - lines.back().size() - 1;
  for (size_t cut = last_start; cut < data.size(); ++cut) {
    log.WriteRaw(data.substr(0, cut));
    VerifyReport r = log.Verify();
    ExpectOnly(r, FindingKind::kTruncated, lines.size() - 1, "cut at " + std::to_string(cut));
    EXPECT_FALSE(r.complete);
  }
}

TEST(SessionLogVerify, TruncationInTheMiddleAndEmptyLog) {
  TestLog log;
  auto lines = log.lines();
  lines.resize(11);
  log.Write(lines);
  ExpectOnly(log.Verify(), FindingKind::kTruncated, 11, "11 records left");
  log.WriteRaw("");
  ExpectOnly(log.Verify(), FindingKind::kTruncated, 0, "empty");
}

TEST(SessionLogVerify, WrongKeyIsUnknownKeyAtEverySignedRecord) {
  TestLog log;
  auto other = testing::NewSigner();
  VerifyReport r = log.Verify({other->public_key()});
  auto lines = log.lines();
  std::vector<uint64_t> signed_seqs;
  for (const auto& l : lines) {
    if (l.find("\"sig\":") != std::string::npos) signed_seqs.push_back(SeqOf(l));
  }
  ASSERT_EQ(r.findings_total, signed_seqs.size()) << Describe(r);
  for (size_t i = 0; i < signed_seqs.size(); ++i) {
    EXPECT_EQ(r.findings[i].kind, FindingKind::kUnknownKey);
    EXPECT_EQ(r.findings[i].seq, signed_seqs[i]);
  }
  EXPECT_FALSE(r.complete);
}

TEST(SessionLogVerify, RotatedKeysAreTrustedTogether) {
  TestLog log;
  auto other = testing::NewSigner();
  VerifyReport r = log.Verify({other->public_key(), log.signer->public_key()});
  EXPECT_TRUE(r.ok()) << Describe(r);
}

TEST(SessionLogVerify, BlobsAreCheckedAndNamedBySha256) {
  LogSpec spec;
  spec.blob_threshold = 1024;
  spec.big_payload_at = std::string(4000, 'z');
  TestLog log(spec);
  VerifyReport r = log.Verify();
  ASSERT_TRUE(r.ok()) << Describe(r);
  ASSERT_EQ(r.blobs, 1u);
  std::string name;
  uint64_t seq = 0;
  for (const auto& l : log.lines()) {
    auto j = nlohmann::json::parse(l);
    if (j.contains("blob")) {
      name = j["blob"]["sha256"];
      seq = j["seq"];
    }
  }
  std::string blob_path = log.dir / ("blobs/" + name);
  std::string content = testing::Slurp(blob_path);
  EXPECT_EQ(Hex(Sha256Of(content)), name);

  std::string altered = content;
  altered[10] ^= 1;
  testing::Spit(blob_path, altered);
  ExpectOnly(log.Verify(), FindingKind::kBlobAltered, seq, "altered blob");
  testing::Spit(blob_path, content + " ");
  ExpectOnly(log.Verify(), FindingKind::kBlobAltered, seq, "extended blob");
  std::filesystem::remove(blob_path);
  ExpectOnly(log.Verify(), FindingKind::kBlobMissing, seq, "missing blob");
}

// Malformed input gets a clear finding, never a crash.
TEST(SessionLogVerify, MalformedInput) {
  VerifyOptions o;
  auto only_kinds = [&](std::string_view data, std::initializer_list<FindingKind> kinds,
                        const char* what) {
    VerifyReport r = VerifyBuffer(data, o, nullptr);
    EXPECT_FALSE(r.ok()) << what;
    for (const auto& f : r.findings) {
      EXPECT_NE(std::find(kinds.begin(), kinds.end(), f.kind), kinds.end()) << what << "\n"
                                                                            << Describe(r);
      EXPECT_FALSE(f.message.empty());
    }
  };
  using K = FindingKind;
  only_kinds("not json\n", {K::kMalformed, K::kTruncated}, "not json");
  only_kinds("{}\n", {K::kMalformed, K::kTruncated}, "empty object");
  only_kinds("[1,2]\n", {K::kMalformed, K::kTruncated}, "array");
  only_kinds("{\"payload\":{},\"seq\":0}\n", {K::kMalformed, K::kTruncated}, "missing fields");
  only_kinds("{\"payload\":{},\"prev\":\"00\",\"seq\":\"0\",\"ts\":1,\"type\":\"run.start\"}\n",
             {K::kMalformed, K::kTruncated}, "wrong types");
  only_kinds(std::string(5000, '{') + "\n", {K::kMalformed, K::kTruncated}, "deep nesting");
  only_kinds(std::string("\0\0\0\n\xff\xfe\n", 7), {K::kMalformed, K::kTruncated}, "binary");

  VerifyReport r = VerifyBuffer("not json\n", o, nullptr);
  EXPECT_NE(Describe(r).find("a record must be a JSON object"), std::string::npos) << Describe(r);
}

TEST(SessionLogVerify, OverlongLineIsReportedWithoutBufferingIt) {
  TestLog log;
  auto lines = log.lines();
  VerifyOptions o;
  o.trusted_keys = {log.signer->public_key()};
  o.max_line_bytes = 4096;
  lines[7] = std::string(1 << 20, 'x');
  VerifyReport r = VerifyBuffer(testing::Join(lines), o, nullptr);
  ExpectOnly(r, FindingKind::kModified, 7, "1 MiB line");
  EXPECT_NE(r.findings[0].message.find("over the 4096-byte limit"), std::string::npos)
      << Describe(r);

  // The same through a file descriptor, as the last line, without a newline.
  lines.resize(5);
  log.WriteRaw(testing::Join(lines) + std::string(3 << 20, 'y'));
  auto rf = Verify(log.path, o);
  ASSERT_TRUE(rf.ok());
  ExpectOnly(*rf, FindingKind::kTruncated, 5, "3 MiB torn line");
}

TEST(SessionLogVerify, NonCanonicalButEquivalentJsonIsModified) {
  TestLog log;
  auto lines = log.lines();
  // Same content, different bytes: the hash no longer matches.
  lines[4].insert(1, " ");
  log.Write(lines);
  ExpectOnly(log.Verify(), FindingKind::kModified, 4, "whitespace");
}

}  // namespace
}  // namespace kiln::sessionlog

namespace kiln::sessionlog {
namespace {

// Several MiB: the file reader's chunks are hashed on both of its threads.
TEST(SessionLogVerify, LargeLogThroughTheFileReader) {
  testing::TempDir tmp;
  auto signer = testing::NewSigner();
  WriterOptions o;
  o.durability = Durability::kNone;
  o.checkpoint_interval_ms = 0;
  auto w = Writer::Create(tmp / "log", "big", signer, o);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append("run.start", nlohmann::json::object()).ok());
  for (int i = 0; i < 6000; ++i) {
    ASSERT_TRUE((*w)->Append("tool.result", {{"output", std::string(1000, 'a' + i % 26)}}).ok());
  }
  ASSERT_TRUE((*w)->Close(nlohmann::json::object()).ok());
  VerifyOptions vo;
  vo.trusted_keys = {signer->public_key()};
  auto r = Verify(tmp / "log", vo);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->ok()) << Describe(*r);
  EXPECT_EQ(r->records, 1u + 6000u + 6u + 1u);

  // A change in each of the first chunks is found at its seq.
  std::string data = testing::Slurp(tmp / "log");
  for (size_t line : {size_t{500}, size_t{1500}, size_t{2500}, size_t{3500}}) {
    auto lines = testing::Lines(data);
    lines[line][25] = lines[line][25] == 'b' ? 'c' : 'b';  // inside the output string
    testing::Spit(tmp / "log", testing::Join(lines));
    auto t = Verify(tmp / "log", vo);
    ASSERT_TRUE(t.ok());
    ExpectOnly(*t, FindingKind::kModified, SeqOf(testing::Lines(data)[line]),
               "line " + std::to_string(line));
  }
}

}  // namespace
}  // namespace kiln::sessionlog

namespace kiln::sessionlog {
namespace {

TEST(SessionLogVerify, RunsOfJunkLinesAreOneFinding) {
  testing::TestLog log;
  auto lines = log.lines();
  std::vector<std::string> junk(5000, "");
  junk[17] = "not json";
  // Junk in place of record seq 9: one modification, naming the whole run.
  std::vector<std::string> damaged(lines.begin(), lines.begin() + 9);
  damaged.insert(damaged.end(), junk.begin(), junk.end());
  damaged.insert(damaged.end(), lines.begin() + 10, lines.end());
  log.Write(damaged);
  VerifyReport r = log.Verify();
  ExpectOnly(r, FindingKind::kModified, 9, "5000 junk lines");
  EXPECT_NE(r.findings[0].message.find("nor are the 4999 lines after it (to line 5009)"),
            std::string::npos)
      << Describe(r);
  EXPECT_EQ(r.findings[0].line, 10u);
  EXPECT_EQ(r.lines, damaged.size());
  // Line numbers after the junk are still the file's.
  damaged.erase(damaged.begin() + 5009 + 3);
  log.Write(damaged);
  VerifyReport r2 = log.Verify();
  ASSERT_EQ(r2.findings_total, 2u) << Describe(r2);
  EXPECT_EQ(r2.findings[1].kind, FindingKind::kDeleted);
  EXPECT_EQ(r2.findings[1].line, 5009u + 3u + 1u) << Describe(r2);
}

}  // namespace
}  // namespace kiln::sessionlog
