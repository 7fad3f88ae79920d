// The JSON shapes of the forge's objects, shared by the HTTP API (docs/api.md)
// and `--json` output of the CLI, so both say the same thing the same way.
// They are GitHub's REST shapes (api.github.com's OpenAPI description, which
// tests/browser/forge-api.mjs checks them against): every field GitHub's
// schema requires, filled from what the forge has, with times as RFC 3339
// UTC strings. A few fields are kiln's own besides ("verdict", "severity",
// a repository's "labels" and "maintainers").
//
// wire.cc holds the times, the parsing and the events; wire_objects.cc the
// objects with GitHub's fields.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

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

// Where the objects' links point: html_url at the web view, url and the
// other *_url at the API. Built by MakeLinks.
struct Links {
  std::string web;  // the web view's base URL, without a trailing slash
  std::string api;  // the API's base URL ("<web>/api/v1"), without a trailing slash
  std::string bot;  // the pipeline's bot: its user objects are of type "Bot"
};
// web_url and api_url lose their trailing slashes; api_url "" means
// web_url + "/api/v1" (where `kiln serve` serves the API).
Links MakeLinks(std::string_view web_url, std::string_view api_url = "", std::string bot = "");

// Numeric ids of what has no row id of its own (repositories, users,
// labels, issues, pull requests, statuses): the first 8 bytes of
// SHA-256("<kind>:<key>"), big-endian, folded to [1, 2^53) so that a
// JavaScript number holds them exactly. Stable for as long as the key is.
int64_t StableId(std::string_view kind, std::string_view key);
// GitHub's opaque node_id: base64 of "kiln:<kind>:<id>".
std::string NodeId(std::string_view kind, int64_t id);
// An inline comment of a review has no row: its id is the review's id
// times 2^20 plus its place in the review (from 1). ReviewOfComment undoes it.
int64_t ReviewCommentId(int64_t review_id, size_t index);
std::pair<int64_t, size_t> ReviewOfComment(int64_t comment_id);

// A user as GitHub's simple-user: login, id, node_id, type ("User", or
// "Bot" for the pipeline's bot and names ending in "[bot]"), the links.
nlohmann::json UserJson(const Links& links, const std::string& login);
// The acting user of GET /user, as GitHub's private-user: UserJson and its
// profile fields (null or 0: the forge keeps no profile), created_ms when
// known (0: unknown).
nlohmann::json AuthenticatedUserJson(const Links& links, const std::string& login,
                                     int64_t created_ms);
// A label of repo: id, node_id, url, name, color, description, default.
nlohmann::json LabelJson(const Links& links, const std::string& repo, const std::string& name);
nlohmann::json RepoJson(const Links& links, const LocalRepo& repo);
// The issue side (a pull request's too, with "pull_request" links).
nlohmann::json IssueJson(const Links& links, const LocalRepo& repo, const Issue& issue);
// A pull request as GitHub's pull-request-simple (lists), or, with details,
// as its full pull-request (commits, additions, mergeable, ...). state is
// GitHub's: "open" or "closed", with "merged" and "merged_at" set for a
// merged one.
nlohmann::json PullJson(const Links& links, const LocalRepo& repo, const PullRequest& pull,
                        const PullDetails* details = nullptr);
// An issue comment; is_pull says whether it is on a pull request (its
// html_url is then under /pull/).
nlohmann::json CommentJson(const Links& links, const LocalRepo& repo, bool is_pull,
                           const Comment& comment);
// A review of pull request number: state APPROVED, COMMENTED,
// CHANGES_REQUESTED or PENDING, and kiln's "verdict" and inline "comments".
nlohmann::json ReviewJson(const Links& links, const LocalRepo& repo, int64_t number,
                          const Review& review);
// An inline comment as GitHub's review comment (GET .../pulls/N/comments).
nlohmann::json PullCommentJson(const Links& links, const LocalRepo& repo, int64_t number,
                               const PullComment& comment);
// A file of a pull request's diff as GitHub's diff-entry, head_sha the
// commit its blob and raw links point at.
nlohmann::json FileJson(const Links& links, const LocalRepo& repo, const std::string& head_sha,
                        const PullFile& file);
nlohmann::json StatusJson(const Links& links, const LocalRepo& repo, const CommitStatus& status);
// GET .../commits/REF/status: the statuses of sha and their combined state
// (failure or error anywhere: failure; else pending anywhere, or none at
// all: pending; else success).
nlohmann::json CombinedStatusJson(const Links& links, const LocalRepo& repo, const std::string& sha,
                                  const std::vector<CommitStatus>& statuses);
nlohmann::json EventJson(const InboxEntry& entry);

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

// GitHub's review states for a verdict: APPROVED, COMMENTED,
// CHANGES_REQUESTED, PENDING.
std::string ReviewState(const std::string& verdict);

}  // namespace kiln::forge::wire
