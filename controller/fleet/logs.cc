#include "controller/fleet/logs.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <set>
#include <vector>

#include "base/clock.h"
#include "base/digest.h"
#include "base/fd.h"
#include "base/strings.h"
#include "controller/sessionlog/record.h"
#include "controller/sessionlog/verify.h"
#include "runtime/model/http_client.h"

namespace kiln::fleet {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kScheme = "KilnHost";
constexpr std::string_view kLogs = "/api/v1/fleet/logs/";
constexpr std::string_view kBlobs = "/api/v1/fleet/blobs/";
// A log or blob larger than this is not fetched (a run's log is bounded by
// its budgets well below it).
constexpr uint64_t kMaxBytes = 1ull << 30;

std::string Message(std::string_view target, std::string_view method, std::string_view path,
                    int64_t ts, std::string_view host) {
  return "kiln-fleet-request/2\nto " + std::string(target) + "\n" + std::string(method) + "\n" +
         std::string(path) + "\n" + std::to_string(ts) + "\nfrom " + std::string(host) + "\n";
}

// One refusal whatever failed: a caller learns nothing of the fleet's hosts.
Error Refused() {
  return Error(Error::Code::kPermission, "not a request signed by a host of this store");
}

// A log's file name as hosts ask for it: a run id (and attempt) and ".log",
// nothing that could leave the log directory.
bool LogName(std::string_view name) {
  return name.size() > 4 && name.ends_with(".log") && name[0] != '.' &&
         sessionlog::ValidRunId(name.substr(0, name.size() - 4));
}

bool BlobName(std::string_view name) {
  return name.size() == 64 && std::all_of(name.begin(), name.end(), [](unsigned char c) {
           return std::isdigit(c) || (c >= 'a' && c <= 'f');
         });
}

std::string Safe(std::string_view owner) {
  std::string out(owner);
  for (char& c : out) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') c = '_';
  }
  return out;
}

}  // namespace

Result<std::string> SignRequest(const sessionlog::Signer& signer, std::string_view host,
                                std::string_view target, std::string_view method,
                                std::string_view path, int64_t now_ms) {
  KILN_ASSIGN_OR_RETURN(std::string sig, signer.Sign(Message(target, method, path, now_ms, host)));
  return std::string(kScheme) + " " + std::string(host) + " " + std::to_string(now_ms) + " " +
         Hex(sig);
}

Result<std::string> CheckRequest(store::Store& store, std::string_view self,
                                 std::string_view authorization, std::string_view method,
                                 std::string_view path, int64_t now_ms) {
  std::vector<std::string_view> parts;
  for (size_t at = 0; at <= authorization.size();) {
    size_t space = std::min(authorization.find(' ', at), authorization.size());
    if (space > at) parts.push_back(authorization.substr(at, space - at));
    at = space + 1;
  }
  if (parts.size() != 4 || parts[0] != kScheme) return Refused();
  const std::string host(parts[1]);
  int64_t ts = 0;
  // Compared without a subtraction a chosen time could overflow.
  if (std::from_chars(parts[2].data(), parts[2].data() + parts[2].size(), ts).ec != std::errc{} ||
      ts < now_ms - kRequestWindowMs || ts > now_ms + kRequestWindowMs) {
    return Refused();
  }
  std::string sig(64, '\0');
  if (!ParseHex(parts[3], reinterpret_cast<uint8_t*>(sig.data()), sig.size())) return Refused();
  // The host's records (one per `kiln serve` it ran, each with the host's
  // key): `kiln` commands on that host sign with the same key.
  auto hosts = store.Hosts();
  if (!hosts.ok()) return Error(Error::Code::kIO, "the store cannot say who its hosts are");
  const std::string message = Message(self, method, path, ts, host);
  for (const store::Host& h : *hosts) {
    if (store::OwnerHost(h.name) != host || h.log_key.empty()) continue;
    auto key = sessionlog::PublicKey::FromPem(h.log_key, "the key of host " + host);
    if (key.ok() && key->Verify(message, sig)) return host;
  }
  return Refused();
}

Served Serve(store::Store& store, std::string_view self, const std::string& log_dir,
             std::string_view method, std::string_view path, std::string_view authorization,
             int64_t now_ms) {
  auto who = CheckRequest(store, self, authorization, method, path, now_ms);
  if (!who.ok()) {
    return {who.error().code() == Error::Code::kPermission ? 401 : 503,
            who.error().message() + "\n", "text/plain; charset=utf-8"};
  }
  std::string file;
  if (method == "GET" && path.starts_with(kLogs) && LogName(path.substr(kLogs.size()))) {
    file = log_dir + "/" + std::string(path.substr(kLogs.size()));
  } else if (method == "GET" && path.starts_with(kBlobs) && BlobName(path.substr(kBlobs.size()))) {
    file = log_dir + "/blobs/" + std::string(path.substr(kBlobs.size()));
  } else {
    return {404, "no such log or blob\n", "text/plain; charset=utf-8"};
  }
  auto data = ReadFile(file);
  if (!data.ok()) return {404, "no such log or blob\n", "text/plain; charset=utf-8"};
  return {200, std::move(*data), "application/octet-stream"};
}

std::vector<sessionlog::PublicKey> KeysOfRunHost(store::Store& store, const store::Run& run,
                                                 std::string_view self) {
  std::vector<sessionlog::PublicKey> keys;
  const std::string host = store::OwnerHost(run.owner);
  if (host.empty() || host == store::OwnerHost(self)) return keys;
  auto hosts = store.Hosts();
  if (!hosts.ok()) return keys;
  for (const store::Host& h : *hosts) {
    if (store::OwnerHost(h.name) != host || h.log_key.empty()) continue;
    auto key = sessionlog::PublicKey::FromPem(h.log_key, "the key of host " + h.name);
    if (key.ok()) keys.push_back(*key);
  }
  return keys;
}

Result<std::string> Fetcher::LogOf(const store::Run& run) {
  if (run.log_path.empty()) {
    return Error::Invalid("run " + run.id + " has no session log: it never started");
  }
  const std::string host = store::OwnerHost(run.owner);
  if (host.empty() || host == store::OwnerHost(host_)) return run.log_path;  // written here
  KILN_ASSIGN_OR_RETURN(std::vector<store::Host> hosts, store_.Hosts());
  auto it = std::find_if(hosts.begin(), hosts.end(),
                         [&](const store::Host& h) { return h.name == run.owner; });
  const std::string whose =
      "the session log of run " + run.id + " (on host " + Quote(run.owner) + ")";
  if (it == hosts.end()) return Error::NotFound(whose + ": that host is not in the store");
  if (it->url.empty()) {
    return Error(Error::Code::kIO,
                 whose + ": that host serves no API (its pipeline.api_listen is off)");
  }
  if (it->log_key.empty()) return Error::NotFound(whose + ": the store holds no key of that host");
  const std::string name = fs::path(run.log_path).filename().string();
  if (!LogName(name)) return Error::Invalid(whose + ": " + Quote(name) + " is not a log's name");
  const std::string dir = cache_ + "/" + Safe(run.owner);
  const std::string local = dir + "/" + name;
  const bool ended = store::IsTerminal(run.status);
  std::error_code ec;
  fs::create_directories(dir + "/blobs", ec);
  if (ec) return Error::Sys("mkdir(" + Quote(dir + "/blobs") + ")", ec.value());
  // Fetches of one log take turns (the run page, the CLI, another process):
  // each finds what the one before it left.
  const std::string lock_path = local + ".lock";
  UniqueFd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640));
  if (!lock.valid()) return Error::Sys("open(" + Quote(lock_path) + ")", errno);
  if (::flock(lock.get(), LOCK_EX) != 0)
    return Error::Sys("flock(" + Quote(lock_path) + ")", errno);
  // The copy verified when the run ended needs no second fetch; a running
  // run's copy is used as it is for kRefetchMs.
  struct stat st {};
  const bool have = ::stat(local.c_str(), &st) == 0;
  if (have && ended && !run.log_head.empty()) {
    auto seen = ReadFile(local + ".head");
    if (seen.ok() && *seen == run.log_head) return local;
  }
  if (have && !ended &&
      NowMs() - (st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1'000'000) < kRefetchMs) {
    return local;
  }

  http_client::Client http;
  const std::string target = store::OwnerHost(run.owner);
  auto get = [&](std::string_view path) -> Result<std::string> {
    KILN_ASSIGN_OR_RETURN(std::string auth, SignRequest(signer_, store::OwnerHost(host_), target,
                                                        "GET", path, NowMs()));
    http_client::Request req;
    req.method = "GET";
    std::string base = it->url;
    while (base.ends_with('/')) base.pop_back();
    req.url = base + std::string(path);
    req.headers = {"Authorization: " + auth};
    req.connect_timeout_ms = 5'000;
    req.idle_timeout_ms = 30'000;
    req.total_timeout_ms = 300'000;
    req.max_body_bytes = kMaxBytes;
    http_client::Response resp = http.Send(req);
    if (resp.error) return resp.error->Wrap(whose + ": " + req.url);
    if (resp.status != 200) {
      std::string said = resp.body.substr(0, 200);
      while (!said.empty() && said.back() == '\n') said.pop_back();
      return Error(resp.status == 401 ? Error::Code::kPermission : Error::Code::kIO,
                   whose + ": " + req.url + " answered " + std::to_string(resp.status) +
                       (said.empty() ? "" : ": " + said));
    }
    return std::move(resp.body);
  };
  KILN_ASSIGN_OR_RETURN(std::string log, get(std::string(kLogs) + name));
  // Its blobs, each once.
  std::set<std::string> blobs;
  for (size_t at = 0; at < log.size();) {
    size_t end = std::min(log.find('\n', at), log.size());
    auto rec = sessionlog::ParseRecord(std::string_view(log).substr(at, end - at));
    if (rec.ok() && rec->blob) blobs.insert(Hex(rec->blob->sha256));
    at = end + 1;
  }
  for (const std::string& hex : blobs) {
    const std::string path = dir + "/blobs/" + hex;
    if (::access(path.c_str(), R_OK) == 0) continue;
    KILN_ASSIGN_OR_RETURN(std::string blob, get(std::string(kBlobs) + hex));
    if (Sha256Hex(blob) != hex) {
      return Error(Error::Code::kCorruption, whose + ": blob " + hex + " does not match its name");
    }
    KILN_TRY(WriteFileAtomic(path, blob, 0640, Sync::kNoFsync));
  }
  // Verified where it is written, then moved into place: a reader never sees
  // a copy that has not verified.
  const std::string part = local + ".part";
  KILN_TRY(WriteNewFile(part, log, 0640, Sync::kNoFsync));
  struct Remove {
    std::string path;
    ~Remove() { ::unlink(path.c_str()); }
  } remove_part{part};
  KILN_ASSIGN_OR_RETURN(
      sessionlog::PublicKey key,
      sessionlog::PublicKey::FromPem(it->log_key, "the key of host " + run.owner));
  sessionlog::VerifyOptions vo;
  vo.trusted_keys = {key};
  vo.blob_dir = dir + "/blobs";
  KILN_ASSIGN_OR_RETURN(sessionlog::VerifyReport report, sessionlog::Verify(part, vo));
  const std::string head = Hex(report.head);
  std::string wrong;
  if (!report.ok()) {
    wrong = " does not verify: " + (report.findings.empty()
                                        ? std::to_string(report.findings_total) + " findings"
                                        : sessionlog::FormatFinding(report.findings.front()));
  } else if (ended && !run.log_head.empty() && (!report.complete || head != run.log_head)) {
    wrong = " is not the log the store recorded: it ends at " + head +
            (report.complete ? "" : " without a signed run.end") + ", the store's head is " +
            run.log_head;
  }
  // The head file goes first: a copy is never taken for another head's.
  ::unlink((local + ".head").c_str());
  if (!wrong.empty()) {
    ::unlink(local.c_str());  // an earlier copy is no proof of this one
    return Error(Error::Code::kCorruption, whose + wrong);
  }
  fs::rename(part, local, ec);
  if (ec) return Error::Sys("rename(" + Quote(part) + ")", ec.value());
  if (ended) KILN_TRY(WriteFileAtomic(local + ".head", head, 0640, Sync::kNoFsync));
  return local;
}

}  // namespace kiln::fleet
