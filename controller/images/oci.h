// Images in and out of the store: `kiln image import` reads an OCI image
// layout (a directory, or a tar of one) or a `docker save` / `podman save`
// tar; `kiln image export` writes an OCI image layout whose layer blobs are
// the layers' canonical tars, so their digests are the store's.
//
// Everything imported is untrusted: each blob is checked against the digest
// that names it, and each layer is unpacked by Unpack's rules (no escaping
// path, no link out of the layer, no device node, no setuid bit).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "controller/images/store.h"

namespace kiln::images {

struct Imported {
  std::string name;
  std::string digest;
  std::vector<std::string> layers;
  UnpackNotes notes;  // summed over the layers
};

// Imports path (a directory or a tar) as name; an empty name takes the
// image's own ("org.opencontainers.image.ref.name", or docker's first repo
// tag, reduced to a valid name). progress, when given, hears one line per
// step.
Result<Imported> Import(Store& store, const std::string& path, const std::string& name,
                        const std::function<void(const std::string&)>& progress = nullptr);

// Writes the image ref as an OCI image layout into dir (created; must not
// exist or be empty). Returns the OCI manifest's digest.
Result<std::string> Export(const Store& store, const std::string& ref, const std::string& dir);

// The Debian packages installed in an image (resolved): {name, version,
// architecture}, from dpkg's database in its topmost layer that has one;
// empty for an image without dpkg.
Result<nlohmann::json> Packages(const Store& store, const Image& image);

}  // namespace kiln::images
