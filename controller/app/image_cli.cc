// `kiln image build|ls|inspect|rm|gc|import|export|verify` (docs/images.md).
#include "controller/app/image_cli.h"

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <set>

#include "base/strings.h"
#include "base/terminal.h"
#include "controller/app/cli_common.h"
#include "controller/config/skill.h"
#include "controller/images/build.h"
#include "controller/images/oci.h"
#include "controller/run/provision.h"
#include "controller/store/postgres.h"
#include "controller/store/store.h"

namespace kiln::controller::cli {
namespace {

using nlohmann::json;

struct ImageOptions {
  std::string config;
  std::vector<std::string> names;
  std::string ref, path, name, recipes;
  bool force = false, json = false;
};

int ExitFor(const Error& e) {
  switch (e.code()) {
    case Error::Code::kInvalidArgument:
    case Error::Code::kNotFound:
      return kUsage;
    case Error::Code::kCorruption:
      return kFailed;
    default:
      return kInfrastructure;
  }
}

// The configuration (with its default paths) and the image store.
struct Opened {
  config::Config config;
  std::optional<images::Store> store;
};

Result<Opened> Open(const std::string& config_path) {
  Opened o;
  KILN_ASSIGN_OR_RETURN(o.config, LoadConfig(config_path));
  KILN_TRY(provision::ResolvePaths(&o.config));
  KILN_ASSIGN_OR_RETURN(images::Store s, images::Store::Open(o.config.state_dir));
  o.store.emplace(std::move(s));
  return o;
}

std::string Size(uint64_t bytes) {
  char buf[32];
  if (bytes >= (1ull << 30)) {
    std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(bytes) / (1ull << 30));
  } else if (bytes >= (1ull << 20)) {
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1ull << 20));
  } else {
    std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(bytes) / 1024);
  }
  return buf;
}

void Progress(const std::string& line) {
  std::fprintf(stderr, "kiln image: %s\n", ForTerminalLine(line).c_str());
}

int DoBuild(const ImageOptions& io) {
  auto o = Open(io.config);
  if (!o) return Fail(o.error(), ExitFor(o.error()));
  images::BuildOptions b;
  b.recipes_dir = io.recipes.empty() ? o->config.images_dir : io.recipes;
  if (b.recipes_dir.empty()) {
    return Fail(Error::NotFound("no recipes directory: set images_dir or give --recipes"));
  }
  b.state_dir = o->config.state_dir;
  b.force = io.force;
  b.progress = Progress;
  for (const std::string& name : io.names) {
    auto built = images::Build(*o->store, name, b);
    if (!built) return Fail(built.error(), ExitFor(built.error()));
    std::printf("%s %s%s\n", name.c_str(), built->digest.c_str(),
                built->cached ? " (up to date)" : "");
  }
  return 0;
}

int DoList(const ImageOptions& io) {
  auto o = Open(io.config);
  if (!o) return Fail(o.error(), ExitFor(o.error()));
  json all = json::array();
  std::string text = "NAME\tDIGEST\tLAYERS\tSIZE\tFROM\n";
  for (const images::Summary& s : o->store->List()) {
    std::string from = s.origin.contains("recipe") ? "recipe " + s.origin.value("recipe", "")
                       : s.origin.contains("imported")
                           ? "import (" + s.origin.value("format", "") + ")"
                           : "";
    all.push_back({{"names", s.names},
                   {"digest", s.digest},
                   {"layers", s.layers},
                   {"bytes", s.bytes},
                   {"origin", s.origin}});
    text += (s.names.empty() ? "-" : Join(s.names, ",")) + "\t" + s.digest.substr(0, 19) + "\t" +
            std::to_string(s.layers) + "\t" + Size(s.bytes) + "\t" + from + "\n";
  }
  std::cout << (io.json ? ForTerminalJson(all.dump(2)) + "\n" : ForTerminal(text));
  return 0;
}

int DoInspect(const ImageOptions& io) {
  auto o = Open(io.config);
  if (!o) return Fail(o.error(), ExitFor(o.error()));
  auto img = o->store->Resolve(io.ref);
  if (!img) return Fail(img.error(), ExitFor(img.error()));
  json layers = json::array();
  uint64_t bytes = 0;
  for (const json& l : img->manifest["layers"]) {
    auto rec = o->store->LayerRecord(l["digest"]);
    if (!rec) return Fail(rec.error(), ExitFor(rec.error()));
    layers.push_back({{"digest", l["digest"]},
                      {"bytes", (*rec)["bytes"]},
                      {"entries", (*rec)["entries"]},
                      {"path", o->store->LayerDir(l["digest"])}});
    bytes += (*rec)["bytes"].get<uint64_t>();
  }
  auto packages = images::Packages(*o->store, *img);
  if (!packages) return Fail(packages.error(), ExitFor(packages.error()));
  json out = {{"digest", img->digest},
              {"names", o->store->NamesOf(img->digest)},
              {"layers", layers},
              {"bytes", bytes},
              {"config", img->manifest["config"]},
              {"origin", img->manifest["origin"]},
              {"packages", *packages}};
  std::cout << ForTerminalJson(out.dump(2)) << "\n";
  return 0;
}

// The image digests queued and running runs use (or will): a running run's
// recorded digest, a queued run's image as its plan would choose it.
Result<std::set<std::string>> InUse(const Opened& o) {
  std::set<std::string> used;
  if (!store::pg::IsUrl(o.config.store) && ::access(o.config.store.c_str(), F_OK) != 0) return used;
  KILN_ASSIGN_OR_RETURN(auto st, store::Open(o.config.store));
  store::ListFilter queued;
  queued.status = store::Status::kQueued;
  queued.limit = 0;
  KILN_ASSIGN_OR_RETURN(std::vector<store::Run> runs, st->List(queued));
  KILN_ASSIGN_OR_RETURN(std::vector<store::Run> running, st->Running());
  runs.insert(runs.end(), running.begin(), running.end());
  for (const store::Run& r : runs) {
    if (!r.image_digest.empty()) {
      used.insert(r.image_digest);
      continue;
    }
    auto sk = skill::Load(o.config.skills_dir, r.request.role);
    std::string image = provision::ImageFor(o.config, sk ? sk->image : "", r.request);
    if (auto d = o.store->Lookup(image)) used.insert(*d);
  }
  return used;
}

int DoRemove(const ImageOptions& io) {
  auto o = Open(io.config);
  if (!o) return Fail(o.error(), ExitFor(o.error()));
  auto used = InUse(*o);
  if (!used) return Fail(used.error(), kInfrastructure);
  for (const std::string& name : io.names) {
    auto digest = o->store->Lookup(name);
    if (!digest) return Fail(digest.error(), ExitFor(digest.error()));
    if (used->contains(*digest)) {
      return Fail(Error::Invalid("image " + Quote(name) + " (" + *digest +
                                 ") is used by a queued or running run; cancel it or wait"),
                  kFailed);
    }
    auto removed = o->store->Remove(name);
    if (!removed) return Fail(removed.error(), ExitFor(removed.error()));
    std::printf("removed %s (%s)\n", name.c_str(), removed->c_str());
  }
  return 0;
}

int DoGc(const ImageOptions& io) {
  auto o = Open(io.config);
  if (!o) return Fail(o.error(), ExitFor(o.error()));
  auto r = o->store->Gc();
  if (!r) return Fail(r.error(), ExitFor(r.error()));
  for (const std::string& l : r->layers_removed) std::printf("removed layer %s\n", l.c_str());
  std::printf("%zu layer(s) and %zu unnamed image(s) removed, %s freed\n", r->layers_removed.size(),
              r->manifests_removed.size(), Size(r->bytes_freed).c_str());
  return 0;
}

int DoImport(const ImageOptions& io) {
  auto o = Open(io.config);
  if (!o) return Fail(o.error(), ExitFor(o.error()));
  auto imp = images::Import(*o->store, io.path, io.name, Progress);
  if (!imp) return Fail(imp.error(), ExitFor(imp.error()));
  const images::UnpackNotes& n = imp->notes;
  if (n.devices_dropped + n.setid_cleared + n.ids_clamped + n.xattrs_dropped > 0) {
    Progress("neutralised: " + std::to_string(n.devices_dropped) + " device node(s) dropped, " +
             std::to_string(n.setid_cleared) + " setuid/setgid bit(s) cleared, " +
             std::to_string(n.ids_clamped) + " owner(s) past 65535 made nobody, " +
             std::to_string(n.xattrs_dropped) + " file(s) lost extended attributes");
  }
  std::printf("%s %s\n", imp->name.c_str(), imp->digest.c_str());
  return 0;
}

int DoExport(const ImageOptions& io) {
  auto o = Open(io.config);
  if (!o) return Fail(o.error(), ExitFor(o.error()));
  auto m = images::Export(*o->store, io.ref, io.path);
  if (!m) return Fail(m.error(), ExitFor(m.error()));
  std::printf("%s\n", m->c_str());
  return 0;
}

int DoVerify(const ImageOptions& io) {
  auto o = Open(io.config);
  if (!o) return Fail(o.error(), ExitFor(o.error()));
  auto findings = o->store->Verify(io.ref);
  if (!findings) return Fail(findings.error(), ExitFor(findings.error()));
  for (const images::Finding& f : *findings) {
    std::printf("%s: %s\n", f.layer.c_str(), ForTerminalLine(f.message).c_str());
  }
  if (!findings->empty()) return kFailed;
  std::printf("%s: every layer matches its digest\n", io.ref.c_str());
  return 0;
}

}  // namespace

void RegisterImage(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<ImageOptions>();
  auto* image = app.add_subcommand(
      "image", "Build, import, list and check toolchain images (docs/images.md)");
  image->require_subcommand(1);
  auto* build = image->add_subcommand(
      "build", "Build images from their recipes (images/<name>.yaml) with mmdebstrap");
  build->add_option("name", o->names, "recipe names")->required()->expected(1, -1);
  build->add_option("--recipes", o->recipes, "the recipes' directory (default: images_dir)");
  build->add_flag("--force", o->force, "build even when an image of the same build key exists");
  auto* ls = image->add_subcommand("ls", "List the images of the store");
  ls->add_flag("--json", o->json, "JSON output");
  auto* inspect = image->add_subcommand(
      "inspect", "One image as JSON: layers, size, config, origin, installed packages");
  inspect->add_option("image", o->ref, "name or sha256:<digest>")->required();
  auto* rm =
      image->add_subcommand("rm", "Remove image names (not one a queued or running run uses)");
  rm->add_option("name", o->names, "image names")->required()->expected(1, -1);
  auto* gc = image->add_subcommand("gc", "Remove layers and unnamed images nothing uses");
  auto* imp = image->add_subcommand(
      "import", "Import an OCI image layout (directory or tar) or a docker/podman save tar");
  imp->add_option("path", o->path, "directory or tar")->required();
  imp->add_option("--name", o->name, "the name to give it (default: its own)");
  auto* exp = image->add_subcommand("export", "Write an image as an OCI image layout");
  exp->add_option("image", o->ref, "name or sha256:<digest>")->required();
  exp->add_option("dir", o->path, "directory (created; must be empty)")->required();
  auto* verify = image->add_subcommand(
      "verify", "Rehash every file of an image's layers against their file lists and digests");
  verify->add_option("image", o->ref, "name or sha256:<digest>")->required();
  for (CLI::App* c : {build, ls, inspect, rm, gc, imp, exp, verify}) {
    c->add_option("--config", o->config, "configuration file (default /etc/kiln/kiln.yaml)");
  }
  build->callback([o, exit_code] { *exit_code = DoBuild(*o); });
  ls->callback([o, exit_code] { *exit_code = DoList(*o); });
  inspect->callback([o, exit_code] { *exit_code = DoInspect(*o); });
  rm->callback([o, exit_code] { *exit_code = DoRemove(*o); });
  gc->callback([o, exit_code] { *exit_code = DoGc(*o); });
  imp->callback([o, exit_code] { *exit_code = DoImport(*o); });
  exp->callback([o, exit_code] { *exit_code = DoExport(*o); });
  verify->callback([o, exit_code] { *exit_code = DoVerify(*o); });
}

}  // namespace kiln::controller::cli
