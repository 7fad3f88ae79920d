#include "controller/forge/db.h"

#include <array>

#include "controller/store/schema.h"

namespace kiln::forge::db {
namespace {

// The forge's migrations (docs/store.md): the store's versions 4 and 5 made
// them before each owner had a track of its own.
//
// Version 1: the local forge's repositories, issues and pull requests (one
// number sequence per repository), comments, reviews, commit statuses and
// API users, and the events inbox the pipeline reads, which the GitHub
// adapter fills too. Timestamps are ms since the epoch; JSON columns hold
// compact dumps.
constexpr std::string_view kV1 = R"sql(
CREATE TABLE forge_repos (
  name TEXT PRIMARY KEY NOT NULL,
  path TEXT NOT NULL,
  default_branch TEXT NOT NULL,
  maintainers TEXT NOT NULL DEFAULT '[]',
  labels TEXT NOT NULL DEFAULT '[]',
  next_number INTEGER NOT NULL DEFAULT 1,
  created_ms INTEGER NOT NULL
);
CREATE TABLE forge_items (
  repo TEXT NOT NULL REFERENCES forge_repos (name),
  number INTEGER NOT NULL,
  is_pull INTEGER NOT NULL DEFAULT 0,
  title TEXT NOT NULL,
  body TEXT NOT NULL DEFAULT '',
  author TEXT NOT NULL,
  state TEXT NOT NULL DEFAULT 'open',
  labels TEXT NOT NULL DEFAULT '[]',
  head_branch TEXT NOT NULL DEFAULT '',
  base_branch TEXT NOT NULL DEFAULT '',
  merged_sha TEXT NOT NULL DEFAULT '',
  merge_base_sha TEXT NOT NULL DEFAULT '',
  merged_head_sha TEXT NOT NULL DEFAULT '',
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  closed_ms INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (repo, number)
);
CREATE INDEX forge_items_by_head ON forge_items (repo, head_branch, state);
CREATE TABLE forge_comments (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  repo TEXT NOT NULL,
  number INTEGER NOT NULL,
  author TEXT NOT NULL,
  body TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  FOREIGN KEY (repo, number) REFERENCES forge_items (repo, number)
);
CREATE INDEX forge_comments_by_item ON forge_comments (repo, number, id);
CREATE TABLE forge_reviews (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  repo TEXT NOT NULL,
  number INTEGER NOT NULL,
  author TEXT NOT NULL,
  verdict TEXT NOT NULL,
  body TEXT NOT NULL DEFAULT '',
  commit_sha TEXT NOT NULL,
  comments TEXT NOT NULL DEFAULT '[]',
  created_ms INTEGER NOT NULL,
  FOREIGN KEY (repo, number) REFERENCES forge_items (repo, number)
);
CREATE INDEX forge_reviews_by_item ON forge_reviews (repo, number, id);
CREATE TABLE forge_statuses (
  repo TEXT NOT NULL,
  sha TEXT NOT NULL,
  context TEXT NOT NULL,
  state TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  target_url TEXT NOT NULL DEFAULT '',
  author TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  PRIMARY KEY (repo, sha, context)
);
CREATE TABLE forge_users (
  name TEXT PRIMARY KEY NOT NULL,
  token_sha256 TEXT NOT NULL UNIQUE,
  created_ms INTEGER NOT NULL
);
CREATE TABLE events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  delivery TEXT NOT NULL UNIQUE,
  source TEXT NOT NULL,
  kind TEXT NOT NULL,
  repo TEXT NOT NULL,
  number INTEGER NOT NULL DEFAULT 0,
  actor TEXT NOT NULL DEFAULT '',
  payload TEXT NOT NULL DEFAULT '{}',
  received_ms INTEGER NOT NULL,
  processed_ms INTEGER NOT NULL DEFAULT 0,
  outcome TEXT NOT NULL DEFAULT ''
);
CREATE INDEX events_pending ON events (processed_ms, seq);
)sql";

// Version 2: an event's fingerprint, what makes a delivery the same event as
// another whatever its delivery id (docs/github.md): a GitHub delivery resent
// under a new X-GitHub-Delivery is stored once. '' for none (the local
// forge's events, unique by their delivery).
constexpr std::string_view kV2 = R"sql(
ALTER TABLE events ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX events_fingerprint ON events (source, fingerprint) WHERE fingerprint != '';
)sql";

constexpr std::array<std::string_view, 2> kSteps = {kV1, kV2};

// The same steps in PostgreSQL's dialect (docs/store.md).
constexpr std::string_view kPgV1 = R"sql(
CREATE TABLE forge_repos (
  name TEXT PRIMARY KEY NOT NULL,
  path TEXT NOT NULL,
  default_branch TEXT NOT NULL,
  maintainers TEXT NOT NULL DEFAULT '[]',
  labels TEXT NOT NULL DEFAULT '[]',
  next_number BIGINT NOT NULL DEFAULT 1,
  created_ms BIGINT NOT NULL
);
CREATE TABLE forge_items (
  repo TEXT NOT NULL REFERENCES forge_repos (name),
  number BIGINT NOT NULL,
  is_pull BIGINT NOT NULL DEFAULT 0,
  title TEXT NOT NULL,
  body TEXT NOT NULL DEFAULT '',
  author TEXT NOT NULL,
  state TEXT NOT NULL DEFAULT 'open',
  labels TEXT NOT NULL DEFAULT '[]',
  head_branch TEXT NOT NULL DEFAULT '',
  base_branch TEXT NOT NULL DEFAULT '',
  merged_sha TEXT NOT NULL DEFAULT '',
  merge_base_sha TEXT NOT NULL DEFAULT '',
  merged_head_sha TEXT NOT NULL DEFAULT '',
  created_ms BIGINT NOT NULL,
  updated_ms BIGINT NOT NULL,
  closed_ms BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (repo, number)
);
CREATE INDEX forge_items_by_head ON forge_items (repo, head_branch, state);
CREATE TABLE forge_comments (
  id BIGSERIAL PRIMARY KEY,
  repo TEXT NOT NULL,
  number BIGINT NOT NULL,
  author TEXT NOT NULL,
  body TEXT NOT NULL,
  created_ms BIGINT NOT NULL,
  updated_ms BIGINT NOT NULL,
  FOREIGN KEY (repo, number) REFERENCES forge_items (repo, number)
);
CREATE INDEX forge_comments_by_item ON forge_comments (repo, number, id);
CREATE TABLE forge_reviews (
  id BIGSERIAL PRIMARY KEY,
  repo TEXT NOT NULL,
  number BIGINT NOT NULL,
  author TEXT NOT NULL,
  verdict TEXT NOT NULL,
  body TEXT NOT NULL DEFAULT '',
  commit_sha TEXT NOT NULL,
  comments TEXT NOT NULL DEFAULT '[]',
  created_ms BIGINT NOT NULL,
  FOREIGN KEY (repo, number) REFERENCES forge_items (repo, number)
);
CREATE INDEX forge_reviews_by_item ON forge_reviews (repo, number, id);
CREATE TABLE forge_statuses (
  repo TEXT NOT NULL,
  sha TEXT NOT NULL,
  context TEXT NOT NULL,
  state TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  target_url TEXT NOT NULL DEFAULT '',
  author TEXT NOT NULL,
  created_ms BIGINT NOT NULL,
  PRIMARY KEY (repo, sha, context)
);
CREATE TABLE forge_users (
  name TEXT PRIMARY KEY NOT NULL,
  token_sha256 TEXT NOT NULL UNIQUE,
  created_ms BIGINT NOT NULL
);
CREATE TABLE events (
  seq BIGSERIAL PRIMARY KEY,
  delivery TEXT NOT NULL UNIQUE,
  source TEXT NOT NULL,
  kind TEXT NOT NULL,
  repo TEXT NOT NULL,
  number BIGINT NOT NULL DEFAULT 0,
  actor TEXT NOT NULL DEFAULT '',
  payload TEXT NOT NULL DEFAULT '{}',
  received_ms BIGINT NOT NULL,
  processed_ms BIGINT NOT NULL DEFAULT 0,
  outcome TEXT NOT NULL DEFAULT ''
);
CREATE INDEX events_pending ON events (processed_ms, seq);
)sql";

constexpr std::string_view kPgV2 = R"sql(
ALTER TABLE events ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX events_fingerprint ON events (source, fingerprint) WHERE fingerprint <> '';
)sql";

constexpr std::array<std::string_view, 2> kPgSteps = {kPgV1, kPgV2};

}  // namespace

Result<store::sql::Db> Open(const std::string& path) {
  static constexpr store::schema::Track kTrack{"forge", kSteps, kPgSteps};
  return store::schema::Open(path, kBusyTimeoutMs, &kTrack);
}

std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace kiln::forge::db
