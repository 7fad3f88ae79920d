#include "controller/sessionlog/cli.h"

#include <unistd.h>

#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "base/digest.h"
#include "base/strings.h"
#include "base/terminal.h"
#include "controller/sessionlog/show.h"
#include "controller/sessionlog/signer.h"
#include "controller/sessionlog/verify.h"
#include "controller/sessionlog/writer.h"

namespace kiln::sessionlog::cli {
namespace {

// One line on stderr, "kiln: error: log <verb>: <what>: <why>", like every verb.
int Fail(std::string_view verb, const Error& e) {
  spdlog::error("log {}: {}", verb, e.message());
  return 2;
}

// --- verify ---------------------------------------------------------------

struct VerifyArgs {
  std::string file;
  std::vector<std::string> pubkeys;
  std::string key_dir;
  std::string blob_dir;
  bool json = false;
};

int RunVerify(const VerifyArgs& a) {
  VerifyOptions o;
  o.blob_dir = a.blob_dir;
  if (!a.pubkeys.empty()) {
    for (const auto& path : a.pubkeys) {
      Result<PublicKey> k = PublicKey::FromFile(path);
      if (!k.ok()) return Fail("verify", k.error().Wrap("--pubkey"));
      o.trusted_keys.push_back(*k);
    }
  } else {
    // No --pubkey: trust the host's keys (never create one to verify).
    Result<std::vector<PublicKey>> keys = TrustedKeys(a.key_dir);
    if (!keys.ok()) return Fail("verify", keys.error());
    o.trusted_keys = *keys;
  }
  if (o.trusted_keys.empty()) {
    std::cerr << "note: no trusted keys in " << a.key_dir
              << ": every signature will be unknown-key (pass --pubkey or --key-dir)\n";
  }
  Result<VerifyReport> r = Verify(a.file, o);
  if (!r.ok()) return Fail("verify", r.error());
  const VerifyReport& rep = *r;
  if (a.json) {
    nlohmann::json j = {{"file", a.file},
                        {"ok", rep.ok()},
                        {"complete", rep.complete},
                        {"run_id", rep.run_id},
                        {"key_id", rep.key_id},
                        {"records", rep.records},
                        {"lines", rep.lines},
                        {"bytes", rep.bytes},
                        {"blobs", rep.blobs},
                        {"signatures", rep.signatures},
                        {"findings_total", rep.findings_total}};
    j["findings"] = nlohmann::json::array();
    for (const auto& f : rep.findings) {
      j["findings"].push_back(
          {{"kind", KindName(f.kind)}, {"seq", f.seq}, {"line", f.line}, {"message", f.message}});
    }
    j["notes"] = rep.notes;
    std::cout << ForTerminalJson(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace))
              << "\n";
    return rep.ok() ? 0 : 1;
  }
  for (const auto& f : rep.findings) std::cout << ForTerminalLine(FormatFinding(f)) << "\n";
  if (rep.findings_total > rep.findings.size()) {
    std::cout << "... and " << rep.findings_total - rep.findings.size()
              << " more findings not shown\n";
  }
  for (const auto& n : rep.notes) std::cerr << "note: " << n << "\n";
  if (rep.ok()) {
    std::cerr << a.file << ": intact: " << rep.records << " records of run " << rep.run_id
              << ", ending with a signed run.end; " << rep.signatures << " signatures by key "
              << rep.key_id << ", " << rep.blobs << " blobs\n";
    return 0;
  }
  std::cerr << a.file << ": " << rep.findings_total
            << (rep.findings_total == 1 ? " finding" : " findings") << "\n";
  return 1;
}

// --- show -----------------------------------------------------------------

struct ShowArgs {
  std::string file;
  std::vector<std::string> types;
  uint64_t since = 0;
  bool json = false;
  std::string blob_dir;
};

int RunShow(const ShowArgs& a) {
  ShowOptions o;
  for (const auto& t : a.types) {
    for (auto& part : Split(t, ',')) {
      if (!part.empty()) o.types.push_back(part);
    }
  }
  o.since = a.since;
  o.json = a.json;
  o.blob_dir = a.blob_dir;
  Result<ShowStats> r = Show(a.file, o, std::cout, std::cerr);
  if (!r.ok()) return Fail("show", r.error());
  return r->damaged == 0 ? 0 : 1;
}

// --- pubkey ---------------------------------------------------------------

int RunPubkey(const std::string& key_dir, bool id_only) {
  Result<std::unique_ptr<Signer>> s = LoadOrCreateSigner(key_dir);
  if (!s.ok()) return Fail("pubkey", s.error());
  if (id_only) {
    std::cout << (*s)->key_id() << "\n";
  } else {
    std::cout << (*s)->public_key().Pem();
  }
  return 0;
}

// --- recover --------------------------------------------------------------

int RunRecover(const std::string& file, const std::string& key_dir, const std::string& status) {
  Result<std::unique_ptr<Signer>> s = LoadSigner(key_dir);
  if (!s.ok()) return Fail("recover", s.error());
  Result<std::unique_ptr<Writer>> w =
      Writer::Recover(file, std::shared_ptr<const Signer>(std::move(*s)));
  if (!w.ok()) return Fail("recover", w.error());
  Result<Appended> end = (*w)->Close(
      {{"status", status}, {"error", "the run's writer stopped; the log was recovered"}});
  if (!end.ok()) return Fail("recover", end.error());
  std::cerr << file << ": recovered; run.end written as seq " << end->seq << "\n";
  return 0;
}

// --- demo (hidden): a sample run with every record type -------------------

struct DemoArgs {
  std::string file;
  std::string run_id = "demo-run";
  std::string key_dir;
  uint64_t records = 40;
  uint64_t payload_bytes = 200;
  uint64_t checkpoint_every = 10;
  uint64_t blob_threshold = 64 * 1024;
  std::vector<std::string> secrets;  // NAME=VALUE
  bool no_close = false;
  bool no_blob = false;
};

std::string PercentEncode(std::string_view v) {
  std::string out;
  for (unsigned char c : v) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

Status Demo(const DemoArgs& a) {
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<Signer> signer, LoadOrCreateSigner(a.key_dir));
  WriterOptions o;
  o.checkpoint_every = a.checkpoint_every;
  o.blob_threshold = a.blob_threshold;
  KILN_ASSIGN_OR_RETURN(
      auto w,
      Writer::Create(a.file, a.run_id, std::shared_ptr<const Signer>(std::move(signer)), o));
  // Secrets are registered, then deliberately leaked in every form the
  // redactor knows, so tests can check none reaches the file.
  std::vector<std::pair<std::string, std::string>> secrets;
  for (const auto& s : a.secrets) {
    size_t eq = s.find('=');
    if (eq == std::string::npos) {
      return Error::Invalid("--secret " + Quote(s) + " is not NAME=VALUE");
    }
    secrets.emplace_back(s.substr(0, eq), s.substr(eq + 1));
    KILN_TRY(w->AddSecret(secrets.back().first, secrets.back().second));
  }
  auto append = [&w](std::string_view type, const nlohmann::json& payload) -> Status {
    Result<Appended> r = w->Append(type, payload);
    if (!r.ok()) return r.error().Wrap("appending " + std::string(type));
    return Ok();
  };
  std::string leak;
  for (const auto& [name, value] : secrets) {
    leak += " raw=" + value + " b64=" + Base64(value) + " basic=" + Base64("user:" + value) +
            " url=" + PercentEncode(value) + " hex=" + Hex(value);
  }
  KILN_TRY(
      append("run.start",
             {{"role", "implement"},
              {"task", "Fix the flaky test in parser_test.cc" + leak},
              {"image", {{"name", "debian-cxx"}, {"digest", "sha256:" + std::string(64, 'a')}}},
              {"repository",
               {{"url", "https://git.example.com/acme/widget.git"},
                {"commit", "4b825dc642cb6eb9a060e54bf8d69288fbee4904"}}},
              {"skill", {{"path", "skills/implement.md"}, {"sha256", std::string(64, 'b')}}},
              {"model", {{"provider", "anthropic"}, {"name", "claude-sonnet"}}},
              {"budgets", {{"max_turns", 50}, {"max_tokens", 2000000}, {"max_wall_ms", 3600000}}},
              {"limits", {{"memory_bytes", 4294967296}, {"pids", 512}, {"cpu_millis", 2000}}}}));
  std::string filler(a.payload_bytes, 'x');
  for (size_t i = 0; i < filler.size(); i += 61) filler[i] = '\n';
  uint64_t turn = 0;
  while (w->next_seq() < a.records) {
    ++turn;
    std::string call = "call-" + std::to_string(turn);
    KILN_TRY(append("model.request", {{"turn", turn},
                                      {"provider", "anthropic"},
                                      {"model", "claude-sonnet"},
                                      {"url", "https://api.anthropic.com/v1/messages"},
                                      {"body", "{\"max_tokens\":4096,\"messages\":[]}" + leak}}));
    KILN_TRY(append("model.response",
                    {{"turn", turn},
                     {"status", 200},
                     {"request_id", "req_" + std::to_string(1000 + turn)},
                     {"body", "{\"stop_reason\":\"tool_use\"}"},
                     {"usage", {{"input_tokens", 1200 + turn}, {"output_tokens", 300}}},
                     {"latency_ms", 850},
                     {"retries", 0},
                     {"stop_reason", "tool_use"}}));
    KILN_TRY(append("tool.call",
                    {{"turn", turn},
                     {"call_id", call},
                     {"tool", "shell"},
                     {"input", {{"command", "make test # turn " + std::to_string(turn)}}}}));
    KILN_TRY(append("tool.result", {{"call_id", call},
                                    {"tool", "shell"},
                                    {"output", "ok " + std::to_string(turn) + "\n" + filler + leak},
                                    {"exit_status", turn % 3 == 0 ? 1 : 0},
                                    {"duration_ms", 1490},
                                    {"truncated", false}}));
    KILN_TRY(append(
        "proxy.request",
        {{"method", "GET"},
         {"host", "pypi.org"},
         {"path", "/simple/requests/?token=" +
                      (secrets.empty() ? std::string("none") : PercentEncode(secrets[0].second))},
         {"status", turn % 4 == 0 ? 0 : 200},
         {"bytes_sent", 320},
         {"bytes_received", 18000},
         {"decision", turn % 4 == 0 ? "denied" : "allowed"},
         {"reason", turn % 4 == 0 ? "host not in the allowlist" : "allowlist: pypi.org"},
         {"duration_ms", 40}}));
    if (turn == 2) {
      KILN_TRY(
          append("steer", {{"from", "alice"}, {"message", "Please also update the changelog."}}));
    }
    if (turn == 3 && !a.no_blob) {
      std::string big = "build log" + leak + "\n";
      while (big.size() <= a.blob_threshold) {
        big += "compiler output line " + std::to_string(big.size()) + "\n";
      }
      KILN_TRY(append("tool.result", {{"call_id", call + "-build"},
                                      {"tool", "shell"},
                                      {"output", big},
                                      {"exit_status", 0},
                                      {"duration_ms", 61000},
                                      {"truncated", false}}));
    }
  }
  KILN_TRY(append("result", {{"outcome", "submitted"},
                             {"summary", "Fixed the race in parser_test.cc"},
                             {"diff_bytes", 1834},
                             {"diff_sha256", std::string(64, 'c')}}));
  if (a.no_close) return Ok();  // a crash: no run.end
  KILN_TRY(w->Close({{"status", "succeeded"},
                     {"totals", {{"turns", turn}, {"tool_calls", turn}, {"wall_ms", 123456}}}}));
  return Ok();
}

}  // namespace

void Register(CLI::App& app, int* exit_code) {
  CLI::App* log = app.add_subcommand("log", "Write, verify and read tamper-evident session logs");
  log->require_subcommand(1);
  const std::string default_keys = DefaultKeyDir();

  auto verify = std::make_shared<VerifyArgs>();
  verify->key_dir = default_keys;
  CLI::App* v = log->add_subcommand(
      "verify", "Check that a session log is complete and unmodified (exit 0 only if it is)");
  v->add_option("FILE", verify->file, "The session log")->required();
  v->add_option("--pubkey", verify->pubkeys,
                "A trusted public key (PEM file); repeat for rotated keys. Default: the keys in "
                "--key-dir");
  v->add_option("--key-dir", verify->key_dir, "Host key directory")->capture_default_str();
  v->add_option("--blob-dir", verify->blob_dir, "Blob directory (default: blobs/ beside FILE)");
  v->add_flag("--json", verify->json, "Print the report as one JSON object");
  v->callback([verify, exit_code] { *exit_code = RunVerify(*verify); });

  auto show = std::make_shared<ShowArgs>();
  CLI::App* s = log->add_subcommand("show", "Print a readable view of a run, or its raw records");
  s->add_option("FILE", show->file, "The session log")->required();
  s->add_option("--type", show->types,
                "Only these record types (comma-separated; \"model\" matches model.*)");
  s->add_option("--since", show->since, "Only records with seq >= SEQ");
  s->add_flag("--json", show->json, "Print the raw record lines");
  s->add_option("--blob-dir", show->blob_dir, "Blob directory (default: blobs/ beside FILE)");
  s->callback([show, exit_code] { *exit_code = RunShow(*show); });

  auto pub_dir = std::make_shared<std::string>(default_keys);
  auto pub_id = std::make_shared<bool>(false);
  CLI::App* p = log->add_subcommand(
      "pubkey", "Print the host's session signing public key (PEM), creating the key on first use");
  p->add_option("--key-dir", *pub_dir, "Host key directory")->capture_default_str();
  p->add_flag("--id", *pub_id, "Print the key id instead");
  p->callback([pub_dir, pub_id, exit_code] { *exit_code = RunPubkey(*pub_dir, *pub_id); });

  auto rec_file = std::make_shared<std::string>();
  auto rec_dir = std::make_shared<std::string>(default_keys);
  auto rec_status = std::make_shared<std::string>("crashed");
  CLI::App* r = log->add_subcommand(
      "recover",
      "Close the log of a run whose writer stopped: acknowledge a torn last line and "
      "append signed recovery and run.end records");
  r->add_option("FILE", *rec_file, "The session log")->required();
  r->add_option("--key-dir", *rec_dir, "Host key directory")->capture_default_str();
  r->add_option("--status", *rec_status, "run.end status")->capture_default_str();
  r->callback([rec_file, rec_dir, rec_status, exit_code] {
    *exit_code = RunRecover(*rec_file, *rec_dir, *rec_status);
  });

  auto demo = std::make_shared<DemoArgs>();
  demo->key_dir = default_keys;
  CLI::App* d = log->add_subcommand("demo", "Write a sample session log (for tests)");
  d->group("");  // hidden
  d->add_option("FILE", demo->file)->required();
  d->add_option("--run-id", demo->run_id);
  d->add_option("--key-dir", demo->key_dir);
  d->add_option("--records", demo->records);
  d->add_option("--payload-bytes", demo->payload_bytes);
  d->add_option("--checkpoint-every", demo->checkpoint_every);
  d->add_option("--blob-threshold", demo->blob_threshold);
  d->add_option("--secret", demo->secrets);
  d->add_flag("--no-close", demo->no_close);
  d->add_flag("--no-blob", demo->no_blob);
  d->callback([demo, exit_code] {
    Status st = Demo(*demo);
    *exit_code = st.ok() ? 0 : Fail("demo", st.error());
  });
}

}  // namespace kiln::sessionlog::cli
