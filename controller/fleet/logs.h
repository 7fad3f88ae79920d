// Session logs across the hosts of a fleet (docs/fleet.md, "Session logs
// across hosts"). A log stays on the host that wrote it; the store records
// which host ran the run (its owner), the log's path and head, and, in the
// hosts table, where each host's API is and the key it signs with.
//
// - A host serves its logs, and their blobs, to the other hosts of the
//   store only: GET /api/v1/fleet/logs/<file> and /api/v1/fleet/blobs/<hex>
//   (Serve), each request signed with the asking host's session-log key and
//   checked against the key the store holds for it (SignRequest,
//   CheckRequest).
// - A host that needs another's log (the run page, `kiln replay`, `kiln
//   audit`, `kiln runs show`) fetches it with its blobs into a cache, and
//   uses it only once it verifies: the chain, the signatures by the key of
//   the host that ran it, the blobs, and, for an ended run, a signed run.end
//   whose hash is the head the store recorded (Fetcher).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "controller/sessionlog/signer.h"
#include "controller/store/store.h"

namespace kiln::fleet {

// A signed request lasts this long, either way of the two hosts' clocks.
inline constexpr int64_t kRequestWindowMs = 60'000;
// A running run's log, fetched, is used as it is for this long.
inline constexpr int64_t kRefetchMs = 2'000;

// The Authorization header of host's request to target (host names):
// "KilnHost <host> <ms> <sig>", sig being the hex Ed25519 signature, by the
// host's session-log key, over the target, method, path, time and host, so
// that a request is good for one host, one path and one minute.
Result<std::string> SignRequest(const sessionlog::Signer& signer, std::string_view host,
                                std::string_view target, std::string_view method,
                                std::string_view path, int64_t now_ms);

// The host that signed a request to self (this host's name), when its
// signature verifies with a key the store holds for that host name and its
// time is within the window. Otherwise kPermission, one message whatever
// failed (nothing tells a host name from a key); a store that cannot be read
// is kIO.
Result<std::string> CheckRequest(store::Store& store, std::string_view self,
                                 std::string_view authorization, std::string_view method,
                                 std::string_view path, int64_t now_ms);

struct Served {
  int status = 200;
  std::string body;
  std::string content_type = "application/octet-stream";
};

// Answers a request to self (this host's name) for /api/v1/fleet/...: a log
// file of log_dir by its name, or a blob of log_dir/blobs by its hex name,
// to a host of the store. 401 for a request not signed by one, 503 when the
// store cannot say, 404 for anything else.
Served Serve(store::Store& store, std::string_view self, const std::string& log_dir,
             std::string_view method, std::string_view path, std::string_view authorization,
             int64_t now_ms);

// The session-log keys of the host that ran run, when that is another host
// than self's (an owner id): what its log, fetched here, is signed with.
// Empty for self's own host, whose logs its key_dir verifies, and for keys
// that do not parse. Only that host's: a key the store holds for another
// host never vouches for this run's log.
std::vector<sessionlog::PublicKey> KeysOfRunHost(store::Store& store, const store::Run& run,
                                                 std::string_view self);

class Fetcher {
 public:
  // host: this host's owner id (its requests are signed as it); cache_dir:
  // where fetched logs are kept (<state_dir>/fleet-logs).
  Fetcher(store::Store& store, const sessionlog::Signer& signer, std::string host,
          std::string cache_dir)
      : store_(store), signer_(signer), host_(std::move(host)), cache_(std::move(cache_dir)) {}

  // A path where run's log can be read here: its own path when the file is
  // on this host; otherwise a verified copy fetched from the host that ran
  // it. An ended run's copy is kept; a running run's is fetched again at
  // most every kRefetchMs (its log grows). Fetches of one log take turns
  // (a lock file), so none sees another's half-written copy. An error
  // names the host and what failed: unreachable, refused, or a log that does
  // not verify or does not end at the store's head.
  Result<std::string> LogOf(const store::Run& run);

 private:
  store::Store& store_;
  const sessionlog::Signer& signer_;
  std::string host_;
  std::string cache_;
};

}  // namespace kiln::fleet
