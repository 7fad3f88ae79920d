// kiln-layering: the folders of kiln's source tree as a graph (an edge from a
// folder to each folder whose header one of its files includes) checked
// against the rules of docs/architecture.md, and that document's map kept
// equal to the graph.
//
//   kiln-layering SOURCE_DIR           check: exit 1 naming every forbidden
//                                      edge (with the include behind it), every
//                                      cycle, and a stale map
//   kiln-layering SOURCE_DIR --write   rewrite the map in docs/architecture.md
//
// Two libraries stay behind one folder each: libgit2 (<git2.h>, <git2/...>)
// in controller/git/, SQLite (<sqlite3.h>) in controller/store/sqlite.cc.
//
// Test code (tests/, *_test.cc, *_fuzz.cc, testutil.h, test_*.{h,cc},
// bench.cc) is not part of the graph: a test may reach into what it tests.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kBegin = "<!-- begin: the map, written by kiln-layering -->";
constexpr std::string_view kEnd = "<!-- end: the map -->";

// Where an edge comes from: the first include that makes it.
struct Include {
  std::string file;
  int line = 0;
  std::string header;
};

using Graph = std::map<std::string, std::map<std::string, Include>>;

// The tree: its folders' edges, and the includes of a library outside the
// place that owns it.
struct Tree {
  Graph graph;
  std::vector<std::string> misplaced;
};

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool IsTestCode(const fs::path& rel) {
  const std::string name = rel.filename().string();
  auto ends = [&](std::string_view suffix) {
    return name.size() >= suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return StartsWith(rel.generic_string(), "tests/") || ends("_test.cc") || ends("_fuzz.cc") ||
         name == "testutil.h" || StartsWith(name, "test_") || name == "bench.cc";
}

// The folder of a file or header path: its directory.
std::string Folder(const std::string& path) {
  return fs::path(path).parent_path().generic_string();
}

// Where a library's header may be included, or "" for any library else.
std::string LibraryOwner(const std::string& header) {
  if (header == "git2.h" || StartsWith(header, "git2/")) return "controller/git/";
  if (header == "sqlite3.h") return "controller/store/sqlite.cc";
  return "";
}

// What an #include line names, and whether in angle brackets (a system or
// library header); nullopt for any other line.
std::optional<std::pair<std::string, bool>> IncludeOf(std::string_view line) {
  size_t i = line.find_first_not_of(" \t");
  if (i == std::string_view::npos || line[i] != '#') return std::nullopt;
  i = line.find_first_not_of(" \t", i + 1);
  if (i == std::string_view::npos || line.substr(i, 7) != "include") return std::nullopt;
  i = line.find_first_not_of(" \t", i + 7);
  if (i == std::string_view::npos || (line[i] != '"' && line[i] != '<')) return std::nullopt;
  const bool angle = line[i] == '<';
  const size_t end = line.find(angle ? '>' : '"', i + 1);
  if (end == std::string_view::npos || end == i + 1) return std::nullopt;
  return std::make_pair(std::string(line.substr(i + 1, end - i - 1)), angle);
}

Tree Read(const fs::path& root) {
  Tree t;
  Graph& g = t.graph;
  for (const char* top : {"base", "sandbox", "runtime", "controller"}) {
    for (const auto& e : fs::recursive_directory_iterator(root / top)) {
      const fs::path& p = e.path();
      if (!e.is_regular_file() || (p.extension() != ".cc" && p.extension() != ".h")) continue;
      const fs::path rel = fs::relative(p, root);
      if (IsTestCode(rel)) continue;
      const std::string from = Folder(rel.generic_string());
      g[from];  // a folder that includes nothing is still on the map
      std::ifstream in(p);
      std::string text;
      for (int n = 1; std::getline(in, text); ++n) {
        const auto included = IncludeOf(text);
        if (!included) continue;
        const auto& [header, angle] = *included;
        if (angle) {
          const std::string owner = LibraryOwner(header);
          if (!owner.empty() && !StartsWith(rel.generic_string(), owner)) {
            t.misplaced.push_back(rel.generic_string() + ":" + std::to_string(n) + ": <" + header +
                                  "> belongs to " + owner + " alone");
          }
          continue;
        }
        const std::string to = Folder(header);
        if (to.empty() || to == from || !fs::exists(root / header)) continue;
        g[from].emplace(to, Include{rel.generic_string(), n, header});
      }
    }
  }
  return t;
}

bool Under(const std::string& folder, std::string_view top) {
  return folder == top || StartsWith(folder, std::string(top) + "/");
}

// Why the edge from -> to is forbidden, or "" when it is allowed.
std::string Forbidden(const std::string& from, const std::string& to) {
  if (from == "base") return "base uses nothing of kiln's";
  if (Under(from, "sandbox") && !Under(to, "sandbox") && to != "base") {
    return "the sandbox uses nothing but base";
  }
  if (Under(from, "runtime") && !Under(to, "runtime") && to != "base") {
    return "the runtime (inside the sandbox) uses nothing but base";
  }
  if (to == "controller/app" && from != "controller/app") {
    return "nothing uses app/: it is the top, the binaries";
  }
  return "";
}

// Every cycle between folders, each once, as "a -> b -> a".
std::vector<std::string> Cycles(const Graph& g) {
  std::vector<std::string> out;
  std::map<std::string, int> state;  // 0 new, 1 on the path, 2 done
  std::vector<std::string> path;
  std::function<void(const std::string&)> visit = [&](const std::string& f) {
    state[f] = 1;
    path.push_back(f);
    auto it = g.find(f);
    if (it != g.end()) {
      for (const auto& [to, why] : it->second) {
        if (state[to] == 1) {
          std::string cycle;
          for (auto p = std::find(path.begin(), path.end(), to); p != path.end(); ++p) {
            cycle += *p + " -> ";
          }
          out.push_back(cycle + to);
        } else if (state[to] == 0) {
          visit(to);
        }
      }
    }
    path.pop_back();
    state[f] = 2;
  };
  for (const auto& [f, edges] : g) {
    if (state[f] == 0) visit(f);
  }
  return out;
}

std::string Map(const Graph& g) {
  std::ostringstream out;
  out << kBegin << "\n\n| folder | uses |\n|---|---|\n";
  for (const auto& [from, edges] : g) {
    out << "| `" << from << "/` | ";
    if (edges.empty()) out << "nothing";
    bool first = true;
    for (const auto& [to, why] : edges) {
      out << (first ? "" : ", ") << "`" << to << "/`";
      first = false;
    }
    out << " |\n";
  }
  out << "\n" << kEnd;
  return out.str();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3 || (argc == 3 && std::string(argv[2]) != "--write")) {
    std::cerr << "usage: kiln-layering SOURCE_DIR [--write]\n";
    return 2;
  }
  const fs::path root = argv[1];
  const fs::path doc = root / "docs/architecture.md";
  const Tree tree = Read(root);
  const Graph& g = tree.graph;

  std::ifstream in(doc);
  std::stringstream text;
  text << in.rdbuf();
  std::string content = text.str();
  size_t begin = content.find(kBegin), end = content.find(kEnd);
  if (!in || begin == std::string::npos || end == std::string::npos || end < begin) {
    std::cerr << doc.string() << ": no map (the lines " << kBegin << " and " << kEnd << ")\n";
    return 1;
  }
  const std::string map = Map(g);
  const bool stale = content.compare(begin, end + kEnd.size() - begin, map) != 0;
  if (argc == 3) {
    content.replace(begin, end + kEnd.size() - begin, map);
    std::ofstream(doc) << content;
    std::cout << "wrote the map in " << doc.string() << "\n";
    return 0;
  }

  int problems = 0;
  for (const auto& [from, edges] : g) {
    for (const auto& [to, why] : edges) {
      std::string rule = Forbidden(from, to);
      if (rule.empty()) continue;
      std::cerr << why.file << ":" << why.line << ": " << from << "/ -> " << to << "/ (#include \""
                << why.header << "\") is forbidden: " << rule << "\n";
      ++problems;
    }
  }
  for (const std::string& m : tree.misplaced) {
    std::cerr << m << "\n";
    ++problems;
  }
  for (const std::string& cycle : Cycles(g)) {
    std::cerr << "a cycle between folders: " << cycle << "\n";
    ++problems;
  }
  if (stale) {
    std::cerr << doc.string() << ": the map is not the tree's; run kiln-layering " << root.string()
              << " --write and commit the result. The tree's map:\n"
              << map << "\n";
    ++problems;
  }
  if (problems == 0) std::cout << "layering: " << g.size() << " folders, no forbidden edge\n";
  return problems == 0 ? 0 : 1;
}
