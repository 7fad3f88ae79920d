// GitHub's REST API v3 over libcurl (docs/github.md): JSON in and out, the
// API's error shapes turned into one clear message, pagination through the
// Link header, and the rate limits obeyed:
//   - a secondary rate limit (403 or 429 with retry-after) waits that long;
//   - an exhausted primary limit (403 or 429 with x-ratelimit-remaining: 0)
//     waits until x-ratelimit-reset;
//   - 5xx answers and transport failures back off exponentially, for
//     requests that are safe to repeat (every method but POST: a POST that
//     failed may have been done).
// A wait longer than Options::max_wait_ms is not waited: the call fails
// with the reason, and the caller's work stays to be retried later.
//
// Thread-safe: each call takes an http client of its own from a pool.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "runtime/model/http_client.h"

namespace kiln::github {

struct RestOptions {
  std::string api_url = "https://api.github.com";  // GitHub Enterprise: https://HOST/api/v3
  std::string ca_file;                             // "": the system's CAs
  std::string user_agent = "kiln";
  int max_attempts = 5;           // per call, the first included
  uint64_t max_wait_ms = 60'000;  // longest single wait for a rate limit
  uint64_t backoff_ms = 500;      // first 5xx backoff, doubled each time
  // How the client waits; tests pass one that records and returns at once.
  std::function<void(std::chrono::milliseconds)> sleep;
  // Seconds since the epoch (x-ratelimit-reset is absolute).
  std::function<int64_t()> now_s;
};

struct Reply {
  long status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  nlohmann::json body;                         // null for an empty body
};

class Rest {
 public:
  explicit Rest(RestOptions options);

  // One call: method ("GET", "POST", "PATCH", "PUT", "DELETE"), path below
  // api_url ("/repos/o/r/issues/1") or an absolute URL of the same server (a
  // Link), a JSON body (null: none), authorization the whole Authorization
  // header value ("Bearer ..."). A 2xx is the Reply; anything else, after
  // the retries above, is an error:
  //   "GitHub POST /repos/o/r/pulls: 422 Validation Failed: A pull request already exists ..."
  // with the code kNotFound (404), kInvalidArgument (400, 422),
  // kPermission (401, 403), kTimeout (a rate limit longer than max_wait_ms)
  // or kIO (5xx, transport). status, when given, gets the last HTTP status
  // (0: no answer).
  Result<Reply> Call(const std::string& method, const std::string& path, const nlohmann::json& body,
                     const std::string& authorization, long* status = nullptr);

  // Every page of a list endpoint (per_page=100 added to the query),
  // following rel="next" of the Link header; the arrays joined.
  Result<nlohmann::json> List(const std::string& path, const std::string& authorization,
                              long* status = nullptr);

 private:
  std::string Url(const std::string& path) const;
  struct Attempt {
    bool retry = false;
    uint64_t wait_ms = 0;  // 0: the usual backoff
    long status = 0;
    std::string location;  // where a redirect points
  };
  Result<Reply> Once(const std::string& method, const std::string& url, const std::string& body,
                     const std::string& authorization, Attempt& attempt);

  std::unique_ptr<http_client::Client> Take();
  void Give(std::unique_ptr<http_client::Client> client);

  RestOptions options_;
  std::mutex mu_;
  std::vector<std::unique_ptr<http_client::Client>> idle_;  // guarded by mu_
};

// The URL of rel="next" in a Link header value, "" when there is none.
std::string NextLink(const std::string& link);

// GitHub's error body as one line: message, then each errors[] entry's
// message (or resource.field code), joined with "; ".
std::string ErrorText(const nlohmann::json& body);

}  // namespace kiln::github
