#include "controller/images/oci.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "base/digest.h"
#include "base/fd.h"
#include "base/strings.h"
#include "controller/images/recipe.h"

namespace kiln::images {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr char kOciManifest[] = "application/vnd.oci.image.manifest.v1+json";
constexpr char kOciIndex[] = "application/vnd.oci.image.index.v1+json";
constexpr char kOciConfig[] = "application/vnd.oci.image.config.v1+json";
constexpr char kOciLayer[] = "application/vnd.oci.image.layer.v1.tar";
constexpr char kDockerList[] = "application/vnd.docker.distribution.manifest.list.v2+json";
constexpr char kRefName[] = "org.opencontainers.image.ref.name";

// Opens rel under root (no '..', no absolute path, no symbolic link on the
// way): a path named by an untrusted manifest.
Result<UniqueFd> OpenInside(int root, const std::string& rel, const std::string& what) {
  if (rel.empty() || rel.starts_with("/")) {
    return Error::Invalid(what + ": " + Quote(rel) + " is not a path inside the image");
  }
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  UniqueFd fd(static_cast<int>(::syscall(SYS_openat2, root, rel.c_str(), &how, sizeof how)));
  if (!fd.valid()) {
    if (errno == ENOENT) return Error::NotFound(what + ": " + Quote(rel) + " is missing");
    if (errno == EXDEV || errno == ELOOP) {
      return Error::Invalid(what + ": " + Quote(rel) + " leads out of the image");
    }
    return Error::Sys(what + ": open " + Quote(rel), errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return Error::Invalid(what + ": " + Quote(rel) + " is not a regular file");
  }
  return fd;
}

class Layout {
 public:
  static Result<Layout> Open(const std::string& dir) {
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) return Error::Sys("open " + Quote(dir), errno);
    return Layout(std::move(fd));
  }

  bool Has(const std::string& rel) const {
    struct stat st {};
    return ::fstatat(root_.get(), rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
           S_ISREG(st.st_mode);
  }

  Result<json> Json(const std::string& rel, const std::string& what) const {
    KILN_ASSIGN_OR_RETURN(UniqueFd fd, OpenInside(root_.get(), rel, what));
    KILN_ASSIGN_OR_RETURN(std::string text, ReadAll(fd.get(), rel));
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded()) return Error::Invalid(what + ": " + Quote(rel) + " is not JSON");
    return j;
  }

  // A blob, checked against the digest that names it; returns a path that
  // reopens the checked file (a descriptor kept open in fds_).
  Result<std::string> Blob(const json& descriptor, const std::string& what) {
    std::string digest = descriptor.is_object() ? descriptor.value("digest", "") : "";
    if (!digest.starts_with("sha256:") || digest.size() != 71 ||
        digest.find_first_not_of("0123456789abcdef", 7) != std::string::npos) {
      return Error::Invalid(what + ": digest " + Quote(digest) + " is not a sha256 digest");
    }
    return File("blobs/sha256/" + digest.substr(7), digest, what);
  }

  // A file named by the archive, with its expected digest when known.
  Result<std::string> File(const std::string& rel, const std::string& digest,
                           const std::string& what) {
    KILN_ASSIGN_OR_RETURN(UniqueFd fd, OpenInside(root_.get(), rel, what));
    if (!digest.empty()) {
      Sha256 h;
      h.Init();
      char buf[1 << 16];
      for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Error::Sys(what + ": read " + Quote(rel), errno);
        if (n == 0) break;
        h.Update(std::string_view(buf, static_cast<size_t>(n)));
      }
      std::string found = "sha256:" + Hex(h.Final());
      if (found != digest) {
        return Error::Invalid(what + ": " + Quote(rel) + " does not match its digest (" + digest +
                              ", found " + found + ")");
      }
    }
    std::string path = "/proc/self/fd/" + std::to_string(fd.get());
    fds_.push_back(std::move(fd));
    return path;
  }

  Result<json> BlobJson(const json& descriptor, const std::string& what) {
    KILN_ASSIGN_OR_RETURN(std::string path, Blob(descriptor, what));
    KILN_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return Error::Invalid(what + " is not a JSON object");
    return j;
  }

 private:
  explicit Layout(UniqueFd root) : root_(std::move(root)) {}
  UniqueFd root_;
  std::vector<UniqueFd> fds_;
};

// "docker.io/library/alpine:3.19" -> "alpine"; "" when nothing valid is left.
std::string NameFrom(std::string ref) {
  if (size_t at = ref.find('@'); at != std::string::npos) ref.resize(at);
  if (size_t slash = ref.rfind('/'); slash != std::string::npos) ref = ref.substr(slash + 1);
  if (size_t colon = ref.find(':'); colon != std::string::npos) ref.resize(colon);
  std::string out;
  for (char c : ref) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ValidName(out) ? out : "";
}

struct Source {
  std::vector<std::string> layer_paths;  // reopenable paths, bottom first
  json config = json::object();          // the OCI/docker config's "config"
  std::string name;                      // the image's own name, if any
  std::string id;                        // the source manifest's digest (origin)
  std::string format;
};

// Picks the manifest for this host's architecture from an index.
Result<json> PickManifest(Layout& layout, json index, const std::string& what) {
  for (int depth = 0; depth < 4; ++depth) {
    if (!index.contains("manifests") || !index["manifests"].is_array() ||
        index["manifests"].empty()) {
      return Error::Invalid(what + ": the index lists no manifest");
    }
    const json* pick = nullptr;
    for (const json& m : index["manifests"]) {
      if (!m.is_object()) continue;
      json p = m.value("platform", json::object());
      if (p.is_object() && p.value("architecture", HostArchitecture()) == HostArchitecture() &&
          p.value("os", "linux") == "linux") {
        pick = &m;
        break;
      }
    }
    if (!pick) return Error::NotFound(what + ": no manifest for linux/" + HostArchitecture());
    std::string type = pick->value("mediaType", kOciManifest);
    if (type != kOciIndex && type != kDockerList) return *pick;
    KILN_ASSIGN_OR_RETURN(index, layout.BlobJson(*pick, what + ": nested index"));
  }
  return Error::Invalid(what + ": indexes nested too deep");
}

Result<Source> ReadOci(Layout& layout, const std::string& what) {
  KILN_ASSIGN_OR_RETURN(json index, layout.Json("index.json", what));
  KILN_ASSIGN_OR_RETURN(json desc, PickManifest(layout, index, what));
  Source src;
  src.format = "oci";
  src.id = desc.value("digest", "");
  json ann = desc.value("annotations", json::object());
  if (ann.is_object()) {
    for (const char* key : {"io.containerd.image.name", kRefName}) {
      if (ann.contains(key) && ann[key].is_string()) {
        src.name = NameFrom(ann[key].get<std::string>());
        if (!src.name.empty()) break;
      }
    }
  }
  KILN_ASSIGN_OR_RETURN(json manifest, layout.BlobJson(desc, what + ": manifest"));
  if (!manifest.contains("layers") || !manifest["layers"].is_array()) {
    return Error::Invalid(what + ": manifest " + src.id + " has no layer list");
  }
  KILN_ASSIGN_OR_RETURN(
      json config, layout.BlobJson(manifest.value("config", json::object()), what + ": config"));
  src.config = config.value("config", json::object());
  size_t i = 0;
  for (const json& l : manifest["layers"]) {
    std::string type = l.is_object() ? l.value("mediaType", "") : "";
    if (type.find("nondistributable") != std::string::npos ||
        type.find("foreign") != std::string::npos) {
      return Error::Unsupported(what + ": layer " + std::to_string(i) + " is a foreign layer (" +
                                type + "), which is not in the archive");
    }
    KILN_ASSIGN_OR_RETURN(std::string path, layout.Blob(l, what + ": layer " + std::to_string(i)));
    src.layer_paths.push_back(path);
    ++i;
  }
  return src;
}

Result<Source> ReadDocker(Layout& layout, const std::string& what) {
  KILN_ASSIGN_OR_RETURN(json list, layout.Json("manifest.json", what));
  if (!list.is_array() || list.empty() || !list[0].is_object()) {
    return Error::Invalid(what + ": manifest.json lists no image");
  }
  const json& m = list[0];
  Source src;
  src.format = "docker";
  json tags = m.value("RepoTags", json::array());
  if (tags.is_array() && !tags.empty() && tags[0].is_string()) src.name = NameFrom(tags[0]);
  std::string config_file = m.value("Config", "");
  KILN_ASSIGN_OR_RETURN(json config, layout.Json(config_file, what + ": config"));
  src.config = config.value("config", json::object());
  src.id = "sha256:" + Sha256Hex(list.dump());
  json layers = m.value("Layers", json::array());
  if (!layers.is_array()) return Error::Invalid(what + ": manifest.json's Layers is not a list");
  for (size_t i = 0; i < layers.size(); ++i) {
    if (!layers[i].is_string()) return Error::Invalid(what + ": Layers[" + std::to_string(i) + "]");
    KILN_ASSIGN_OR_RETURN(std::string path,
                          layout.File(layers[i], "", what + ": layer " + std::to_string(i)));
    src.layer_paths.push_back(path);
  }
  return src;
}

json ConfigOf(const json& c) {
  json out = {{"env", json::array()}, {"workdir", ""}, {"user", ""}};
  if (!c.is_object()) return out;
  if (c.contains("Env") && c["Env"].is_array()) {
    for (const json& e : c["Env"]) {
      if (e.is_string()) out["env"].push_back(e);
    }
  }
  if (c.contains("WorkingDir") && c["WorkingDir"].is_string()) out["workdir"] = c["WorkingDir"];
  if (c.contains("User") && c["User"].is_string()) out["user"] = c["User"];
  return out;
}

}  // namespace

Result<Imported> Import(Store& store, const std::string& path, const std::string& name,
                        const std::function<void(const std::string&)>& progress) {
  auto say = [&](const std::string& line) {
    if (progress) progress(line);
  };
  std::string what = "import " + Quote(path);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Error::Sys(what, errno);
  KILN_ASSIGN_OR_RETURN(Lock lock, store.Shared());
  Imported out;
  std::string dir = path;
  std::string tmp;
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      if (!dir.empty()) (void)RemoveTree(dir);
    }
  } cleanup;
  if (!S_ISDIR(st.st_mode)) {
    tmp = store.root() + "/tmp/import-XXXXXX";
    if (::mkdtemp(tmp.data()) == nullptr) return Error::Sys("mkdtemp", errno);
    cleanup.dir = tmp;
    say("reading " + path);
    KILN_TRY(Extract(path, what, tmp, UnpackPolicy{}, nullptr));
    dir = tmp;
  }
  KILN_ASSIGN_OR_RETURN(Layout layout, Layout::Open(dir));
  Source src;
  if (layout.Has("index.json")) {
    KILN_ASSIGN_OR_RETURN(src, ReadOci(layout, what));
  } else if (layout.Has("manifest.json")) {
    KILN_ASSIGN_OR_RETURN(src, ReadDocker(layout, what));
  } else {
    return Error::Invalid(what +
                          ": neither an OCI image layout (no index.json) nor a docker "
                          "save archive (no manifest.json)");
  }
  out.name = name.empty() ? src.name : name;
  if (out.name.empty()) {
    return Error::Invalid(what + ": the image names itself nothing usable; give --name");
  }
  if (!ValidName(out.name)) {
    return Error::Invalid("image name " + Quote(out.name) +
                          ": expected [a-z0-9][a-z0-9._-]* (at most 128 characters)");
  }
  UnpackPolicy policy;
  policy.trusted = false;
  policy.id_shift = IdShift();
  for (size_t i = 0; i < src.layer_paths.size(); ++i) {
    std::string lw =
        what + ": layer " + std::to_string(i + 1) + " of " + std::to_string(src.layer_paths.size());
    say("unpacking layer " + std::to_string(i + 1) + " of " +
        std::to_string(src.layer_paths.size()));
    KILN_ASSIGN_OR_RETURN(Layer layer, store.AddLayer(src.layer_paths[i], lw, policy, &out.notes));
    out.layers.push_back(layer.digest);
  }
  json origin = {{"imported", src.id}, {"format", src.format}};
  KILN_ASSIGN_OR_RETURN(out.digest,
                        store.AddImage(out.layers, ConfigOf(src.config), origin, out.name));
  return out;
}

Result<std::string> Export(const Store& store, const std::string& ref, const std::string& dir) {
  KILN_ASSIGN_OR_RETURN(Image img, store.Resolve(ref));
  std::error_code ec;
  fs::create_directories(dir + "/blobs/sha256", ec);
  if (ec) return Error::Sys("mkdir " + Quote(dir), ec.value());
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().filename() != "blobs") {
      return Error::Invalid("export: " + Quote(dir) + " is not empty");
    }
  }
  std::string blobs = dir + "/blobs/sha256/";
  auto put = [&](const std::string& text, const std::string& type) -> Result<json> {
    std::string digest = "sha256:" + Sha256Hex(text);
    KILN_TRY(WriteFileAtomic(blobs + digest.substr(7), text, 0644));
    return json{{"mediaType", type}, {"digest", digest}, {"size", text.size()}};
  };
  json layers = json::array();
  json diff_ids = json::array();
  for (size_t i = 0; i < img.layer_dirs.size(); ++i) {
    std::string digest = img.manifest["layers"][i].value("digest", "");
    KILN_ASSIGN_OR_RETURN(json record, store.LayerRecord(digest));
    std::string tmp = blobs + "tmp-layer";
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd.valid()) return Error::Sys("open " + Quote(tmp), errno);
    Sha256 h;
    h.Init();
    uint64_t size = 0;
    KILN_TRY(CanonicalTar(img.layer_dirs[i], record.value("id_shift", 0u),
                          [&](std::string_view bytes) -> Status {
                            h.Update(bytes);
                            size += bytes.size();
                            return WriteAll(fd.get(), bytes);
                          }));
    std::string found = "sha256:" + Hex(h.Final());
    if (found != digest) {
      ::unlink(tmp.c_str());
      return Error(Error::Code::kCorruption, "layer " + digest + " no longer matches its digest (" +
                                                 found + "); `kiln image verify` says where");
    }
    if (::rename(tmp.c_str(), (blobs + digest.substr(7)).c_str()) != 0) {
      return Error::Sys("rename " + Quote(tmp), errno);
    }
    layers.push_back({{"mediaType", kOciLayer}, {"digest", digest}, {"size", size}});
    diff_ids.push_back(digest);
  }
  json c = img.manifest.value("config", json::object());
  json config_inner = json::object();
  if (!c.value("env", json::array()).empty()) config_inner["Env"] = c["env"];
  if (!c.value("workdir", "").empty()) config_inner["WorkingDir"] = c["workdir"];
  if (!c.value("user", "").empty()) config_inner["User"] = c["user"];
  json config = {{"architecture", HostArchitecture()},
                 {"os", "linux"},
                 {"config", config_inner},
                 {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
  KILN_ASSIGN_OR_RETURN(json config_desc, put(config.dump(), kOciConfig));
  json manifest = {{"schemaVersion", 2},
                   {"mediaType", kOciManifest},
                   {"config", config_desc},
                   {"layers", layers}};
  KILN_ASSIGN_OR_RETURN(json manifest_desc, put(manifest.dump(), kOciManifest));
  json annotated = manifest_desc;
  std::string name = ref.starts_with("sha256:") ? "" : ref;
  if (!name.empty()) annotated["annotations"] = {{kRefName, name}};
  annotated["platform"] = {{"architecture", HostArchitecture()}, {"os", "linux"}};
  json index = {{"schemaVersion", 2}, {"mediaType", kOciIndex}, {"manifests", {annotated}}};
  KILN_TRY(WriteFileAtomic(dir + "/index.json", index.dump(), 0644));
  KILN_TRY(WriteFileAtomic(dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})", 0644));
  return manifest_desc["digest"].get<std::string>();
}

Result<json> Packages(const Store& store, const Image& img) {
  KILN_ASSIGN_OR_RETURN(FileIndex files, store.Files(img.digest));
  json out = json::array();
  auto status = files.find("var/lib/dpkg/status");
  if (status == files.end() || status->second.value("type", "") != "f") return out;
  std::string text;
  for (auto it = img.layer_dirs.rbegin(); it != img.layer_dirs.rend(); ++it) {
    if (auto t = ReadFile(*it + "/var/lib/dpkg/status")) {
      text = std::move(*t);
      break;
    }
  }
  // dpkg's status file: stanzas of "Field: value", blank-line separated.
  json pkg = json::object();
  bool installed = false;
  auto flush = [&] {
    if (installed && pkg.contains("name")) out.push_back(pkg);
    pkg = json::object();
    installed = false;
  };
  for (const std::string& line : Split(text, '\n')) {
    if (line.empty()) {
      flush();
      continue;
    }
    if (line.starts_with(" ")) continue;
    size_t colon = line.find(": ");
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    std::string value = line.substr(colon + 2);
    if (key == "Package") pkg["name"] = value;
    if (key == "Version") pkg["version"] = value;
    if (key == "Architecture") pkg["architecture"] = value;
    if (key == "Status") installed = value == "install ok installed";
  }
  flush();
  std::sort(out.begin(), out.end(),
            [](const json& a, const json& b) { return a["name"] < b["name"]; });
  return out;
}

}  // namespace kiln::images
