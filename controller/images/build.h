// `kiln image build NAME` (docs/images.md): a recipe made into an image of
// the store with mmdebstrap.
//
// The build key (the recipe as flattened with the one it is built `from:`,
// its files' content, the base image's digest, and the InRelease file of
// each apt source) is computed first, in about a second; when a build with
// that key is in the store, the name is pointed at it and nothing is built.
// Otherwise mmdebstrap makes the whole tree as a tar, with
// SOURCE_DATE_EPOCH set and the downloaded packages kept in a cache between
// builds; the tar becomes a layer (only what differs from the base image,
// for a recipe built on one); the recipe's test runs inside the new image
// in a sandbox; and only then is the name pointed at it.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "base/result.h"
#include "controller/images/recipe.h"
#include "controller/images/store.h"

namespace kiln::images {

struct BuildOptions {
  std::string recipes_dir;  // where <name>.yaml is
  std::string state_dir;    // the sandbox's, for the test run
  bool force = false;       // build even when the key is known (not the base)
  std::function<void(const std::string&)> progress;
};

struct Built {
  std::string name;
  std::string digest;
  std::vector<std::string> layers;
  bool cached = false;  // found by its key; nothing was built
};

Result<Built> Build(Store& store, const std::string& name, const BuildOptions& options);

// The mmdebstrap command line for a flattened recipe writing tar_path
// (exposed for the benchmark, which runs mmdebstrap alone with the same
// packages). hook_script: the customize hook (files and users), or "".
std::vector<std::string> MmdebstrapArgs(const Recipe& flat, const std::string& tar_path,
                                        const std::string& cache_dir,
                                        const std::string& hook_script);

}  // namespace kiln::images
