#include "controller/run/runtime_libs.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <mutex>

#include "base/digest.h"
#include "base/fd.h"
#include "base/process.h"
#include "base/strings.h"

namespace kiln::provision {
namespace {

namespace fs = std::filesystem;

constexpr char kLoaderName[] = "ld.so";

// ldd's lines: "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and
// "\t/lib64/ld-linux-x86-64.so.2 (0x...)"; name -> host path ("ld.so" for
// the loader).
Status ReadLdd(const std::string& binary, std::map<std::string, std::string>* libs) {
  KILN_ASSIGN_OR_RETURN(ProcessResult r, RunProgram({"ldd", binary}));
  if (r.output.find("not a dynamic executable") != std::string::npos ||
      r.output.find("statically linked") != std::string::npos) {
    return Ok();
  }
  if (r.status != 0) return Error::Invalid("ldd " + Quote(binary) + ": " + r.output);
  for (const std::string& raw : Split(r.output, '\n')) {
    std::string line(Trim(raw));
    if (line.empty() || line.starts_with("linux-vdso")) continue;
    if (line.find("=> not found") != std::string::npos) {
      return Error::NotFound(Quote(binary) + " needs a library this host lacks: " + line);
    }
    size_t arrow = line.find(" => ");
    std::string path = arrow == std::string::npos ? line : line.substr(arrow + 4);
    path = path.substr(0, path.find(" ("));
    if (!path.starts_with("/")) continue;
    std::string name = arrow == std::string::npos ? kLoaderName : line.substr(0, arrow);
    (*libs)[name] = path;
  }
  return Ok();
}

}  // namespace

Result<RuntimeLibs> EnsureRuntimeLibs(const std::string& state_dir,
                                      const std::vector<std::string>& binaries) {
  // One answer per set of binaries per process; the directory outlives it.
  static std::mutex mu;
  static std::map<std::string, RuntimeLibs> known;
  std::string id;
  for (const std::string& b : binaries) id += b + "\n" + FileVersion(b) + "\n";
  std::lock_guard lock(mu);
  if (auto it = known.find(id); it != known.end()) return it->second;

  std::map<std::string, std::string> libs;
  for (const std::string& b : binaries) KILN_TRY(ReadLdd(b, &libs));
  RuntimeLibs out;
  if (libs.empty()) return known[id] = out;
  out.dir = state_dir + "/images/runtime-" + Sha256Hex(id).substr(0, 16);
  out.loader = libs.contains(kLoaderName) ? kLoaderName : "";
  if (!fs::is_directory(out.dir)) {
    std::string tmp = out.dir + ".tmp-XXXXXX";
    std::error_code ec;
    fs::create_directories(fs::path(out.dir).parent_path(), ec);
    if (::mkdtemp(tmp.data()) == nullptr) return Error::Sys("mkdtemp " + Quote(tmp), errno);
    for (const auto& [name, path] : libs) {
      fs::copy_file(path, tmp + "/" + name, ec);  // follows the host's symlinks
      if (ec) {
        fs::remove_all(tmp, ec);
        return Error::Sys("copying " + Quote(path), ec.value());
      }
    }
    ::chmod(tmp.c_str(), 0755);
    if (::rename(tmp.c_str(), out.dir.c_str()) != 0) fs::remove_all(tmp, ec);  // another won
  }
  return known[id] = out;
}

std::vector<std::string> ThroughLoader(const RuntimeLibs& libs, std::vector<std::string> argv) {
  if (libs.loader.empty()) return argv;
  std::string dir = kLibDir;
  argv.insert(argv.begin(), {dir + "/" + libs.loader, "--library-path", dir});
  return argv;
}

}  // namespace kiln::provision
