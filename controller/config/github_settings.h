// The `github:` section of kiln's configuration (docs/github.md): where the
// API is, how kiln authenticates, the webhook secret, and per repository the
// users and teams it trusts, the names of its labels and its skills folder.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace kiln::github {

struct RepoSettings {
  std::vector<std::string> trusted_users;  // besides collaborators with write access
  std::vector<std::string> trusted_teams;  // "org/team-slug": active members are trusted
  // kiln's label name -> the repository's ("ready-to-spec" -> "kiln: ready").
  std::map<std::string, std::string> labels;
  std::string skills_dir = ".kiln/skills";  // companion skills, at the base of the run
  bool draft = false;                       // open pull requests as drafts
};

struct Settings {
  std::string api_url = "https://api.github.com";  // GitHub Enterprise: https://HOST/api/v3
  std::string ca_file;  // PEM bundle replacing the system's CAs (REST and git); "" keeps them
  // A GitHub App (app_id + private_key_file) or a token (token_file); not both.
  std::string app_id;
  std::string private_key_file;
  std::string token_file;
  std::string webhook_secret_file;            // the secret the webhook's deliveries are signed with
  std::map<std::string, RepoSettings> repos;  // "owner/name" -> its settings; others are ignored
};

}  // namespace kiln::github
