// One run's session log as the web view shows it, kept up to date as the log
// grows: the audit's folder over the records read so far, and the timeline
// rendered as HTML items (model turns, tool calls, steering, notes, proxy
// requests) in the log's order. A page renders from it; the event hub
// sends what changed to the pages that watch the run.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "controller/audit/audit.h"
#include "controller/sessionlog/entries.h"
#include "controller/store/store.h"

namespace kiln::web {

struct Item {
  std::string id;    // the element's id: "t<seq>" or "p<seq>"
  uint64_t seq = 0;  // of the record that began it
  uint64_t rev = 0;  // of the last record that changed it
  std::string html;  // an <li>, every value escaped
};

class RunView {
 public:
  explicit RunView(std::string log_path) : log_path_(std::move(log_path)) {}

  // Everything below is read and changed under mu.
  std::mutex mu;

  // Reads the records appended since the last call. Returns the positions
  // in items() of the items it added or changed.
  Result<std::vector<size_t>> Poll();

  const std::string& log_path() const { return log_path_; }
  const std::vector<Item>& items() const { return items_; }
  const audit::Folder& folder() const { return folder_; }
  uint64_t last_seq() const { return last_seq_; }
  const std::string& started_ts() const { return started_ts_; }
  // Bumped whenever the inputs, the result, the diff or the end changed.
  uint64_t sections_rev() const { return sections_rev_; }

 private:
  std::string log_path_;
  sessionlog::Cursor cursor_;
  audit::Folder folder_;
  std::vector<Item> items_;
  std::map<size_t, size_t> timeline_pos_, proxy_pos_;  // folder index -> items_ position
  uint64_t last_seq_ = 0;
  uint64_t sections_rev_ = 0;
  std::string started_ts_;
};

// The views of the runs being watched or shown, by log path: a page and
// the hub share one, so a log is read once however many pages show it.
// Where a run's session log can be read on this host: on a fleet, another
// host's log fetched and verified (SiteOptions::log_of).
using LogOf = std::function<Result<std::string>(const store::Run&)>;

class RunViews {
 public:
  // The view of log_path, read up to now.
  Result<std::shared_ptr<RunView>> Get(const std::string& log_path);
  // The view of run's log, where log_of finds it here.
  Result<std::shared_ptr<RunView>> Get(const store::Run& run, const LogOf& log_of);

 private:
  std::mutex mu_;
  std::map<std::string, std::weak_ptr<RunView>> views_;
  std::vector<std::shared_ptr<RunView>> recent_;  // the last few opened, kept warm
};

// One timeline item, or one proxy request, as an <li>.
std::string RenderItem(const nlohmann::json& item, const std::string& id);
std::string RenderProxy(const nlohmann::json& request, const std::string& id);

}  // namespace kiln::web
