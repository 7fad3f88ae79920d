#include "runtime/tools/json_schema.h"

#include <set>

namespace kiln::json_schema {
namespace {

using nlohmann::json;

const std::set<std::string>& KnownKeywords() {
  static const std::set<std::string> k = {
      "type",     "properties",  "required",  "additionalProperties",
      "enum",     "const",       "items",     "minItems",
      "maxItems", "minLength",   "maxLength", "minimum",
      "maximum",  "description", "title",     "default",
      "$schema",  "examples"};
  return k;
}

const std::set<std::string>& TypeNames() {
  static const std::set<std::string> k = {"object",  "array",   "string", "number",
                                          "integer", "boolean", "null"};
  return k;
}

std::string TypeOf(const json& v) {
  switch (v.type()) {
    case json::value_t::object:
      return "object";
    case json::value_t::array:
      return "array";
    case json::value_t::string:
      return "string";
    case json::value_t::boolean:
      return "boolean";
    case json::value_t::null:
      return "null";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "integer";
    default:
      return "number";
  }
}

bool HasType(const json& v, const std::string& type) {
  std::string actual = TypeOf(v);
  if (actual == type) return true;
  if (type == "number" && actual == "integer") return true;
  // 3.0 is an integer in JSON Schema's data model.
  if (type == "integer" && v.is_number_float()) {
    double d = v.get<double>();
    return d == static_cast<double>(static_cast<long long>(d));
  }
  return false;
}

size_t CodePoints(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xc0) != 0x80;
  return n;
}

std::string Child(const std::string& ptr, const std::string& key) {
  std::string escaped;
  for (char c : key) {
    if (c == '~') {
      escaped += "~0";
    } else if (c == '/') {
      escaped += "~1";
    } else {
      escaped += c;
    }
  }
  return ptr + "/" + escaped;
}

std::string Where(const std::string& ptr) { return ptr.empty() ? "(root)" : ptr; }

Status Check(const json& s, const std::string& ptr) {
  if (s.is_boolean()) return Ok();
  if (!s.is_object()) return Error::Invalid("schema at " + Where(ptr) + " is not an object");
  for (const auto& [key, value] : s.items()) {
    if (!KnownKeywords().count(key)) {
      return Error::Invalid("schema keyword " + Quote(key) + " at " + Where(ptr) +
                            " is not supported (docs/runtime.md lists the subset)");
    }
    std::string at = Child(ptr, key);
    if (key == "type") {
      json names = value.is_array() ? value : json::array({value});
      for (const auto& n : names) {
        if (!n.is_string() || !TypeNames().count(n.get<std::string>())) {
          return Error::Invalid("schema " + at + ": unknown type " + n.dump());
        }
      }
    } else if (key == "properties") {
      if (!value.is_object()) return Error::Invalid("schema " + at + " must be an object");
      for (const auto& [name, sub] : value.items()) KILN_TRY(Check(sub, Child(at, name)));
    } else if (key == "required") {
      if (!value.is_array()) return Error::Invalid("schema " + at + " must be an array");
      for (const auto& n : value) {
        if (!n.is_string()) return Error::Invalid("schema " + at + " must list strings");
      }
    } else if (key == "additionalProperties" || key == "items") {
      KILN_TRY(Check(value, at));
    } else if (key == "enum") {
      if (!value.is_array()) return Error::Invalid("schema " + at + " must be an array");
    } else if (key == "minItems" || key == "maxItems" || key == "minLength" || key == "maxLength") {
      if (!value.is_number_unsigned() &&
          !(value.is_number_integer() && value.get<long long>() >= 0)) {
        return Error::Invalid("schema " + at + " must be a non-negative integer");
      }
    } else if (key == "minimum" || key == "maximum") {
      if (!value.is_number()) return Error::Invalid("schema " + at + " must be a number");
    }
  }
  return Ok();
}

void Walk(const json& s, const json& v, const std::string& ptr, std::vector<std::string>& out) {
  if (s.is_boolean()) {
    if (!s.get<bool>()) out.push_back(Where(ptr) + ": no value is allowed here");
    return;
  }
  if (!s.is_object()) return;
  if (auto t = s.find("type"); t != s.end()) {
    json names = t->is_array() ? *t : json::array({*t});
    bool any = false;
    std::string expected;
    for (const auto& n : names) {
      if (!n.is_string()) continue;
      any |= HasType(v, n.get<std::string>());
      expected += (expected.empty() ? "" : " or ") + n.get<std::string>();
    }
    if (!any) {
      out.push_back(Where(ptr) + ": expected " + expected + ", got " + TypeOf(v));
      return;  // the other keywords would only repeat the same mistake
    }
  }
  if (auto e = s.find("enum"); e != s.end() && e->is_array()) {
    bool found = false;
    for (const auto& option : *e) found |= option == v;
    if (!found) out.push_back(Where(ptr) + ": " + v.dump() + " is not one of " + e->dump());
  }
  if (auto c = s.find("const"); c != s.end() && *c != v) {
    out.push_back(Where(ptr) + ": must be " + c->dump());
  }
  if (v.is_string()) {
    size_t n = CodePoints(v.get<std::string>());
    if (auto m = s.find("minLength"); m != s.end() && m->is_number() && n < m->get<size_t>()) {
      out.push_back(Where(ptr) + ": shorter than minLength " + m->dump() + " (" +
                    std::to_string(n) + " characters)");
    }
    if (auto m = s.find("maxLength"); m != s.end() && m->is_number() && n > m->get<size_t>()) {
      out.push_back(Where(ptr) + ": longer than maxLength " + m->dump() + " (" + std::to_string(n) +
                    " characters)");
    }
  }
  if (v.is_number()) {
    double d = v.get<double>();
    if (auto m = s.find("minimum"); m != s.end() && m->is_number() && d < m->get<double>()) {
      out.push_back(Where(ptr) + ": " + v.dump() + " is less than minimum " + m->dump());
    }
    if (auto m = s.find("maximum"); m != s.end() && m->is_number() && d > m->get<double>()) {
      out.push_back(Where(ptr) + ": " + v.dump() + " is greater than maximum " + m->dump());
    }
  }
  if (v.is_array()) {
    if (auto m = s.find("minItems");
        m != s.end() && m->is_number() && v.size() < m->get<size_t>()) {
      out.push_back(Where(ptr) + ": fewer than minItems " + m->dump() + " items");
    }
    if (auto m = s.find("maxItems");
        m != s.end() && m->is_number() && v.size() > m->get<size_t>()) {
      out.push_back(Where(ptr) + ": more than maxItems " + m->dump() + " items");
    }
    if (auto items = s.find("items"); items != s.end()) {
      for (size_t i = 0; i < v.size(); ++i) Walk(*items, v[i], ptr + "/" + std::to_string(i), out);
    }
  }
  if (v.is_object()) {
    const json* props = nullptr;
    if (auto p = s.find("properties"); p != s.end() && p->is_object()) props = &*p;
    if (auto r = s.find("required"); r != s.end() && r->is_array()) {
      for (const auto& name : *r) {
        if (name.is_string() && !v.contains(name.get<std::string>())) {
          out.push_back(Where(ptr) + ": missing required property " +
                        Quote(name.get<std::string>()));
        }
      }
    }
    auto extra = s.find("additionalProperties");
    for (const auto& [key, value] : v.items()) {
      if (props && props->contains(key)) {
        Walk((*props)[key], value, Child(ptr, key), out);
      } else if (extra != s.end()) {
        if (extra->is_boolean() && !extra->get<bool>()) {
          out.push_back(Where(ptr) + ": property " + Quote(key) + " is not allowed");
        } else {
          Walk(*extra, value, Child(ptr, key), out);
        }
      }
    }
  }
}

}  // namespace

Status CheckSchema(const nlohmann::json& schema) { return Check(schema, ""); }

std::vector<std::string> Validate(const nlohmann::json& schema, const nlohmann::json& value) {
  std::vector<std::string> out;
  Walk(schema, value, "", out);
  return out;
}

}  // namespace kiln::json_schema
