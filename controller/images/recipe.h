// An image recipe, images/<name>.yaml (docs/images.md lists each field and
// its default): what `kiln image build` gives mmdebstrap, what it adds to
// the tree it makes (files, users), the image's config (environment,
// working directory) and the test that must pass inside the built image.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace kiln::images {

struct RecipeFile {
  std::string source;  // absolute (resolved against the recipe's directory)
  std::string dest;    // absolute path in the image
  uint32_t mode = 0644;
};

struct RecipeUser {
  std::string name;
  uint32_t uid = 0;
  uint32_t gid = 0;  // default: uid
  std::string home;  // default: /home/<name>
  std::string shell = "/bin/sh";
};

// One apt source in one-line form: "deb [options] URI SUITE COMPONENT...".
struct AptSource {
  std::string options;  // "signed-by=/usr/share/keyrings/...", or ""
  std::string uri;      // without a trailing '/'
  std::string suite;
  std::vector<std::string> components;
  std::string Line() const;
};

struct Recipe {
  std::string name;
  std::string file;  // the recipe's path, for messages
  std::string from;  // the recipe this one is built on, or ""
  std::string suite;
  std::string snapshot;  // snapshot.debian.org timestamp "YYYYMMDDTHHMMSSZ", or ""
  std::string architecture;
  std::string variant = "apt";
  std::vector<std::string> packages;  // "name" or "name=version"
  std::vector<AptSource> sources;
  std::vector<RecipeFile> files;
  std::vector<RecipeUser> users;
  std::vector<std::string> env;  // "NAME=VALUE", in order
  std::string workdir;
  std::string user;  // who the image's commands run as by default ("" = the sandbox's)
  std::string test;  // a shell command that must pass inside the built image
  uint64_t source_date_epoch = 1700000000;
  // "FILE:LINE" of each field given, for errors found later (a package apt
  // does not know, a mirror that does not answer, a failing test).
  std::map<std::string, std::string> where;

  // The config the image's manifest carries: {env, workdir, user}.
  nlohmann::json Config() const;
};

// This host's architecture as dpkg and OCI name it ("amd64", "arm64").
std::string HostArchitecture();

// Reads dir/<name>.yaml. Unknown fields, wrong types, a bad mode, user,
// source line or snapshot date are errors naming the file, the line and the
// field. Defaults the suite, architecture and sources take from this host
// are filled in (docs/images.md).
Result<Recipe> LoadRecipe(const std::string& dir, const std::string& name);

// The host's apt sources (/etc/apt/sources.list, sources.list.d/*.list and
// *.sources), binary ("deb") entries only.
Result<std::vector<AptSource>> HostSources(const std::string& root = "/");

// A recipe and the one it is built on, merged into what one mmdebstrap run
// must produce: the base's packages, files and users, then this one's; env
// by name, this one's last. The two must agree on suite, snapshot,
// architecture, variant and sources.
Result<Recipe> Flatten(const Recipe& base, const Recipe& child);

}  // namespace kiln::images
