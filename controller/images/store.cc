#include "controller/images/store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <map>
#include <set>

#include "base/digest.h"
#include "base/strings.h"
#include "controller/images/seal_watch.h"
#include "sandbox/userns.h"

namespace kiln::images {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// "sha256:<64 lowercase hex>" -> the hex; nullopt otherwise.
std::optional<std::string> DigestHex(const std::string& digest) {
  constexpr std::string_view kPrefix = "sha256:";
  if (!digest.starts_with(kPrefix) || digest.size() != kPrefix.size() + 64) return std::nullopt;
  std::string hex = digest.substr(kPrefix.size());
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
  }
  return hex;
}

Result<json> ReadJson(const std::string& path, const std::string& what) {
  KILN_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Error(Error::Code::kCorruption, what + " " + Quote(path) + " is not a JSON object");
  }
  return j;
}

Result<Lock> TakeLock(const std::string& root, int op) {
  std::string path = root + "/lock";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd.valid()) return Error::Sys("open " + Quote(path), errno);
  while (::flock(fd.get(), op) != 0) {
    if (errno != EINTR) return Error::Sys("flock " + Quote(path), errno);
  }
  return Lock(std::move(fd));
}

std::vector<std::string> Names(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 128) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              (i > 0 && (c == '.' || c == '_' || c == '-'));
    if (!ok) return false;
  }
  return true;
}

uint32_t IdShift() { return ::geteuid() == 0 ? sandbox::userns::kHostIdBase : 0; }

Result<Store> Store::Open(const std::string& state_dir) {
  Store s(state_dir + "/images");
  for (const char* sub : {"/layers", "/manifests", "/refs", "/tmp"}) {
    std::error_code ec;
    fs::create_directories(s.root_ + sub, ec);
    if (ec) return Error::Sys("mkdir " + Quote(s.root_ + sub), ec.value());
  }
  return s;
}

Result<Lock> Store::Shared() const { return TakeLock(root_, LOCK_SH); }
Result<Lock> Store::Exclusive() const { return TakeLock(root_, LOCK_EX); }

std::string Store::LayerDir(const std::string& digest) const {
  return root_ + "/layers/" + DigestHex(digest).value_or("invalid");
}

Result<std::string> Store::Lookup(const std::string& ref) const {
  if (ref.starts_with("sha256:")) {
    auto hex = DigestHex(ref);
    if (!hex) return Error::Invalid("image " + Quote(ref) + ": not a sha256 digest");
    if (::access((root_ + "/manifests/" + *hex + ".json").c_str(), F_OK) != 0) {
      return Error::NotFound("image " + ref + " is not in the image store (" + root_ + ")");
    }
    return ref;
  }
  if (!ValidName(ref)) {
    return Error::Invalid("image name " + Quote(ref) +
                          ": expected [a-z0-9][a-z0-9._-]* (at most 128) or sha256:<hex>");
  }
  auto text = ReadFile(root_ + "/refs/" + ref);
  if (!text) {
    return Error::NotFound("image " + Quote(ref) + " is not in the image store (" + root_ +
                           "): build it with `kiln image build " + ref +
                           "` or import it with `kiln image import`");
  }
  std::string digest(Trim(*text));
  if (!DigestHex(digest)) {
    return Error(Error::Code::kCorruption,
                 "image name " + Quote(ref) + " points at " + Quote(digest) + ", not a digest");
  }
  return digest;
}

Result<json> Store::Manifest(const std::string& digest) const {
  auto hex = DigestHex(digest);
  if (!hex) return Error::Invalid(Quote(digest) + " is not a sha256 digest");
  std::string path = root_ + "/manifests/" + *hex + ".json";
  KILN_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  if ("sha256:" + Sha256Hex(text) != digest) {
    return Error(Error::Code::kCorruption,
                 "image manifest " + Quote(path) + " no longer matches its digest " + digest);
  }
  json m = json::parse(text, nullptr, false);
  if (m.is_discarded() || !m.contains("layers") || !m["layers"].is_array()) {
    return Error(Error::Code::kCorruption, "image manifest " + Quote(path) + " is malformed");
  }
  return m;
}

Result<json> Store::LayerRecord(const std::string& digest) const {
  auto hex = DigestHex(digest);
  if (!hex) return Error::Invalid(Quote(digest) + " is not a sha256 digest");
  std::string path = root_ + "/layers/" + *hex + ".json";
  if (::access(path.c_str(), F_OK) != 0) {
    return Error::NotFound("layer " + digest + " is not in the image store (" + root_ + ")");
  }
  return ReadJson(path, "layer record");
}

Result<json> Store::LayerFiles(const std::string& digest) const {
  if (auto record = LayerRecord(digest); !record) return record.error();
  std::string path = LayerDir(digest) + ".files.json";
  KILN_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  json j = json::parse(text, nullptr, false);
  if (!j.is_array()) {
    return Error(Error::Code::kCorruption,
                 "layer file list " + Quote(path) + " is not a JSON list");
  }
  return j;
}

Result<Image> Store::Resolve(const std::string& ref, SealWatch* seals) const {
  Image img;
  KILN_ASSIGN_OR_RETURN(img.digest, Lookup(ref));
  KILN_ASSIGN_OR_RETURN(img.manifest, Manifest(img.digest));
  for (const json& l : img.manifest["layers"]) {
    std::string digest = l.value("digest", "");
    KILN_ASSIGN_OR_RETURN(json record, LayerRecord(digest));
    std::string dir = LayerDir(digest);
    const std::string sealed = record.value("seal", "");
    bool holds = false;
    if (seals) {
      auto h = seals->Holds(dir, sealed);
      if (!h) return h.error().Wrap("layer " + digest + " of image " + Quote(ref));
      holds = *h;
    } else {
      auto now = Seal(dir);
      if (!now) return now.error().Wrap("layer " + digest + " of image " + Quote(ref));
      holds = *now == sealed;
    }
    if (!holds) {
      return Error(Error::Code::kCorruption,
                   "layer " + digest + " of image " + Quote(ref) + " (" + dir +
                       ") has changed since it was stored; `kiln image verify " + ref +
                       "` names what changed");
    }
    img.layer_dirs.push_back(dir);
  }
  return img;
}

Result<Layer> Store::AddLayer(const std::string& tar_path, const std::string& what,
                              const UnpackPolicy& policy, UnpackNotes* notes,
                              const FileIndex* base) {
  std::string tmp = root_ + "/tmp/layer-XXXXXX";
  if (::mkdtemp(tmp.data()) == nullptr) return Error::Sys("mkdtemp " + Quote(tmp), errno);
  std::string dest = tmp + "/tree";
  auto drop_tmp = [&] { (void)RemoveTree(tmp); };
  auto layer = Unpack(tar_path, what, dest, policy, notes, base);
  if (!layer) {
    drop_tmp();
    return layer.error();
  }
  std::string final_dir = LayerDir(layer->digest);
  if (::access(final_dir.c_str(), F_OK) == 0) {  // shared with an image stored before
    drop_tmp();
    layer->path = final_dir;
    return layer;
  }
  auto seal = Seal(dest);
  if (!seal) {
    drop_tmp();
    return seal.error();
  }
  // The record is read by every run on the layer; the file list (a
  // megabyte or two) only by verify and builds on it.
  json record = {{"digest", layer->digest},
                 {"bytes", layer->bytes},
                 {"entries", layer->entries},
                 {"id_shift", policy.id_shift},
                 {"seal", *seal}};
  for (const auto& [file, text] : {std::pair{final_dir + ".files.json", layer->files.dump()},
                                   {final_dir + ".json", record.dump()}}) {
    if (Status st = WriteFileAtomic(file, text + "\n", 0644); !st.ok()) {
      drop_tmp();
      return st.error();
    }
  }
  ::chmod(dest.c_str(), 0555);
  if (::rename(dest.c_str(), final_dir.c_str()) != 0 && errno != ENOTEMPTY && errno != EEXIST) {
    int err = errno;
    drop_tmp();
    return Error::Sys("rename to " + Quote(final_dir), err);
  }
  drop_tmp();  // empty, or the copy a concurrent unpack of the same layer beat
  layer->path = final_dir;
  return layer;
}

Result<std::string> Store::AddImage(const std::vector<std::string>& layers, const json& config,
                                    const json& origin, const std::string& name) {
  json m = {{"schema", 1}, {"layers", json::array()}, {"config", config}, {"origin", origin}};
  for (const std::string& digest : layers) {
    KILN_ASSIGN_OR_RETURN(json record, LayerRecord(digest));
    m["layers"].push_back({{"digest", digest}, {"bytes", record.value("bytes", 0)}});
  }
  std::string text = m.dump();
  std::string digest = "sha256:" + Sha256Hex(text);
  KILN_TRY(WriteFileAtomic(root_ + "/manifests/" + *DigestHex(digest) + ".json", text, 0644));
  if (!name.empty()) KILN_TRY(Tag(name, digest));
  return digest;
}

Status Store::Tag(const std::string& name, const std::string& digest) {
  if (name == "host") {
    return Error::Invalid("image name 'host' is the built-in host image's; choose another");
  }
  if (!ValidName(name)) {
    return Error::Invalid("image name " + Quote(name) +
                          ": expected [a-z0-9][a-z0-9._-]* (at most 128 characters)");
  }
  return WriteFileAtomic(root_ + "/refs/" + name, digest + "\n", 0644);
}

std::vector<Summary> Store::List() const {
  std::map<std::string, Summary> by_digest;
  for (const std::string& file : Names(root_ + "/manifests")) {
    if (!file.ends_with(".json")) continue;
    std::string digest = "sha256:" + file.substr(0, file.size() - 5);
    auto m = Manifest(digest);
    if (!m) continue;
    Summary& s = by_digest[digest];
    s.digest = digest;
    s.layers = (*m)["layers"].size();
    for (const json& l : (*m)["layers"]) s.bytes += l.value("bytes", uint64_t{0});
    s.origin = m->value("origin", json::object());
  }
  for (const std::string& name : Names(root_ + "/refs")) {
    auto digest = Lookup(name);
    if (digest && by_digest.contains(*digest)) by_digest[*digest].names.push_back(name);
  }
  std::vector<Summary> out;
  for (auto& [d, s] : by_digest) out.push_back(std::move(s));
  return out;
}

std::vector<std::string> Store::NamesOf(const std::string& digest) const {
  std::vector<std::string> out;
  for (const std::string& name : Names(root_ + "/refs")) {
    if (auto d = Lookup(name); d && *d == digest) out.push_back(name);
  }
  return out;
}

Result<std::string> Store::Remove(const std::string& name) {
  KILN_ASSIGN_OR_RETURN(Lock lock, Exclusive());
  KILN_ASSIGN_OR_RETURN(std::string digest, Lookup(name));
  if (!name.starts_with("sha256:") && ::unlink((root_ + "/refs/" + name).c_str()) != 0) {
    return Error::Sys("removing the name " + Quote(name), errno);
  }
  if (!NamesOf(digest).empty()) return digest;  // still named
  std::string path = root_ + "/manifests/" + *DigestHex(digest) + ".json";
  if (::unlink(path.c_str()) != 0) return Error::Sys("removing " + Quote(path), errno);
  return digest;
}

Result<GcReport> Store::Gc() {
  KILN_ASSIGN_OR_RETURN(Lock lock, Exclusive());
  GcReport report;
  std::set<std::string> named;
  for (const std::string& name : Names(root_ + "/refs")) {
    if (auto d = Lookup(name)) named.insert(*d);
  }
  std::set<std::string> used;
  for (const std::string& file : Names(root_ + "/manifests")) {
    std::string digest = "sha256:" + file.substr(0, file.find('.'));
    if (!named.contains(digest)) {
      KILN_TRY(RemoveTree(root_ + "/manifests/" + file));
      report.manifests_removed.push_back(digest);
      continue;
    }
    if (auto m = Manifest(digest)) {
      for (const json& l : (*m)["layers"]) used.insert(l.value("digest", ""));
    }
  }
  for (const std::string& file : Names(root_ + "/layers")) {
    std::string hex = file.substr(0, file.find('.'));
    std::string digest = "sha256:" + hex;
    if (used.contains(digest)) continue;
    if (file == hex) {  // the tree; its record goes with it
      if (auto rec = LayerRecord(digest)) report.bytes_freed += rec->value("bytes", uint64_t{0});
      report.layers_removed.push_back(digest);
    }
    KILN_TRY(RemoveTree(root_ + "/layers/" + file));
  }
  for (const std::string& file : Names(root_ + "/tmp"))
    KILN_TRY(RemoveTree(root_ + "/tmp/" + file));
  return report;
}

Result<std::vector<Finding>> Store::Verify(const std::string& ref) const {
  KILN_ASSIGN_OR_RETURN(std::string digest, Lookup(ref));
  KILN_ASSIGN_OR_RETURN(json m, Manifest(digest));
  std::vector<Finding> findings;
  for (const json& l : m["layers"]) {
    std::string layer = l.value("digest", "");
    auto record = LayerRecord(layer);
    if (!record) {
      findings.push_back({layer, record.error().message()});
      continue;
    }
    auto files = LayerFiles(layer);
    if (!files) {
      findings.push_back({layer, files.error().message()});
      continue;
    }
    std::map<std::string, json> recorded;
    for (const json& e : *files) recorded[e.value("path", "")] = e;
    size_t before = findings.size();
    auto note = [&](std::string message) {
      if (findings.size() - before < 20) findings.push_back({layer, std::move(message)});
    };
    Sha256 h;
    h.Init();
    Status st = CanonicalTar(
        LayerDir(layer), record->value("id_shift", 0u),
        [&](std::string_view bytes) {
          h.Update(bytes);
          return Ok();
        },
        [&](const json& found) {
          std::string path = found["path"];
          auto it = recorded.find(path);
          if (it == recorded.end()) {
            note(Quote(path) + " is not in the layer's file list (added)");
            return;
          }
          std::vector<std::string> changes;
          for (const auto& [key, value] : it->second.items()) {
            if (!found.contains(key) || found[key] != value) {
              changes.push_back(key + " is " +
                                (found.contains(key) ? found[key].dump() : "absent") +
                                ", recorded " + value.dump());
            }
          }
          if (!changes.empty()) note(Quote(path) + ": " + Join(changes, "; "));
          recorded.erase(it);
        });
    if (!st.ok()) {
      findings.push_back({layer, st.error().message()});
      continue;
    }
    for (const auto& [path, e] : recorded) note(Quote(path) + " is missing");
    std::string found = "sha256:" + Hex(h.Final());
    if (found != layer && findings.size() == before) {
      note("the content's digest is " + found);
    }
  }
  return findings;
}

Result<FileIndex> Store::Files(const std::string& digest) const {
  KILN_ASSIGN_OR_RETURN(json m, Manifest(digest));
  std::vector<json> lists;
  for (const json& l : m["layers"]) {
    KILN_ASSIGN_OR_RETURN(json files, LayerFiles(l.value("digest", "")));
    lists.push_back(std::move(files));
  }
  return Merge(lists);
}

}  // namespace kiln::images
