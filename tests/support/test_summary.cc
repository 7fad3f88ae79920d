// kiln-test-summary DIR [--out FILE]: what the suites did on this host, from
// the outcomes test_main.cc recorded in DIR/*.jsonl: how many attacks of the
// escape suite ran, were stopped, got through and were skipped, and every
// skipped test of any suite with the reason its probe gave. CTest runs it
// after the other tests (fixture cleanup); scripts/test.sh prints its output.
//
// A test whose last record is "started" never finished (a crash, a timeout)
// and counts as failed. Exits 1 when no outcome was recorded at all, 2 on a
// malformed record.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace {

namespace fs = std::filesystem;

struct Outcome {
  std::string binary, test, outcome, reason;
};

// One line, so that a multi-line failure message stays one entry.
std::string OneLine(std::string text) {
  for (char& c : text) {
    if (c == '\n') c = ' ';
  }
  if (text.size() > 400) text = text.substr(0, 397) + "...";
  return text;
}

struct Tally {
  int total = 0, passed = 0, failed = 0, skipped = 0;
  std::vector<std::string> notes;  // one per test not passed
  void Add(const Outcome& o, const std::string& label) {
    ++total;
    if (o.outcome == "passed") {
      ++passed;
      return;
    }
    (o.outcome == "skipped" ? skipped : failed) += 1;
    if (o.outcome == "started") {
      notes.push_back("  failed   " + label + ": it never finished (crashed, or timed out)");
      return;
    }
    notes.push_back("  " + o.outcome + "  " + label + ": " + OneLine(o.reason));
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 && !(argc == 4 && std::string(argv[2]) == "--out")) {
    std::fprintf(stderr, "usage: kiln-test-summary DIR [--out FILE]\n");
    return 2;
  }
  const fs::path dir = argv[1];
  // Keyed by binary and test, so that a test run twice counts once (its last outcome).
  std::map<std::pair<std::string, std::string>, Outcome> outcomes;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().extension() != ".jsonl") continue;
    std::ifstream in(entry.path());
    int n = 0;
    for (std::string line; std::getline(in, line);) {
      ++n;
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object() || !j.contains("binary") || !j.contains("test") ||
          !j.contains("outcome") || !j["outcome"].is_string()) {
        std::fprintf(stderr, "kiln-test-summary: %s:%d: not a test outcome record\n",
                     entry.path().c_str(), n);
        return 2;
      }
      Outcome o{j["binary"].get<std::string>(), j["test"].get<std::string>(),
                j["outcome"].get<std::string>(), j.value("reason", "")};
      outcomes[{o.binary, o.test}] = o;
    }
  }
  if (outcomes.empty()) {
    std::fprintf(stderr, "kiln-test-summary: no test recorded its outcome in %s%s\n", dir.c_str(),
                 ec ? (": " + ec.message()).c_str() : "");
    return 1;
  }
  Tally escape, other;
  for (const auto& [key, o] : outcomes) {
    if (o.binary == "escape_test") {
      escape.Add(o, o.test);
    } else {
      other.Add(o, o.binary + " " + o.test);
    }
  }
  std::ostringstream out;
  if (escape.total > 0) {
    out << "escape suite on this host: " << escape.total << " attacks; " << escape.passed
        << " stopped, " << escape.failed << " failed (got through, or the host changed), "
        << escape.skipped << " skipped\n";
    for (const auto& n : escape.notes) out << n << "\n";
  }
  if (other.total > 0) {
    out << "other suites: " << other.total << " tests; " << other.passed << " passed, "
        << other.failed << " failed, " << other.skipped << " skipped\n";
    for (const auto& n : other.notes) out << n << "\n";
  }
  std::string text = out.str();
  std::fwrite(text.data(), 1, text.size(), stdout);
  if (argc == 4) {
    std::ofstream(argv[3]) << text;
  }
  return 0;
}
