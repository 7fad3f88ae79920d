// The JSON shapes of the forge's objects, shared by the HTTP API (docs/api.md)
// and `--json` output of the CLI, so both say the same thing the same way.
// GitHub-like where GitHub has the field ("number", "state", "user":
// {"login"}, "labels": [{"name"}], "head": {"ref", "sha"}), with times as
// RFC 3339 UTC strings.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "controller/forge/forge.h"
#include "controller/forge/inbox.h"
#include "controller/forge/local.h"

namespace kiln::forge::wire {

// "2025-03-14T09:26:53Z"; "" for 0.
std::string Time(int64_t ms);

// j[field] when it is a string; nullopt when it is missing or null; an
// error naming the field when it is anything else. For what the API and the
// store read back.
Result<std::optional<std::string>> OptString(const nlohmann::json& j, const char* field);

nlohmann::json RepoJson(const LocalRepo& repo);
nlohmann::json IssueJson(const Issue& issue);
nlohmann::json PullJson(const PullRequest& pull);
nlohmann::json CommentJson(const Comment& comment);
nlohmann::json ReviewJson(const Review& review);
// An inline comment: {"path", "line", "side", "start_line", "start_side",
// "severity", "body"}, start_line and start_side null for a single line (as
// GitHub writes them). The store keeps review comments in this shape too.
nlohmann::json ReviewCommentJson(const ReviewComment& comment);
// The inline comment j holds, from the API, the store or a review run:
// "path", an integer "line" and "body" required; "side" (default RIGHT),
// "severity" (nit) and "start_side" (side) optional strings; "start_line"
// absent, null, or an integer ≥ 1. kInvalidArgument naming the field
// otherwise, or naming the comment's place when its range fails
// validate::CommentRange ("a.c:14-10 (RIGHT): start_line 14 must come ...").
Result<ReviewComment> ReviewCommentFrom(const nlohmann::json& j);
// Where an inline comment sits, for people: "src/a.c:14 (RIGHT)",
// "src/a.c:10-14 (RIGHT)", "src/a.c:10 (LEFT) to 14 (RIGHT)".
std::string Anchor(const ReviewComment& comment);
nlohmann::json StatusJson(const CommitStatus& status);
nlohmann::json EventJson(const InboxEntry& entry);

// GitHub's review states for a verdict: APPROVED, COMMENTED, CHANGES_REQUESTED.
std::string ReviewState(const std::string& verdict);

}  // namespace kiln::forge::wire
