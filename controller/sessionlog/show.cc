#include "controller/sessionlog/show.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "base/fd.h"
#include "base/terminal.h"
#include "controller/sessionlog/line_reader.h"
#include "controller/sessionlog/record.h"

namespace kiln::sessionlog {
namespace {

constexpr size_t kPreview = 160;

// A string field, or "" when absent or not a string.
std::string Str(const nlohmann::json& p, const char* key) {
  auto it = p.find(key);
  return it != p.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// An integer field as text, or "?" when absent.
std::string Int(const nlohmann::json& p, const char* key) {
  auto it = p.find(key);
  if (it == p.end() || !it->is_number_integer()) return "?";
  return std::to_string(it->get<int64_t>());
}

const nlohmann::json& Obj(const nlohmann::json& p, const char* key) {
  static const nlohmann::json kEmpty = nlohmann::json::object();
  auto it = p.find(key);
  return it != p.end() && it->is_object() ? *it : kEmpty;
}

// One line, at most max characters, control characters made visible.
std::string Preview(std::string_view s, size_t max = kPreview) {
  std::string out;
  size_t chars = 0;
  for (char c : s) {
    bool lead = (static_cast<unsigned char>(c) & 0xc0) != 0x80;
    if (lead && chars++ == max) {
      out += "...";
      break;
    }
    if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::string KeyValues(const nlohmann::json& o) {
  std::string out;
  for (const auto& [k, v] : o.items()) {
    if (!out.empty()) out += ' ';
    out += k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
  }
  return out;
}

std::string Bytes(const nlohmann::json& p, const char* key) {
  auto it = p.find(key);
  if (it == p.end() || !it->is_number_integer()) return "?";
  auto n = it->get<int64_t>();
  char buf[32];
  if (n >= 1 << 20) {
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(n) / (1 << 20));
  } else if (n >= 1 << 10) {
    std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(n) / (1 << 10));
  } else {
    std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(n));
  }
  return buf;
}

std::string Join(std::initializer_list<std::string> parts) {
  std::string out;
  for (const auto& p : parts) {
    if (p.empty()) continue;
    if (!out.empty()) out += " | ";
    out += p;
  }
  return out;
}

std::string Opt(const std::string& label, const std::string& value) {
  return value.empty() || value == "?" ? std::string() : label + value;
}

}  // namespace

bool TypeSelected(const std::vector<std::string>& types, std::string_view type) {
  if (types.empty()) return true;
  for (const auto& t : types) {
    if (type == t) return true;
    if (type.size() > t.size() && type.substr(0, t.size()) == t && type[t.size()] == '.') {
      return true;
    }
  }
  return false;
}

std::string Summarize(std::string_view type, const nlohmann::json& p) {
  if (!p.is_object()) return Preview(p.dump());
  if (type == kRunStart) {
    const auto& log = Obj(p, "log");
    const auto& image = Obj(p, "image");
    const auto& repo = Obj(p, "repository");
    const auto& skill = Obj(p, "skill");
    const auto& model = Obj(p, "model");
    return Join(
        {"run " + Str(log, "run_id"), Opt("role ", Str(p, "role")),
         Opt("image ", Str(image, "digest")),
         Opt("repo ",
             Str(repo, "url") +
                 (Str(repo, "commit").empty() ? "" : "@" + Str(repo, "commit").substr(0, 12))),
         Opt("skill ", Str(skill, "path")),
         Opt("model ", Str(model, "provider") + "/" + Str(model, "name")),
         Opt("budgets ", KeyValues(Obj(p, "budgets"))), Opt("limits ", KeyValues(Obj(p, "limits"))),
         Opt("kiln ", Str(log, "kiln_version"))});
  }
  if (type == kModelRequest) {
    // A body recorded as a delta (request_body.h): its size is what the
    // delta keeps of its base and what it adds.
    const auto& delta = Obj(p, "body_delta");
    std::string size = std::to_string(Str(p, "body").size()) + " B request";
    if (!delta.empty()) {
      auto bytes = [&](const char* key) {
        auto it = delta.find(key);
        return it != delta.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
      };
      uint64_t kept = bytes("head") + bytes("tail");
      size = std::to_string(kept + Str(delta, "text").size()) + " B request (" +
             std::to_string(Str(delta, "text").size()) + " B new on seq " + Int(delta, "base") +
             "'s)";
    }
    return Join({"turn " + Int(p, "turn"), Opt("model ", Str(p, "model")), Opt("", size)});
  }
  if (type == kModelResponse) {
    const auto& usage = Obj(p, "usage");
    return Join(
        {"turn " + Int(p, "turn"), Opt("status ", Int(p, "status")),
         Opt("id ", Str(p, "request_id")),
         "tokens " + Int(usage, "input_tokens") + " in / " + Int(usage, "output_tokens") + " out",
         Opt("", Int(p, "latency_ms") == "?" ? "" : Int(p, "latency_ms") + " ms"),
         Opt("retries ", Int(p, "retries")), Opt("stop ", Str(p, "stop_reason"))});
  }
  if (type == kToolCall) {
    auto input = p.find("input");
    std::string what;
    if (input != p.end() && input->is_object() && input->contains("command") &&
        (*input)["command"].is_string()) {
      what = (*input)["command"].get<std::string>();
    } else if (input != p.end()) {
      what = input->dump();
    }
    return Join({Str(p, "tool") + Opt(" ", Str(p, "call_id")), Preview(what)});
  }
  if (type == kToolResult) {
    auto exit = p.find("exit_status");
    std::string status = exit != p.end() && exit->is_number_integer()
                             ? "exit " + std::to_string(exit->get<int64_t>())
                             : "no exit status";
    std::string out = Str(p, "output");
    return Join({Str(p, "tool") + Opt(" ", Str(p, "call_id")), status,
                 Opt("", Int(p, "duration_ms") == "?" ? "" : Int(p, "duration_ms") + " ms"),
                 std::to_string(out.size()) + " B output", Preview(out, 80)});
  }
  if (type == kProxyRequest) {
    std::string decision = Str(p, "decision");
    for (char& c : decision) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return Join({decision + " " + Str(p, "method") + " " + Str(p, "host") + Str(p, "path"),
                 Opt("status ", Int(p, "status")), Opt("sent ", Bytes(p, "bytes_sent")),
                 Opt("received ", Bytes(p, "bytes_received")), Opt("why ", Str(p, "reason"))});
  }
  if (type == kSteer) return Join({Opt("from ", Str(p, "from")), Preview(Str(p, "message"))});
  if (type == kResult) {
    return Join(
        {Str(p, "outcome"), Preview(Str(p, "summary")), Opt("diff ", Bytes(p, "diff_bytes"))});
  }
  if (type == kCheckpoint) {
    return Join({"covers " + Int(p, "count") + " records", Opt("reason ", Str(p, "reason"))});
  }
  if (type == kRunEnd) {
    const auto& log = Obj(p, "log");
    return Join({"status " + Str(p, "status"), Opt("totals ", KeyValues(Obj(p, "totals"))),
                 Opt("error ", Preview(Str(p, "error"))),
                 Int(log, "records") + " records, " + Int(log, "blobs") + " blobs"});
  }
  if (type == kRecovery) {
    const auto& torn = Obj(p, "torn");
    return Join({"after seq " + Int(p, "after_seq"),
                 torn.empty()
                     ? std::string("no torn line")
                     : "torn line of " + Int(torn, "bytes") + " B at offset " + Int(torn, "offset"),
                 Str(p, "reason")});
  }
  return Preview(p.dump());
}

Result<ShowStats> Show(const std::string& path, const ShowOptions& options, std::ostream& out,
                       std::ostream& err) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Error::Sys("open(" + Quote(path) + ")", errno);
  const std::string blob_dir = BlobDirFor(path, options.blob_dir);
  LineReader reader(fd.get(), kMaxLineBytes);
  LineReader::Line line;
  ShowStats stats;
  uint64_t line_no = 0;
  for (;;) {
    KILN_ASSIGN_OR_RETURN(bool more, reader.Next(&line));
    if (!more) break;
    ++line_no;
    std::string_view text = line.bytes.substr(0, line.length);
    Result<ParsedRecord> rec =
        line.too_long ? Result<ParsedRecord>(Error::Invalid("line too long")) : ParseRecord(text);
    if (!rec.ok()) {
      ++stats.damaged;
      err << path << ":" << line_no << ": not a record (" << rec.error().message()
          << "); `kiln log verify` says what is wrong\n";
      continue;
    }
    if (rec->seq < options.since || !TypeSelected(options.types, rec->type)) continue;
    ++stats.shown;
    if (options.json) {
      // The record as stored, but for escapes a terminal would obey.
      out << ForTerminalJson(text) << '\n';
      continue;
    }
    nlohmann::json payload;
    std::string note;
    if (rec->blob) {
      std::string name = Hex(rec->blob->sha256);
      Result<std::string> content = ReadFile(blob_dir + "/" + name);
      if (content.ok()) {
        payload = nlohmann::json::parse(*content, nullptr, false);
        note = " [blob " + name.substr(0, 12) + "]";
      } else {
        note = " [blob " + name + " not readable]";
      }
    } else {
      payload = nlohmann::json::parse(rec->payload, nullptr, false);
    }
    char head[64];
    std::snprintf(head, sizeof head, "%6llu  %.12s  %-15.*s ",
                  static_cast<unsigned long long>(rec->seq), rec->ts.data() + 11,
                  static_cast<int>(rec->type.size()), rec->type.data());
    // Tool ids, stop reasons, commands and outputs are the model's and the
    // agent's: shown on one line, never obeyed by the terminal.
    out << head
        << (payload.is_discarded() ? std::string()
                                   : ForTerminalLine(Summarize(rec->type, payload)));
    if (rec->signed_record) out << " [signed " << rec->sig_key_id.substr(0, 12) << "]";
    out << note << '\n';
  }
  return stats;
}

}  // namespace kiln::sessionlog
