#include "controller/images/build.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <set>

#include "base/digest.h"
#include "base/fd.h"
#include "base/process.h"
#include "base/strings.h"
#include "runtime/model/http_client.h"
#include "sandbox/supervisor.h"

namespace kiln::images {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// The build key's own version: bump it when what a build makes changes.
constexpr int kBuildFormat = 1;

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string WhereOf(const Recipe& r, const std::string& field) {
  auto it = r.where.find(field);
  return it != r.where.end() ? it->second : r.file;
}

// The recipe and the chain it is built on, flattened; names seen so far
// catch a cycle.
Result<Recipe> LoadFlat(const std::string& dir, const std::string& name,
                        std::vector<std::string>* chain) {
  if (std::find(chain->begin(), chain->end(), name) != chain->end()) {
    chain->push_back(name);
    return Error::Invalid("image recipes build on each other in a circle: " + Join(*chain, " -> "));
  }
  chain->push_back(name);
  KILN_ASSIGN_OR_RETURN(Recipe r, LoadRecipe(dir, name));
  if (r.from.empty()) return r;
  auto base = LoadFlat(dir, r.from, chain);
  if (!base) return base.error().Wrap(WhereOf(r, "from") + ": 'from' " + Quote(r.from));
  return Flatten(*base, r);
}

// The InRelease (or Release) file of each source: what apt resolves the
// packages against. The same files give the same packages.
Result<json> Releases(const Recipe& r) {
  json out = json::object();
  http_client::Client client;
  for (const AptSource& s : r.sources) {
    std::string base = s.uri + "/dists/" + s.suite + "/";
    std::string body;
    std::string problem;
    for (const char* file : {"InRelease", "Release"}) {
      if (s.uri.starts_with("file:")) {
        auto text = ReadFile(s.uri.substr(5) + "/dists/" + s.suite + "/" + file);
        if (text) {
          body = std::move(*text);
          break;
        }
        problem = text.error().message();
        continue;
      }
      http_client::Request req;
      req.method = "GET";
      req.url = base + file;
      req.connect_timeout_ms = 10'000;
      req.total_timeout_ms = 60'000;
      http_client::Response resp = client.Send(req);
      if (resp.error) {
        problem = resp.error->message();
        break;  // not reachable at all
      }
      if (resp.status == 200) {
        body = std::move(resp.body);
        break;
      }
      problem = "HTTP " + std::to_string(resp.status) + " for " + req.url;
    }
    if (body.empty()) {
      return Error::Invalid(WhereOf(r, "sources") + ": the apt source " + Quote(s.Line()) +
                            " does not answer: " + problem);
    }
    out[s.Line()] = Sha256Hex(body);
  }
  return out;
}

// What the recipe asks for, as the build key and the manifest's origin see it.
Result<json> RecipeJson(const Recipe& r) {
  json files = json::array();
  for (const RecipeFile& f : r.files) {
    KILN_ASSIGN_OR_RETURN(std::string content, ReadFile(f.source));
    files.push_back({{"dest", f.dest}, {"mode", f.mode}, {"sha256", Sha256Hex(content)}});
  }
  json users = json::array();
  for (const RecipeUser& u : r.users) {
    users.push_back(
        {{"name", u.name}, {"uid", u.uid}, {"gid", u.gid}, {"home", u.home}, {"shell", u.shell}});
  }
  json sources = json::array();
  for (const AptSource& s : r.sources) sources.push_back(s.Line());
  return json{{"suite", r.suite},     {"architecture", r.architecture},
              {"variant", r.variant}, {"packages", r.packages},
              {"sources", sources},   {"files", files},
              {"users", users},       {"config", r.Config()},
              {"test", r.test},       {"source_date_epoch", r.source_date_epoch}};
}

// The customize hook run inside the new tree: the working directory, the
// files' modes, the users.
std::string HookScript(const Recipe& r) {
  std::string s = "set -e\n";
  if (!r.workdir.empty()) s += "mkdir -p " + ShellQuote(r.workdir) + "\n";
  for (const RecipeFile& f : r.files) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", f.mode);
    s += "chmod " + std::string(mode) + " " + ShellQuote(f.dest) + "\n";
  }
  uint64_t days = r.source_date_epoch / 86400;
  for (const RecipeUser& u : r.users) {
    std::string n = ShellQuote(u.name);
    std::string uid = std::to_string(u.uid), gid = std::to_string(u.gid);
    s += "grep -q '^'" + n + "':' /etc/group || echo " + n + "':x:" + gid + ":' >> /etc/group\n";
    s += "grep -q '^'" + n + "':' /etc/passwd || echo " + n + "':x:" + uid + ":" + gid + "::'" +
         ShellQuote(u.home) + "':'" + ShellQuote(u.shell) + " >> /etc/passwd\n";
    s += "if [ -f /etc/shadow ]; then grep -q '^'" + n + "':' /etc/shadow || echo " + n +
         "':*:" + std::to_string(days) + ":0:99999:7:::' >> /etc/shadow; fi\n";
    s += "mkdir -p " + ShellQuote(u.home) + " && chown " + uid + ":" + gid + " " +
         ShellQuote(u.home) + "\n";
  }
  s += "rm -f /tmp/kiln-customize.sh\n";
  return s;
}

// mmdebstrap's failure, in terms of the recipe: apt's own message at the
// field it is about.
Error BuildFailure(const Recipe& r, const ProcessResult& p) {
  std::vector<std::string> errors, tail;
  for (const std::string& line : Split(p.output, '\n')) {
    if (line.starts_with("E: ")) errors.push_back(line);
    if (!line.empty()) tail.push_back(line);
  }
  if (tail.size() > 20) tail.erase(tail.begin(), tail.end() - 20);
  for (const std::string& e : errors) {
    if (e.find("Unable to locate package") != std::string::npos ||
        e.find("was not found") != std::string::npos ||
        e.find("has no installation candidate") != std::string::npos ||
        e.find("Unable to correct problems") != std::string::npos) {
      return Error::Invalid(WhereOf(r, "packages") + ": 'packages': apt: " + e);
    }
    if (e.find("Failed to fetch") != std::string::npos ||
        e.find("does not have a Release file") != std::string::npos ||
        e.find("apt-get update") != std::string::npos) {
      return Error::Invalid(WhereOf(r, "sources") + ": apt: " + e);
    }
  }
  std::string detail = errors.empty() ? Join(tail, "\n") : Join(errors, "\n");
  return Error(Error::Code::kIO,
               r.file + ": mmdebstrap failed (exit " + std::to_string(p.status) + "):\n" + detail);
}

// Runs the recipe's test in a sandbox on the new image: the image's
// environment and working directory, no network, the default limits.
Status RunTest(const Recipe& r, const Image& img, const BuildOptions& o) {
  sandbox::Spec spec;
  spec.layers = img.layer_dirs;
  spec.state_dir = o.state_dir;
  spec.argv = {"/bin/sh", "-c", r.test};
  for (const json& e : img.manifest["config"].value("env", json::array())) {
    spec.env.push_back(e.get<std::string>());
  }
  spec.workdir = img.manifest["config"].value("workdir", "");
  spec.limits.timeout_ms = 10 * 60 * 1000;
  spec.tmpfs.push_back({"/tmp", 256ull << 20});
  auto report = sandbox::Run(spec);
  if (!report) return report.error().Wrap(WhereOf(r, "test") + ": running the test");
  if (report->status != 0) {
    std::string why =
        report->error.empty() ? "exit " + std::to_string(report->status) : report->error;
    return Error::Invalid(WhereOf(r, "test") + ": the test failed in the built image (" + why +
                          "); its output is above, and the image was not named " + Quote(r.name));
  }
  return Ok();
}

}  // namespace

std::vector<std::string> MmdebstrapArgs(const Recipe& r, const std::string& tar_path,
                                        const std::string& cache_dir,
                                        const std::string& hook_script) {
  std::vector<std::string> a = {"mmdebstrap", ::geteuid() == 0 ? "--mode=root" : "--mode=unshare",
                                "--variant=" + r.variant, "--architectures=" + r.architecture,
                                "--format=tar"};
  if (!r.packages.empty()) a.push_back("--include=" + Join(r.packages, ","));
  if (!cache_dir.empty()) {
    // The package cache, as mmdebstrap's manual keeps one, but hard-linked
    // in and out (copied where the chroot is on another filesystem).
    std::string cache = ShellQuote(cache_dir);
    std::string archives = "\"$1\"/var/cache/apt/archives";
    a.push_back("--skip=essential/unlink");
    a.push_back("--setup-hook=mkdir -p " + archives + " && { cp -al " + cache + "/. " + archives +
                "/ 2>/dev/null || cp -a " + cache + "/. " + archives + "/; }");
    a.push_back("--customize-hook=cp -aln " + archives + "/*.deb " + cache +
                "/ 2>/dev/null || cp -an " + archives + "/*.deb " + cache +
                "/ 2>/dev/null || true");
  }
  for (const RecipeFile& f : r.files) {
    std::string parent = fs::path(f.dest).parent_path();
    a.push_back("--customize-hook=chroot \"$1\" mkdir -p " + ShellQuote(parent));
    a.push_back("--customize-hook=upload " + f.source + " " + f.dest);
  }
  if (!hook_script.empty()) {
    a.push_back("--customize-hook=upload " + hook_script + " /tmp/kiln-customize.sh");
    a.push_back("--customize-hook=chroot \"$1\" /bin/sh /tmp/kiln-customize.sh");
  }
  a.push_back(r.suite);
  a.push_back(tar_path);
  for (const AptSource& s : r.sources) a.push_back(s.Line());
  return a;
}

Result<Built> Build(Store& store, const std::string& name, const BuildOptions& o) {
  auto say = [&](const std::string& line) {
    if (o.progress) o.progress(line);
  };
  std::vector<std::string> chain;
  KILN_ASSIGN_OR_RETURN(Recipe flat, LoadFlat(o.recipes_dir, name, &chain));
  for (const RecipeFile& f : flat.files) {
    if (f.source.find_first_of(" \t\n'\"") != std::string::npos ||
        f.dest.find_first_of(" \t\n'\"") != std::string::npos) {
      return Error::Invalid(WhereOf(flat, "files") + ": 'files': " + Quote(f.dest) +
                            ": paths with blanks or quotes are not supported");
    }
  }
  // The base image first (its own key decides whether it is built).
  Built built;
  built.name = name;
  std::string base_digest;
  FileIndex base_files;
  if (!flat.from.empty()) {
    say("base image " + flat.from);
    BuildOptions for_base = o;
    for_base.force = false;  // --force is for the images named; a base is found by its key
    KILN_ASSIGN_OR_RETURN(Built base, Build(store, flat.from, for_base));
    base_digest = base.digest;
    built.layers = base.layers;
    KILN_ASSIGN_OR_RETURN(base_files, store.Files(base_digest));
  }
  KILN_ASSIGN_OR_RETURN(json recipe, RecipeJson(flat));
  say(name + ": checking the apt sources");
  KILN_ASSIGN_OR_RETURN(json releases, Releases(flat));
  json key_json = {
      {"format", kBuildFormat}, {"recipe", recipe}, {"base", base_digest}, {"releases", releases}};
  std::string key = Sha256Hex(key_json.dump());
  std::string key_file = store.root() + "/builds/" + key;
  std::error_code ec;
  fs::create_directories(store.root() + "/builds", ec);
  KILN_ASSIGN_OR_RETURN(Lock lock, store.Shared());
  if (!o.force) {
    if (auto known = ReadFile(key_file)) {
      std::string digest(Trim(*known));
      if (auto img = store.Resolve(digest)) {
        KILN_TRY(store.Tag(name, digest));
        built.digest = digest;
        built.layers.clear();
        for (const json& l : img->manifest["layers"]) built.layers.push_back(l["digest"]);
        built.cached = true;
        say(name + ": up to date (" + digest + ")");
        return built;
      }
    }
  }

  std::string tmp = store.root() + "/tmp/build-XXXXXX";
  if (::mkdtemp(tmp.data()) == nullptr) return Error::Sys("mkdtemp", errno);
  struct Cleanup {
    std::string dir;
    ~Cleanup() { (void)RemoveTree(dir); }
  } cleanup{tmp};
  std::string cache = store.root() + "/cache/" + flat.suite + "-" + flat.architecture;
  fs::create_directories(cache, ec);
  std::string hook;
  if (!flat.files.empty() || !flat.users.empty() || !flat.workdir.empty()) {
    hook = tmp + "/customize.sh";
    KILN_TRY(WriteNewFile(hook, HookScript(flat), 0644, Sync::kNoFsync));
  }
  auto cached_debs = [&] {
    size_t n = 0;
    for (const auto& e : fs::directory_iterator(cache, ec)) n += e.path().extension() == ".deb";
    return n;
  };
  size_t debs_before = cached_debs();
  std::string tar = tmp + "/rootfs.tar";
  say(name + ": mmdebstrap " + flat.suite + " (" + std::to_string(flat.packages.size()) +
      " packages)");
  KILN_ASSIGN_OR_RETURN(ProcessResult p,
                        RunProgram(MmdebstrapArgs(flat, tar, cache, hook),
                                   {"SOURCE_DATE_EPOCH=" + std::to_string(flat.source_date_epoch)},
                                   [&](const std::string& l) {
                                     if (l.starts_with("I: ")) say(name + ": " + l.substr(3));
                                   }));
  if (p.status != 0) return BuildFailure(flat, p);
  size_t debs_after = cached_debs();
  say(name + ": " + std::to_string(debs_after - std::min(debs_before, debs_after)) +
      " package(s) downloaded, " + std::to_string(debs_before) + " in the cache before");

  say(name + ": writing the layer");
  UnpackPolicy policy;
  policy.trusted = true;
  policy.id_shift = IdShift();
  KILN_ASSIGN_OR_RETURN(Layer layer,
                        store.AddLayer(tar, "mmdebstrap's tar of " + name, policy, nullptr,
                                       base_digest.empty() ? nullptr : &base_files));
  say(name + ": layer " + layer.digest + " (" + std::to_string(layer.entries) + " entries, " +
      std::to_string(layer.bytes >> 20) + " MiB)");
  built.layers.push_back(layer.digest);
  json origin = {{"recipe", name}, {"recipe_sha256", Sha256Hex(recipe.dump())}};
  KILN_ASSIGN_OR_RETURN(built.digest, store.AddImage(built.layers, flat.Config(), origin, ""));
  if (!flat.test.empty()) {
    say(name + ": test: " + flat.test);
    KILN_ASSIGN_OR_RETURN(Image img, store.Resolve(built.digest));
    KILN_TRY(RunTest(flat, img, o));
  }
  KILN_TRY(store.Tag(name, built.digest));
  KILN_TRY(WriteFileAtomic(key_file, built.digest + "\n", 0644));
  say(name + ": built " + built.digest);
  return built;
}

}  // namespace kiln::images
