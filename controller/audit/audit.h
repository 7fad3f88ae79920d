// `kiln audit`: one run as a self-contained report an auditor can archive
// (docs/audit.md): the log's verification verdict, the run's inputs, a
// timeline of model turns and tool calls, every proxy request, steering,
// the final diff, the result, the verify gate and the run's end. Built from
// the session log alone (redacted when it was written), as JSON, Markdown,
// or HTML with no external resource.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "controller/sessionlog/signer.h"

namespace kiln::audit {

// The report as data: what --format json prints, and what the other formats
// render. Fails only when the log cannot be read; a log that does not verify
// gives a report whose verification section says so.
Result<nlohmann::json> Build(const std::string& log_path,
                             const std::vector<sessionlog::PublicKey>& trusted_keys);

// The report as Markdown and as one HTML page (inline style, no script, no
// external resource; long outputs in <details>, collapsed).
std::string Markdown(const nlohmann::json& report);
std::string Html(const nlohmann::json& report);

}  // namespace kiln::audit
