// A fresh directory under /tmp for one test, removed (without following
// symlinks) when it goes out of scope. Header-only, so that every suite's
// test helpers share it without linking anything. Mode 0755: sandboxed
// processes running as other uids may need to reach what tests put there.
#pragma once

#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <string>

namespace kiln::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/kiln-test-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    ::chmod(tmpl.c_str(), 0755);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

  // Writes rel (creating its directories) and reads it back.
  void Write(const std::string& rel, const std::string& data) const {
    std::filesystem::create_directories(std::filesystem::path(*this / rel).parent_path());
    std::ofstream(*this / rel, std::ios::binary) << data;
  }
  std::string Read(const std::string& rel) const {
    std::ifstream in(*this / rel, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  std::string path_;
};

// A whole file, and a file replaced by data (paths, not relative names).
inline std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void Spit(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

}  // namespace kiln::testing
