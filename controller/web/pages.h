// The web view's pages and the fragments its live updates carry: the
// dashboard, its rows and its figures; the run page and its sections
// (status, budgets, outcome). Rendered on the server, every value escaped;
// the page's script only puts the fragments where their ids say.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "controller/store/store.h"
#include "controller/web/html.h"
#include "controller/web/runview.h"

namespace kiln::web {

// The dashboard's filter (its query: repo, role, status).
struct RunFilter {
  std::string repo, role, status;
  bool Matches(const store::Run& run) const;
};

// The dashboard's figures: queue depth, runs in flight, and per role the
// outcomes of the runs that finished in the last day.
std::string Stats(store::Store& store, int64_t now_ms);
std::string RunRow(const store::Run& run);
std::string Dashboard(const Viewer& viewer, const RunFilter& filter,
                      const std::vector<store::Run>& runs, const std::string& stats);

// How the run page reaches its own data: "/runs/ID" for a signed-in viewer,
// "/s/TOKEN" for a share link (read-only: no steer box, no cancel).
struct RunPageBase {
  std::string path;
  bool read_only = false;
};

// The verdict of a log's verification, when the run has ended.
struct Verdict {
  bool verified = false;
  bool complete = false;
  std::string text;  // the verifier's first finding, or the keys that signed it
};

std::string RunStatus(const store::Run& run);
// Hold view.mu for these.
std::string Budgets(const RunView& view, const store::Run& run, int64_t now_ms);
std::string Outcome(const RunView& view, const store::Run& run,
                    const std::optional<Verdict>& verdict);
// Items of the timeline older than before_seq (0: the newest), at most
// kPageItems, newest last; *first_seq is the oldest shown (0: none older).
inline constexpr size_t kPageItems = 300;
std::string TimelinePage(const RunView& view, uint64_t before_seq, uint64_t* first_seq);
std::string RunPage(const Viewer& viewer, const store::Run& run, const RunView* view,
                    const RunPageBase& base, const std::optional<Verdict>& verdict, int64_t now_ms);

std::string LoginPage(const std::string& login_csrf, const std::string& next,
                      const std::string& error);
std::string ErrorPage(const Viewer& viewer, int status, const std::string& message);

}  // namespace kiln::web
