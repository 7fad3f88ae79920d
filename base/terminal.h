// Text that came from outside kiln — a model's reply, an agent's output, a
// forge user's title — made safe to print on a terminal. Such text may carry
// escape sequences that retitle the window, erase or rewrite lines, or
// reorder what is shown (Unicode bidirectional controls); printed raw, it
// could make a log or an issue read as something it is not.
#pragma once

#include <string>
#include <string_view>

namespace kiln {

// Newlines and tabs stay; every other control character, C0 (ESC, CR, BEL,
// ...), DEL and C1 (U+0080..U+009F), every bidirectional control
// (U+061C, U+200E, U+200F, U+202A..U+202E, U+2066..U+2069), and every byte that is not
// part of valid UTF-8 is written as a visible escape: \x1b, \r, \x7f,
// \u009b, \u202e, \xff. Everything else is copied.
std::string ForTerminal(std::string_view text);

// The same, for text that must stay on one line: newlines and tabs too.
std::string ForTerminalLine(std::string_view text);

// A JSON text (a session-log record, a run as JSON) for a terminal: the
// characters above inside its strings as JSON escapes (\u001b, \u009b,
// \u202e), so that the text stays valid JSON holding the same values.
std::string ForTerminalJson(std::string_view json_text);

}  // namespace kiln
