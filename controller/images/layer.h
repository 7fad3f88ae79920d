// An image layer: a read-only directory that the sandbox stacks as an
// overlay lower, named by the SHA-256 of its canonical tar.
//
// Unpack reads a tar (any format and compression libarchive reads) into a
// fresh directory with the rules of docs/images.md: a path that is absolute,
// climbs out with '..', or would be written through a symbolic link refuses
// the whole layer, as does a hard link to anything but a regular file of the
// same layer; device nodes and sockets are dropped (the sandbox makes its own
// /dev); an untrusted layer's setuid and setgid bits are cleared; ids past
// the sandbox's 65,536 become 65534 ("nobody"). OCI whiteouts ('.wh.NAME',
// '.wh..wh..opq') become overlayfs whiteouts and opaque directories, which
// is what lets the layers be stacked as they are.
//
// The canonical tar, from which the digest is taken and which `kiln image
// export` writes, is the directory read back: entries in byte order of their
// paths, POSIX pax, numeric ids only, modification times in whole seconds,
// no access or change times, no extended attributes, hard links to the
// first path of their inode, whiteouts back in their OCI form.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace kiln::images {

struct UnpackPolicy {
  // false (imported layers): setuid and setgid bits are cleared.
  bool trusted = false;
  // Added to every uid and gid on disk: as root the sandbox maps its ids
  // 0..65535 to this base, so a file owned by root in the image is owned by
  // root inside. 0 for an unprivileged kiln (no chown at all).
  uint32_t id_shift = 0;
};

// What Unpack changed or dropped, for the user to see.
struct UnpackNotes {
  uint64_t devices_dropped = 0;
  uint64_t setid_cleared = 0;
  uint64_t ids_clamped = 0;
  uint64_t xattrs_dropped = 0;
};

struct Layer {
  std::string digest;  // "sha256:<hex>"
  std::string path;    // the directory
  uint64_t bytes = 0;  // file content
  uint64_t entries = 0;
  nlohmann::json files = nlohmann::json::array();  // CanonicalTar's entries
};

// A sink for the canonical tar's bytes.
using TarSink = std::function<Status(std::string_view)>;

// The canonical tar of dir (ids on disk minus id_shift) into sink. Each
// entry is also passed to `entry` when given: {path, type, mode, uid, gid,
// mtime, size, sha256 | target} (the layer's file list).
Status CanonicalTar(const std::string& dir, uint32_t id_shift, const TarSink& sink,
                    const std::function<void(nlohmann::json)>& entry = nullptr);

// Extracts the tar at tar_path (a "what" for messages: "layer 2 of foo.tar")
// into the existing empty directory dest by the rules above, without taking
// a digest: for an archive that holds layers rather than being one.
Status Extract(const std::string& tar_path, const std::string& what, const std::string& dest,
               const UnpackPolicy& policy, UnpackNotes* notes);

// Unpacks the tar at tar_path (a "what" for messages: "layer 2 of foo.tar")
// into a new directory dest, which must not exist. Returns the layer with
// its digest; on error dest is removed.
//
// With a base (the merged file list of the layers beneath, FileIndex), the
// layer keeps only what differs from it: an entry equal to the base's is
// dropped (a directory only when nothing under it is kept), and a path of the
// base that the tar lacks becomes a whiteout. That is how a recipe built
// `from:` another gets a layer of its own above the other's.
using FileIndex = std::map<std::string, nlohmann::json>;
Result<Layer> Unpack(const std::string& tar_path, const std::string& what, const std::string& dest,
                     const UnpackPolicy& policy, UnpackNotes* notes,
                     const FileIndex* base = nullptr);

// The file list of a stack of layers (bottom first) as the overlay shows
// it: upper entries replace lower ones, whiteouts and opaque directories
// hide what is beneath.
FileIndex Merge(const std::vector<nlohmann::json>& file_lists);

// Removes every file under dir, which need not be writable (a layer's
// directories are not).
Status RemoveTree(const std::string& dir);

// The stat fingerprint of dir's tree: SHA-256 over every entry's path,
// inode, type, mode, ids, size and change time. A change time cannot be set
// back, so any edit of the layer after it was sealed changes this.
// each, when given, is called for every entry with its directory's fd and
// its name, as the walk passes it.
using SealVisit = std::function<Status(int dirfd, const std::string& name)>;
Result<std::string> Seal(const std::string& dir, const SealVisit& each = nullptr);

}  // namespace kiln::images
