#include "controller/images/recipe.h"

#include <sys/utsname.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "base/fd.h"
#include "base/strings.h"
#include "controller/config/yaml_fields.h"

namespace kiln::images {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::vector<std::string> Words(std::string_view text) {
  std::vector<std::string> out;
  for (const std::string& w : Split(text, ' ')) {
    std::string t(Trim(w));
    if (!t.empty()) out.push_back(t);
  }
  return out;
}

// "deb [opts] URI SUITE COMPONENT..." -> the source; nullopt for another
// type (deb-src) or a comment.
Result<std::optional<AptSource>> ParseLine(std::string line, const std::string& where) {
  if (size_t hash = line.find('#'); hash != std::string::npos) line.resize(hash);
  for (char& c : line) {
    if (c == '\t') c = ' ';
  }
  std::string_view rest = Trim(line);
  if (rest.empty()) return std::optional<AptSource>();
  if (!rest.starts_with("deb ")) {
    if (rest.starts_with("deb-src ")) return std::optional<AptSource>();
    return Error::Invalid(where + ": " + Quote(rest) + ": an apt source starts with 'deb '");
  }
  rest.remove_prefix(4);
  rest = Trim(rest);
  AptSource s;
  if (rest.starts_with("[")) {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) {
      return Error::Invalid(where + ": " + Quote(line) + ": '[' without ']'");
    }
    s.options = std::string(Trim(rest.substr(1, close - 1)));
    rest.remove_prefix(close + 1);
  }
  std::vector<std::string> w = Words(rest);
  if (w.size() < 3) {
    return Error::Invalid(where + ": " + Quote(line) +
                          ": expected 'deb [options] URI SUITE COMPONENT...'");
  }
  s.uri = w[0];
  while (s.uri.ends_with("/")) s.uri.pop_back();
  if (!s.uri.starts_with("http://") && !s.uri.starts_with("https://") &&
      !s.uri.starts_with("file:/")) {
    return Error::Invalid(where + ": " + Quote(w[0]) +
                          ": an apt URI is http://, https:// or file:/");
  }
  s.suite = w[1];
  s.components.assign(w.begin() + 2, w.end());
  return std::optional<AptSource>(std::move(s));
}

// deb822 (.sources): paragraphs of Types, URIs, Suites, Components, Signed-By.
Result<std::vector<AptSource>> ParseDeb822(const std::string& text, const std::string& file) {
  std::vector<AptSource> out;
  std::map<std::string, std::string> para;
  auto flush = [&]() -> Status {
    if (para.empty()) return Ok();
    std::vector<std::string> types = Words(para["types"]);
    bool enabled = para.contains("enabled") ? para["enabled"] != "no" : true;
    if (enabled && std::find(types.begin(), types.end(), "deb") != types.end()) {
      for (const std::string& uri : Words(para["uris"])) {
        for (const std::string& suite : Words(para["suites"])) {
          AptSource s;
          s.uri = uri;
          while (s.uri.ends_with("/")) s.uri.pop_back();
          s.suite = suite;
          s.components = Words(para["components"]);
          if (para.contains("signed-by")) s.options = "signed-by=" + para["signed-by"];
          if (s.components.empty()) {
            return Error::Invalid(file + ": the source " + uri + " " + suite +
                                  " has no Components");
          }
          out.push_back(std::move(s));
        }
      }
    }
    para.clear();
    return Ok();
  };
  std::string last;
  for (const std::string& raw : Split(text, '\n')) {
    if (raw.starts_with("#")) continue;
    if (Trim(raw).empty()) {
      KILN_TRY(flush());
      continue;
    }
    if (raw.starts_with(" ") || raw.starts_with("\t")) {  // a continuation line
      if (!last.empty()) para[last] += " " + std::string(Trim(raw));
      continue;
    }
    size_t colon = raw.find(':');
    if (colon == std::string::npos) continue;
    last = raw.substr(0, colon);
    std::transform(last.begin(), last.end(), last.begin(), ::tolower);
    para[last] = std::string(Trim(raw.substr(colon + 1)));
  }
  KILN_TRY(flush());
  return out;
}

std::string HostCodename(const std::string& root) {
  auto text = ReadFile(root + "/etc/os-release");
  if (!text) return "";
  for (const std::string& line : Split(*text, '\n')) {
    if (line.starts_with("VERSION_CODENAME=")) {
      std::string v = line.substr(17);
      std::erase(v, '"');
      return v;
    }
  }
  return "";
}

bool ValidSnapshot(const std::string& s) {
  // YYYYMMDDTHHMMSSZ
  if (s.size() != 16 || s[8] != 'T' || s[15] != 'Z') return false;
  for (size_t i = 0; i < 15; ++i) {
    if (i != 8 && !std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

bool ValidUserName(const std::string& n) {
  if (n.empty() || n.size() > 32 ||
      !(std::islower(static_cast<unsigned char>(n[0])) || n[0] == '_'))
    return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) ||
           std::isdigit(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

bool ValidPackage(const std::string& p) {
  // name[=version] or name[:arch][=version]; apt itself judges the rest.
  if (p.empty() || !std::isalnum(static_cast<unsigned char>(p[0]))) return false;
  return std::all_of(p.begin(), p.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("+-.:=~_").find(c) != std::string_view::npos;
  });
}

}  // namespace

std::string HostArchitecture() {
  utsname u{};
  ::uname(&u);
  std::string m = u.machine;
  if (m == "x86_64") return "amd64";
  if (m == "aarch64") return "arm64";
  return m;
}

std::string AptSource::Line() const {
  return "deb " + (options.empty() ? "" : "[" + options + "] ") + uri + " " + suite + " " +
         Join(components, " ");
}

json Recipe::Config() const { return {{"env", env}, {"workdir", workdir}, {"user", user}}; }

Result<std::vector<AptSource>> HostSources(const std::string& root) {
  std::vector<AptSource> out;
  std::vector<std::string> files;
  if (fs::exists(root + "/etc/apt/sources.list")) files.push_back(root + "/etc/apt/sources.list");
  std::error_code ec;
  std::vector<std::string> more;
  for (const auto& e : fs::directory_iterator(root + "/etc/apt/sources.list.d", ec)) {
    std::string p = e.path();
    if (p.ends_with(".list") || p.ends_with(".sources")) more.push_back(p);
  }
  std::sort(more.begin(), more.end());
  files.insert(files.end(), more.begin(), more.end());
  for (const std::string& file : files) {
    KILN_ASSIGN_OR_RETURN(std::string text, ReadFile(file));
    if (file.ends_with(".sources")) {
      KILN_ASSIGN_OR_RETURN(auto parsed, ParseDeb822(text, file));
      out.insert(out.end(), parsed.begin(), parsed.end());
      continue;
    }
    int n = 0;
    for (const std::string& line : Split(text, '\n')) {
      ++n;
      KILN_ASSIGN_OR_RETURN(auto s, ParseLine(line, file + ":" + std::to_string(n)));
      if (s) out.push_back(std::move(*s));
    }
  }
  return out;
}

Result<Recipe> LoadRecipe(const std::string& dir, const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos || name.starts_with(".")) {
    return Error::Invalid("recipe name " + Quote(name) + ": expected a file name in " + dir);
  }
  Recipe r;
  r.name = name;
  r.file = dir + "/" + name + ".yaml";
  auto text = ReadFile(r.file);
  if (!text) {
    return Error::NotFound("image recipe " + Quote(r.file) + " does not exist (recipes are " + dir +
                           "/<name>.yaml)");
  }
  KILN_ASSIGN_OR_RETURN(YAML::Node root, yaml::Load(*text, r.file));
  if (!root.IsMap()) return Error::Invalid(r.file + ": a recipe is a mapping of fields");
  yaml::Fields f(root, r.file, "");
  auto str = [&](const char* key, std::string* out) -> Status {
    KILN_ASSIGN_OR_RETURN(auto v, f.String(key));
    if (v) {
      *out = *v;
      r.where[key] = f.Where(key);
    }
    return Ok();
  };
  KILN_TRY(str("from", &r.from));
  KILN_TRY(str("suite", &r.suite));
  KILN_TRY(str("snapshot", &r.snapshot));
  KILN_TRY(str("architecture", &r.architecture));
  KILN_TRY(str("variant", &r.variant));
  KILN_TRY(str("workdir", &r.workdir));
  KILN_TRY(str("user", &r.user));
  KILN_TRY(str("test", &r.test));
  if (!r.snapshot.empty() && !ValidSnapshot(r.snapshot)) {
    return f.Fail("snapshot", "must be a snapshot.debian.org time, YYYYMMDDTHHMMSSZ");
  }
  static const std::set<std::string> kVariants = {"essential", "apt",       "required", "minbase",
                                                  "buildd",    "important", "standard"};
  if (!kVariants.contains(r.variant)) {
    return f.Fail("variant",
                  "must be one of essential, apt, required, minbase, buildd, "
                  "important, standard (mmdebstrap's)");
  }
  if (!r.workdir.empty() && !r.workdir.starts_with("/")) {
    return f.Fail("workdir", "must be an absolute path");
  }
  if (!r.from.empty() && (r.from == name || r.from.find('/') != std::string::npos)) {
    return f.Fail("from", "must name another recipe of " + dir);
  }
  KILN_ASSIGN_OR_RETURN(auto epoch, f.Uint("source_date_epoch"));
  if (epoch) {
    r.source_date_epoch = *epoch;
    r.where["source_date_epoch"] = f.Where("source_date_epoch");
  }
  KILN_ASSIGN_OR_RETURN(auto packages, f.Strings("packages"));
  if (packages) {
    r.where["packages"] = f.Where("packages");
    for (const std::string& p : *packages) {
      if (!ValidPackage(p)) return f.Fail("packages", Quote(p) + " is not a package name");
      r.packages.push_back(p);
    }
  }
  KILN_ASSIGN_OR_RETURN(auto sources, f.Strings("sources"));
  if (sources) {
    r.where["sources"] = f.Where("sources");
    for (const std::string& line : *sources) {
      KILN_ASSIGN_OR_RETURN(auto s, ParseLine(line, f.Where("sources") + ": 'sources'"));
      if (!s) return f.Fail("sources", Quote(line) + " is not a binary ('deb') source");
      r.sources.push_back(std::move(*s));
    }
    if (r.sources.empty()) return f.Fail("sources", "is empty; leave it out for the host's");
  }
  KILN_ASSIGN_OR_RETURN(auto env, f.Map("env"));
  if (env) {
    r.where["env"] = f.Where("env");
    for (const std::string& k : env->Keys()) {  // in file order: later ones may use earlier
      bool valid = !k.empty() && !std::isdigit(static_cast<unsigned char>(k[0])) &&
                   std::all_of(k.begin(), k.end(), [](char c) {
                     return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
                   });
      if (!valid) return f.Fail("env", Quote(k) + " is not a variable name");
      KILN_ASSIGN_OR_RETURN(auto v, env->String(k));
      r.env.push_back(k + "=" + v.value_or(""));
    }
  }
  KILN_ASSIGN_OR_RETURN(auto files, f.List("files"));
  for (yaml::Fields& item : files.value_or(std::vector<yaml::Fields>{})) {
    RecipeFile rf;
    KILN_ASSIGN_OR_RETURN(auto source, item.String("source"));
    KILN_ASSIGN_OR_RETURN(auto dest, item.String("dest"));
    KILN_ASSIGN_OR_RETURN(auto mode, item.String("mode"));
    KILN_TRY(item.Finish());
    if (!source) return item.Fail("source", "is required");
    if (!dest || !dest->starts_with("/") || dest->find("/../") != std::string::npos ||
        dest->ends_with("/..")) {
      return item.Fail("dest", "must be an absolute path in the image, without '..'");
    }
    rf.source = fs::path(*source).is_absolute() ? *source : dir + "/" + *source;
    if (!fs::is_regular_file(rf.source)) {
      return item.Fail("source", Quote(rf.source) + " is not a file");
    }
    rf.dest = *dest;
    if (mode) {
      char* end = nullptr;
      unsigned long m = std::strtoul(mode->c_str(), &end, 8);
      if (mode->empty() || *end != '\0' || m > 07777) {
        return item.Fail("mode", Quote(*mode) + " is not an octal mode such as \"0644\"");
      }
      rf.mode = static_cast<uint32_t>(m);
    }
    r.files.push_back(std::move(rf));
  }
  KILN_ASSIGN_OR_RETURN(auto users, f.List("users"));
  for (yaml::Fields& item : users.value_or(std::vector<yaml::Fields>{})) {
    RecipeUser u;
    KILN_ASSIGN_OR_RETURN(auto uname, item.String("name"));
    KILN_ASSIGN_OR_RETURN(auto uid, item.Uint("uid"));
    KILN_ASSIGN_OR_RETURN(auto gid, item.Uint("gid"));
    KILN_ASSIGN_OR_RETURN(auto home, item.String("home"));
    KILN_ASSIGN_OR_RETURN(auto shell, item.String("shell"));
    KILN_TRY(item.Finish());
    if (!uname || !ValidUserName(*uname)) {
      return item.Fail("name", "must be a user name ([a-z_][a-z0-9_-]*, at most 32)");
    }
    if (!uid || *uid == 0 || *uid >= 65535) return item.Fail("uid", "must be 1 to 65534");
    if (gid && *gid >= 65535) return item.Fail("gid", "must be below 65535");
    u.name = *uname;
    u.uid = static_cast<uint32_t>(*uid);
    u.gid = static_cast<uint32_t>(gid.value_or(*uid));
    u.home = home.value_or("/home/" + u.name);
    if (shell) u.shell = *shell;
    r.users.push_back(std::move(u));
  }
  KILN_TRY(f.Finish());
  if (r.from.empty() && r.packages.empty()) {
    return f.Fail("", "names no packages and builds on nothing ('from:')");
  }

  // Defaults from this host.
  if (r.suite.empty() && r.from.empty()) r.suite = HostCodename("/");
  if (r.architecture.empty() && r.from.empty()) r.architecture = HostArchitecture();
  if (r.sources.empty() && r.from.empty()) {
    KILN_ASSIGN_OR_RETURN(auto host, HostSources());
    for (AptSource& s : host) {
      if (s.suite == r.suite || s.suite.starts_with(r.suite + "-")) r.sources.push_back(s);
    }
    if (r.sources.empty()) {
      r.sources.push_back({"", "http://deb.debian.org/debian", r.suite, {"main"}});
    }
  }
  if (!r.snapshot.empty()) {
    // deb.debian.org's archives, at that moment.
    for (AptSource& s : r.sources) {
      for (const char* archive : {"debian-security", "debian"}) {
        std::string plain = std::string("http://deb.debian.org/") + archive;
        if (s.uri == plain) {
          s.uri = std::string("http://snapshot.debian.org/archive/") + archive + "/" + r.snapshot;
          s.options =
              s.options.empty() ? "check-valid-until=no" : s.options + " check-valid-until=no";
          break;
        }
      }
    }
  }
  return r;
}

Result<Recipe> Flatten(const Recipe& base, const Recipe& child) {
  Recipe r = base;
  auto agree = [&](const std::string& field, const std::string& mine,
                   const std::string& theirs) -> Status {
    if (mine.empty() || mine == theirs) return Ok();
    std::string where = child.where.contains(field) ? child.where.at(field) : child.file;
    return Error::Invalid(where + ": '" + field + "' is " + Quote(mine) + ", but " +
                          Quote(base.file) + ", which it is built on, has " + Quote(theirs));
  };
  KILN_TRY(agree("suite", child.suite, base.suite));
  KILN_TRY(agree("snapshot", child.snapshot, base.snapshot));
  KILN_TRY(agree("architecture", child.architecture, base.architecture));
  if (child.where.contains("variant")) KILN_TRY(agree("variant", child.variant, base.variant));
  if (!child.sources.empty()) {
    std::vector<std::string> a, b;
    for (const auto& s : child.sources) a.push_back(s.Line());
    for (const auto& s : base.sources) b.push_back(s.Line());
    KILN_TRY(agree("sources", Join(a, "; "), Join(b, "; ")));
  }
  r.name = child.name;
  r.file = child.file;
  r.from = child.from;
  r.where = child.where;
  for (const std::string& p : child.packages) {
    if (std::find(r.packages.begin(), r.packages.end(), p) == r.packages.end()) {
      r.packages.push_back(p);
    }
  }
  r.files.insert(r.files.end(), child.files.begin(), child.files.end());
  r.users.insert(r.users.end(), child.users.begin(), child.users.end());
  for (const std::string& kv : child.env) {
    std::string name = kv.substr(0, kv.find('='));
    std::erase_if(r.env, [&](const std::string& e) { return e.starts_with(name + "="); });
    r.env.push_back(kv);
  }
  if (!child.workdir.empty()) r.workdir = child.workdir;
  if (!child.user.empty()) r.user = child.user;
  r.test = child.test;
  if (child.where.contains("source_date_epoch")) r.source_date_epoch = child.source_date_epoch;
  return r;
}

}  // namespace kiln::images
