// The improver's evidence (docs/improver.md): where people corrected what a
// role did, and where its runs went wrong, over a window, read from the run
// store, the pipeline's rows and the forge's event history (the inbox holds
// the local forge's writes and GitHub's webhooks alike), as one JSON
// document the improve run is given.
//
// Every signal has an id the improver cites ("event:<inbox seq>" or
// "run:<run id>"), the issue or pull request it is about, the kiln run it
// corrects when there is one, who acted and whether they are trusted (a
// maintainer, the forge's collaborators with write access). Text written by
// anyone else is wrapped in <untrusted> as the pipeline wraps it in tasks.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "controller/forge/forge.h"
#include "controller/forge/inbox.h"
#include "controller/pipeline/state.h"
#include "controller/store/store.h"

namespace kiln::improve {

struct Window {
  std::string repo;  // the forge repository ("acme/app")
  std::string role;  // triage, spec, implement, review (verify: its runs only)
  int64_t from_ms = 0;
  int64_t to_ms = 0;
  std::string bot;  // the forge user kiln's own writes appear as
};

// The signals of w.role on w.repo from w.from_ms to w.to_ms. Only events and
// runs inside the window count; the history before it is read to know
// which pull requests and labels were kiln's.
Result<nlohmann::json> CollectSignals(const Window& w, store::Store& store, pipeline::State& state,
                                      forge::Inbox& inbox, forge::Forge& forge);

}  // namespace kiln::improve
