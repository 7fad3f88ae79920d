// Reading typed fields out of YAML with errors that name the file, the line
// and the dotted field path: the config file and skill front matter both use
// it, and both refuse unknown fields (a misspelt limit must not silently
// mean its default).
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace kiln::yaml {

// Parses text; a syntax error becomes "FILE:LINE: <yaml-cpp message>".
Result<YAML::Node> Load(std::string_view text, const std::string& file, int first_line = 1);

// A mapping being read. Every Get marks its key as known; Finish() fails on
// the first key that no Get asked for.
class Fields {
 public:
  // prefix: the dotted path of this mapping ("" at the top), for messages.
  // line_offset: added to yaml-cpp's 0-based lines (front matter starts below
  // the file's first line).
  Fields(YAML::Node node, std::string file, std::string prefix, int line_offset = 1);

  bool Has(const std::string& key) const;
  Result<std::optional<std::string>> String(const std::string& key);
  Result<std::optional<uint64_t>> Uint(const std::string& key);
  Result<std::optional<bool>> Bool(const std::string& key);
  Result<std::optional<double>> Number(const std::string& key);
  Result<std::optional<uint64_t>> Size(const std::string& key);      // "4G", "512M", 1024
  Result<std::optional<uint64_t>> Duration(const std::string& key);  // "30s", "5m", "250ms" -> ms
  Result<std::optional<std::vector<std::string>>> Strings(const std::string& key);
  // A nested mapping (nullopt when absent).
  Result<std::optional<Fields>> Map(const std::string& key);
  // A list of mappings (nullopt when absent); item i reads as "key[i]".
  Result<std::optional<std::vector<Fields>>> List(const std::string& key);
  // Any value, converted to JSON (for JSON Schemas and budget objects).
  Result<std::optional<nlohmann::json>> Json(const std::string& key);
  // The keys of this mapping, in file order (for maps of named entries).
  std::vector<std::string> Keys() const;

  Status Finish() const;

  // "FILE:LINE: 'PATH' MESSAGE" for key (or for the mapping when key is empty).
  Error Fail(const std::string& key, std::string_view message) const;
  std::string Path(const std::string& key) const;
  // "FILE:LINE" of key (of the mapping when key is empty).
  std::string Where(const std::string& key = "") const;

 private:
  Result<std::optional<YAML::Node>> Scalar(const std::string& key);

  YAML::Node node_;
  std::string file_;
  std::string prefix_;
  int line_offset_;
  std::set<std::string> used_;
};

nlohmann::json ToJson(const YAML::Node& node);

}  // namespace kiln::yaml
