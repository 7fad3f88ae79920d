// kiln's diagnostics on stderr: "kiln: <level>: <message>" for people, or one
// JSON object per line for log collectors (`kiln --log-format json ...`):
// {"ts": RFC 3339 UTC, "level", "msg", "run" (when the message is about a
// run: it starts "run <id>: ")}.
#pragma once

#include <string>

#include "base/result.h"

namespace kiln::logging {

// Installs the stderr logger; format is "text" or "json".
Status Setup(const std::string& format);

// The JSON line for one message (what the json format writes, without the
// newline); exposed for tests.
std::string JsonLine(const std::string& ts, const std::string& level, const std::string& msg);

}  // namespace kiln::logging
