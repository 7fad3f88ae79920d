// The shapes of what the local forge accepts from its users: repository,
// user and label names, titles and bodies, review fields and commit states.
// Every check returns kInvalidArgument naming the field and the value, so the
// CLI and the API can pass the message on as it is. Written out rather than
// as std::regex (see controller/names.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace kiln::forge::validate {

// The label set a new repository gets: the pipeline's labels, and "area:*",
// which accepts any area:<name>.
const std::vector<std::string>& DefaultLabels();

// "owner/name": two segments of [A-Za-z0-9._-]{1,100}, neither starting with
// '.' and the name not ending in ".git" (the bare repository adds it).
Status RepoName(std::string_view repo);

// A user: [A-Za-z0-9][A-Za-z0-9._-]{0,63}, optionally followed by "[bot]".
Status UserName(std::string_view user);

// Whether label is in set: equal to an entry, or matching an entry "P*" as
// P followed by one or more of [A-Za-z0-9._/-].
bool LabelInSet(std::string_view label, const std::vector<std::string>& set);
// LabelInSet, or an error naming the label, the repository and the set.
Status Label(std::string_view label, const std::string& repo, const std::vector<std::string>& set);

// One line, not blank, at most 256 bytes.
Status Title(std::string_view title);
// At most 65536 bytes. what names the field ("body", "comment").
Status Body(std::string_view body, std::string_view what);

// A 40-hex commit name, lowercased; an error naming what otherwise.
Result<std::string> Sha(std::string_view sha, std::string_view what);

// Review verdicts (approve | comment | request_changes), inline comment
// sides (RIGHT | LEFT) and severities (blocker | major | minor | nit),
// commit states (pending | success | failure | error).
Status Verdict(std::string_view verdict);
Status Side(std::string_view side);
Status Severity(std::string_view severity);
Status StatusState(std::string_view state);

// The range of an inline comment that ends at line on side: start_line 0
// with start_side "" for a comment on line alone, else start_line ≥ 1 on
// start_side (RIGHT | LEFT), before line when both are on one side (GitHub's
// rule: a range starts before it ends). Whether the lines are in the diff is
// git::WhyNotAnchored's question.
Status CommentRange(int64_t start_line, std::string_view start_side, int64_t line,
                    std::string_view side);

// The issue numbers a pull request body closes when merged, in order of
// appearance and without repeats: "Fixes #12", "closes #3", "Resolved: #4"
// (close, closes, closed, fix, fixes, fixed, resolve, resolves, resolved;
// any case; the keyword starts a word).
std::vector<int64_t> ClosingReferences(std::string_view body);

}  // namespace kiln::forge::validate
