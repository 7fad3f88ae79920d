#include "controller/config/yaml_fields.h"

#include "base/strings.h"

namespace kiln::yaml {

Result<YAML::Node> Load(std::string_view text, const std::string& file, int first_line) {
  try {
    return YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return Error::Invalid(file + ":" + std::to_string(e.mark.line + first_line) + ": " + e.msg);
  }
}

nlohmann::json ToJson(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json o = nlohmann::json::object();
      for (const auto& kv : n) o[kv.first.as<std::string>()] = ToJson(kv.second);
      return o;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json a = nlohmann::json::array();
      for (const auto& v : n) a.push_back(ToJson(v));
      return a;
    }
    case YAML::NodeType::Scalar: {
      const std::string& s = n.Scalar();
      if (n.Tag() == "!") return s;  // quoted: always a string
      if (s == "true" || s == "false") return s == "true";
      if (s == "null" || s == "~") return nullptr;
      try {
        size_t used = 0;
        long long v = std::stoll(s, &used);
        if (used == s.size()) return v;
        double d = std::stod(s, &used);
        if (used == s.size()) return d;
      } catch (const std::exception&) {
      }
      return s;
    }
    default:
      return nullptr;
  }
}

Fields::Fields(YAML::Node node, std::string file, std::string prefix, int line_offset)
    : node_(std::move(node)),
      file_(std::move(file)),
      prefix_(std::move(prefix)),
      line_offset_(line_offset) {}

std::string Fields::Path(const std::string& key) const {
  if (key.empty()) return prefix_;
  return prefix_.empty() ? key : prefix_ + "." + key;
}

std::string Fields::Where(const std::string& key) const {
  YAML::Mark mark = node_.Mark();
  if (!key.empty() && node_.IsMap()) {
    for (const auto& kv : node_) {
      if (kv.first.Scalar() == key) mark = kv.first.Mark();
    }
  }
  if (mark.is_null()) return file_;
  return file_ + ":" + std::to_string(mark.line + line_offset_);
}

Error Fields::Fail(const std::string& key, std::string_view message) const {
  std::string where = Where(key);
  std::string path = Path(key);
  if (path.empty()) return Error::Invalid(where + ": " + std::string(message));
  return Error::Invalid(where + ": " + Quote(path) + " " + std::string(message));
}

bool Fields::Has(const std::string& key) const { return node_.IsMap() && node_[key].IsDefined(); }

std::vector<std::string> Fields::Keys() const {
  std::vector<std::string> keys;
  if (node_.IsMap()) {
    for (const auto& kv : node_) keys.push_back(kv.first.Scalar());
  }
  return keys;
}

Result<std::optional<YAML::Node>> Fields::Scalar(const std::string& key) {
  used_.insert(key);
  if (!Has(key)) return std::optional<YAML::Node>();
  YAML::Node v = node_[key];
  if (v.IsNull()) return std::optional<YAML::Node>();
  if (!v.IsScalar()) return Fail(key, "must be a single value");
  return std::optional<YAML::Node>(v);
}

Result<std::optional<std::string>> Fields::String(const std::string& key) {
  KILN_ASSIGN_OR_RETURN(auto v, Scalar(key));
  if (!v) return std::optional<std::string>();
  return std::optional<std::string>(v->Scalar());
}

Result<std::optional<uint64_t>> Fields::Uint(const std::string& key) {
  KILN_ASSIGN_OR_RETURN(auto v, String(key));
  if (!v) return std::optional<uint64_t>();
  auto n = ParseUint(*v, Path(key));
  if (!n) return Fail(key, "must be a non-negative integer, not " + Quote(*v));
  return std::optional<uint64_t>(*n);
}

Result<std::optional<bool>> Fields::Bool(const std::string& key) {
  KILN_ASSIGN_OR_RETURN(auto v, String(key));
  if (!v) return std::optional<bool>();
  if (*v == "true") return std::optional<bool>(true);
  if (*v == "false") return std::optional<bool>(false);
  return Fail(key, "must be true or false, not " + Quote(*v));
}

Result<std::optional<double>> Fields::Number(const std::string& key) {
  KILN_ASSIGN_OR_RETURN(auto v, String(key));
  if (!v) return std::optional<double>();
  try {
    size_t used = 0;
    double d = std::stod(*v, &used);
    if (used == v->size() && d >= 0) return std::optional<double>(d);
  } catch (const std::exception&) {
  }
  return Fail(key, "must be a non-negative number, not " + Quote(*v));
}

Result<std::optional<uint64_t>> Fields::Size(const std::string& key) {
  KILN_ASSIGN_OR_RETURN(auto v, String(key));
  if (!v) return std::optional<uint64_t>();
  auto n = ParseSize(*v, Path(key));
  if (!n) return Fail(key, "must be a size such as 512M or 4G, not " + Quote(*v));
  return std::optional<uint64_t>(*n);
}

Result<std::optional<uint64_t>> Fields::Duration(const std::string& key) {
  KILN_ASSIGN_OR_RETURN(auto v, String(key));
  if (!v) return std::optional<uint64_t>();
  auto n = ParseDurationMs(*v, Path(key));
  if (!n) return Fail(key, "must be a duration such as 250ms, 30s, 5m, 1h or 7d, not " + Quote(*v));
  return std::optional<uint64_t>(*n);
}

Result<std::optional<std::vector<std::string>>> Fields::Strings(const std::string& key) {
  used_.insert(key);
  if (!Has(key) || node_[key].IsNull()) return std::optional<std::vector<std::string>>();
  YAML::Node v = node_[key];
  if (!v.IsSequence()) return Fail(key, "must be a list");
  std::vector<std::string> out;
  for (const auto& item : v) {
    if (!item.IsScalar()) return Fail(key, "must be a list of strings");
    out.push_back(item.Scalar());
  }
  return std::optional<std::vector<std::string>>(std::move(out));
}

Result<std::optional<Fields>> Fields::Map(const std::string& key) {
  used_.insert(key);
  if (!Has(key) || node_[key].IsNull()) return std::optional<Fields>();
  YAML::Node v = node_[key];
  if (!v.IsMap()) return Fail(key, "must be a mapping");
  return std::optional<Fields>(Fields(v, file_, Path(key), line_offset_));
}

Result<std::optional<std::vector<Fields>>> Fields::List(const std::string& key) {
  used_.insert(key);
  if (!Has(key) || node_[key].IsNull()) return std::optional<std::vector<Fields>>();
  YAML::Node v = node_[key];
  if (!v.IsSequence()) return Fail(key, "must be a list");
  std::vector<Fields> out;
  for (size_t i = 0; i < v.size(); ++i) {
    std::string item = Path(key) + "[" + std::to_string(i) + "]";
    if (!v[i].IsMap()) {
      return Fields(v[i], file_, item, line_offset_).Fail("", "must be a mapping");
    }
    out.emplace_back(v[i], file_, item, line_offset_);
  }
  return std::optional<std::vector<Fields>>(std::move(out));
}

Result<std::optional<nlohmann::json>> Fields::Json(const std::string& key) {
  used_.insert(key);
  if (!Has(key) || node_[key].IsNull()) return std::optional<nlohmann::json>();
  return std::optional<nlohmann::json>(ToJson(node_[key]));
}

Status Fields::Finish() const {
  if (!node_.IsDefined() || node_.IsNull()) return Ok();
  if (!node_.IsMap()) return Fail("", "must be a mapping");
  std::set<std::string> seen;
  for (const auto& kv : node_) {
    const std::string& key = kv.first.Scalar();
    if (used_.count(key) == 0) return Fail(key, "is not a known field");
    if (!seen.insert(key).second) {
      // yaml-cpp keeps the first; a later one would be silently ignored.
      std::string where = file_ + ":" + std::to_string(kv.first.Mark().line + line_offset_);
      return Error::Invalid(where + ": " + Quote(Path(key)) + " is given twice");
    }
  }
  return Ok();
}

}  // namespace kiln::yaml
