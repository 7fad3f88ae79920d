// The JSON shapes of the forge's objects, shared by the HTTP API (docs/api.md)
// and `--json` output of the CLI, so both say the same thing the same way.
// GitHub-like where GitHub has the field ("number", "state", "user":
// {"login"}, "labels": [{"name"}], "head": {"ref", "sha"}), with times as
// RFC 3339 UTC strings.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "controller/forge/forge.h"
#include "controller/forge/inbox.h"
#include "controller/forge/local.h"

namespace kiln::forge::wire {

// "2025-03-14T09:26:53Z"; "" for 0.
std::string Time(int64_t ms);

nlohmann::json RepoJson(const LocalRepo& repo);
nlohmann::json IssueJson(const Issue& issue);
nlohmann::json PullJson(const PullRequest& pull);
nlohmann::json CommentJson(const Comment& comment);
nlohmann::json ReviewJson(const Review& review);
nlohmann::json StatusJson(const CommitStatus& status);
nlohmann::json EventJson(const InboxEntry& entry);

// GitHub's review states for a verdict: APPROVED, COMMENTED, CHANGES_REQUESTED.
std::string ReviewState(const std::string& verdict);

}  // namespace kiln::forge::wire
