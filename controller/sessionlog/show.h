// `kiln log show`: a readable view of a run from its session log (turns, tool
// calls with exit status, proxy traffic, result), or the raw records for
// scripts. It reads; it does not verify (that is `kiln log verify`).
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace kiln::sessionlog {

struct ShowOptions {
  // Record types to show; "model" also matches "model.request" and
  // "model.response". Empty: all.
  std::vector<std::string> types;
  uint64_t since = 0;    // first seq to show
  bool json = false;     // the raw record lines instead of the readable view
  std::string blob_dir;  // empty: "blobs" beside the log
};

struct ShowStats {
  uint64_t shown = 0;
  uint64_t damaged = 0;  // lines that are not records (reported on err)
};

Result<ShowStats> Show(const std::string& path, const ShowOptions& options, std::ostream& out,
                       std::ostream& err);

// The one-line summary of a record's payload in the readable view.
std::string Summarize(std::string_view type, const nlohmann::json& payload);

bool TypeSelected(const std::vector<std::string>& types, std::string_view type);

}  // namespace kiln::sessionlog
