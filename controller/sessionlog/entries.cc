#include "controller/sessionlog/entries.h"

#include <fcntl.h>

#include "base/fd.h"
#include "controller/sessionlog/line_reader.h"
#include "controller/sessionlog/record.h"

namespace kiln::sessionlog {

Result<Entries> ReadEntries(const std::string& path, const std::string& blob_dir, bool lenient) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Error::Sys("open(" + Quote(path) + ")", errno);
  const std::string blobs = BlobDirFor(path, blob_dir);
  LineReader reader(fd.get(), kMaxLineBytes);
  LineReader::Line line;
  Entries out;
  uint64_t line_no = 0;
  for (;;) {
    KILN_ASSIGN_OR_RETURN(bool more, reader.Next(&line));
    if (!more) break;
    ++line_no;
    Result<ParsedRecord> rec = line.too_long ? Result<ParsedRecord>(Error::Invalid("line too long"))
                                             : ParseRecord(line.bytes.substr(0, line.length));
    if (!rec.ok()) {
      ++out.damaged;
      continue;
    }
    Entry e;
    e.seq = rec->seq;
    e.line = line_no;
    e.ts = std::string(rec->ts);
    e.type = std::string(rec->type);
    if (rec->signed_record) e.key_id = std::string(rec->sig_key_id);
    if (rec->blob) {
      std::string name = Hex(rec->blob->sha256);
      auto where = [&] {
        return "seq " + std::to_string(e.seq) + " (" + e.type + "): blob " + name;
      };
      Result<std::string> content = ReadFile(blobs + "/" + name);
      if (content.ok()) e.payload = nlohmann::json::parse(*content, nullptr, false);
      if (!content.ok() || e.payload.is_discarded()) {
        if (!lenient) {
          return content.ok() ? Error::Invalid(where() + " is not JSON")
                              : content.error().Wrap(where());
        }
        e.payload = nullptr;
        ++out.unreadable_blobs;
      }
    } else {
      e.payload = nlohmann::json::parse(rec->payload, nullptr, false);
    }
    out.records.push_back(std::move(e));
  }
  return out;
}

}  // namespace kiln::sessionlog
