// kiln's own programs inside an image that is not the host's: kiln-runtime
// and kiln-proxy-forward are linked against the host's shared libraries,
// which a toolchain image may not have (or have in other versions). The
// libraries they load (ldd's list) and the host's dynamic loader are copied
// once into <state>/images/runtime-<key>, which each run binds read-only at
// /opt/kiln/lib; the programs are started through that loader with that
// library path, so that nothing of the image's own libraries is used by
// them, and nothing of theirs by the image's programs.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"

namespace kiln::provision {

inline constexpr char kLibDir[] = "/opt/kiln/lib";

struct RuntimeLibs {
  std::string dir;     // on the host; empty for static programs
  std::string loader;  // the loader's name in dir ("ld.so"), empty when none is needed
};

// The directory for binaries (host paths), made when missing. Keyed by the
// binaries' versions (FileVersion), so that a rebuilt kiln-runtime gets its
// own.
Result<RuntimeLibs> EnsureRuntimeLibs(const std::string& state_dir,
                                      const std::vector<std::string>& binaries);

// argv started through the loader of libs: {loader, --library-path, dir,
// program, args...}; argv itself when no loader is needed.
std::vector<std::string> ThroughLoader(const RuntimeLibs& libs, std::vector<std::string> argv);

}  // namespace kiln::provision
