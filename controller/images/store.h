// The image store (docs/images.md), under <state>/images:
//   layers/<hex>/        a layer's tree, read-only, named by its digest
//   layers/<hex>.json    its record: digest, bytes, entries, the id shift it
//                        was unpacked with, its seal
//   layers/<hex>.files.json  its file list (CanonicalTar's entries)
//   manifests/<hex>.json an image: its layers (bottom first), its config
//                        (environment, working directory, user) and where it
//                        came from; the file's SHA-256 is the image's digest
//   refs/<name>          the digest a name stands for
//   tmp/                 layers being unpacked
//   lock                 flock: shared while adding, exclusive for rm and gc
//
// Layers are shared: a layer whose digest is already stored is not stored
// twice. Nothing in the store is edited in place; an image is replaced by
// pointing its name at a new manifest.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/fd.h"
#include "base/result.h"
#include "controller/images/layer.h"

namespace kiln::images {

class SealWatch;

// An image resolved for use: its layers' directories, bottom first.
struct Image {
  std::string digest;  // "sha256:<hex>" of the manifest
  nlohmann::json manifest;
  std::vector<std::string> layer_dirs;
};

struct Summary {
  std::vector<std::string> names;
  std::string digest;
  uint64_t bytes = 0;  // of its layers' content
  size_t layers = 0;
  nlohmann::json origin;
};

struct GcReport {
  std::vector<std::string> layers_removed;
  std::vector<std::string> manifests_removed;
  uint64_t bytes_freed = 0;
};

// A problem kiln image verify found in one layer.
struct Finding {
  std::string layer;
  std::string message;
};

// A held store lock (flock on <store>/lock), released on destruction.
class Lock {
 public:
  Lock() = default;
  explicit Lock(UniqueFd fd) : fd_(std::move(fd)) {}

 private:
  UniqueFd fd_;
};

class Store {
 public:
  // The store under state_dir/images; Open creates its directories.
  static Result<Store> Open(const std::string& state_dir);

  const std::string& root() const { return root_; }

  // The lock: shared for adding (many builds and imports at once), exclusive
  // for rm and gc (which wait for them).
  Result<Lock> Shared() const;
  Result<Lock> Exclusive() const;

  // "NAME" or "sha256:<hex>" -> the image, with each layer's seal checked
  // (a stat of every entry; `kiln image verify` rehashes the content), or
  // kept checked by seals (seal_watch.h). A missing image, manifest or
  // layer, or a layer changed since it was stored, is an error naming it.
  Result<Image> Resolve(const std::string& ref, SealWatch* seals = nullptr) const;
  // The digest a ref stands for, without checking the layers.
  Result<std::string> Lookup(const std::string& ref) const;

  // Unpacks a tar as a layer; a layer with the same digest already stored
  // is reused (the new copy is discarded). base: see Unpack.
  Result<Layer> AddLayer(const std::string& tar_path, const std::string& what,
                         const UnpackPolicy& policy, UnpackNotes* notes,
                         const FileIndex* base = nullptr);
  // The record of a stored layer ("sha256:<hex>"), and its file list.
  Result<nlohmann::json> LayerRecord(const std::string& digest) const;
  Result<nlohmann::json> LayerFiles(const std::string& digest) const;
  std::string LayerDir(const std::string& digest) const;

  // Writes the manifest of an image of layers (digests, bottom first) with
  // its config and origin; returns its digest. Points name at it when given.
  Result<std::string> AddImage(const std::vector<std::string>& layers, const nlohmann::json& config,
                               const nlohmann::json& origin, const std::string& name);
  Status Tag(const std::string& name, const std::string& digest);

  std::vector<Summary> List() const;
  // The names that point at an image digest.
  std::vector<std::string> NamesOf(const std::string& digest) const;
  // Removes name; its manifest goes too when no other name points at it.
  // Returns the manifest's digest.
  Result<std::string> Remove(const std::string& name);
  // Removes manifests no name points at, layers no manifest lists, and
  // leftovers of interrupted unpacks.
  Result<GcReport> Gc();
  // Rehashes every file of the image's layers against their file lists and
  // digests; empty when all is well.
  Result<std::vector<Finding>> Verify(const std::string& ref) const;

  // The merged file list of an image's layers (for a recipe built on it,
  // and for `inspect`'s package list).
  Result<FileIndex> Files(const std::string& digest) const;

 private:
  explicit Store(std::string root) : root_(std::move(root)) {}
  Result<nlohmann::json> Manifest(const std::string& digest) const;

  std::string root_;
};

// Whether name is a valid image name: [a-z0-9][a-z0-9._-]*, at most 128.
bool ValidName(const std::string& name);

// The uid/gid shift a layer is unpacked with by this process: the
// sandbox's id base as root, 0 otherwise.
uint32_t IdShift();

}  // namespace kiln::images
