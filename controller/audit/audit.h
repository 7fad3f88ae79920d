// `kiln audit`: one run as a self-contained report an auditor can archive
// (docs/audit.md): the log's verification verdict, the run's inputs, a
// timeline of model turns and tool calls, every proxy request, steering,
// the final diff, the result, the verify gate and the run's end. Built from
// the session log alone (redacted when it was written), as JSON, Markdown,
// or HTML with no external resource.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "controller/sessionlog/entries.h"
#include "controller/sessionlog/signer.h"
#include "runtime/spec.h"

namespace kiln::audit {

// The report's sections from the log's records, folded one record at a
// time: over a whole log for Build, and as a log grows for the web view.
class Folder {
 public:
  struct Change {
    enum Kind { kNone, kTimeline, kProxy, kOther } kind = kNone;
    size_t index = 0;  // of the timeline item or proxy request added or changed
  };
  Change Add(const sessionlog::Entry& e);

  // One item per model turn (kind "model"), tool call ("tool"), steering
  // message ("steer"), controller note ("note") or recovery ("recovery").
  const nlohmann::json& timeline() const { return timeline_; }
  const nlohmann::json& proxy() const { return proxy_; }
  // run.start's inputs (empty before it), the result and the run's end (null
  // before them).
  nlohmann::json inputs() const;
  const nlohmann::json& result() const { return result_; }
  const nlohmann::json& end() const { return end_; }
  const nlohmann::json& diff() const { return diff_; }
  // The verify gate's command or decision, with the run's outcome; null
  // before either.
  nlohmann::json verify_gate() const;
  // Use so far: turns, input and output tokens, tool calls, cost in
  // micro-dollars (when the spec prices the model).
  nlohmann::json Usage() const;
  // Every section but the verification.
  nlohmann::json Sections() const;

 private:
  nlohmann::json start_, timeline_ = nlohmann::json::array(), proxy_ = nlohmann::json::array(),
                         steering_ = nlohmann::json::array();
  nlohmann::json result_, end_, gate_, diff_;
  std::map<std::string, spec::Price> prices_;
  std::map<std::pair<nlohmann::json, nlohmann::json>, size_t> turns_;  // (turn, attempt) -> item
  std::map<std::string, size_t> calls_;                                // call_id -> item
};

// The report as data: what --format json prints, and what the other formats
// render. Fails only when the log cannot be read; a log that does not verify
// gives a report whose verification section says so.
Result<nlohmann::json> Build(const std::string& log_path,
                             const std::vector<sessionlog::PublicKey>& trusted_keys);

// The report as Markdown and as one HTML page (with a link to the run's page
// in the web view when the report's "run_page" holds its http(s) URL) (inline style, no script, no
// external resource; long outputs in <details>, collapsed).
std::string Markdown(const nlohmann::json& report);
std::string Html(const nlohmann::json& report);

}  // namespace kiln::audit
