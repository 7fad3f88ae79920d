#include "controller/sessionlog/entries.h"

#include <fcntl.h>
#include <unistd.h>

#include "base/fd.h"
#include "controller/sessionlog/line_reader.h"
#include "controller/sessionlog/record.h"

namespace kiln::sessionlog {

namespace {

// The records from cursor on; with whole_lines, a last line without its
// newline is left unread.
Result<Entries> Read(const std::string& path, const std::string& blob_dir, bool lenient,
                     Cursor* cursor, bool whole_lines) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Error::Sys("open(" + Quote(path) + ")", errno);
  if (cursor->offset > 0 && ::lseek(fd.get(), static_cast<off_t>(cursor->offset), SEEK_SET) < 0) {
    return Error::Sys("lseek(" + Quote(path) + ")", errno);
  }
  const std::string blobs = BlobDirFor(path, blob_dir);
  LineReader reader(fd.get(), kMaxLineBytes);
  LineReader::Line line;
  Entries out;
  uint64_t& line_no = cursor->line;
  const uint64_t base = cursor->offset;
  for (;;) {
    KILN_ASSIGN_OR_RETURN(bool more, reader.Next(&line));
    if (!more || (whole_lines && !line.newline)) break;
    ++line_no;
    cursor->offset = base + line.offset + line.length + (line.newline ? 1 : 0);
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
    if (e.type == kModelRequest) {
      // A body recorded as a delta comes back whole; a lenient read keeps
      // the delta of one that does not resolve.
      if (Status st = ResolveRequest(&cursor->request, e.seq, &e.payload); !st.ok()) {
        if (!lenient) return st.error();
        ++out.unresolved_bodies;
      }
    }
    out.records.push_back(std::move(e));
  }
  return out;
}

}  // namespace

Result<Entries> ReadEntries(const std::string& path, const std::string& blob_dir, bool lenient) {
  Cursor from;
  return Read(path, blob_dir, lenient, &from, /*whole_lines=*/false);
}

Result<Entries> ReadNewEntries(const std::string& path, Cursor* cursor,
                               const std::string& blob_dir) {
  return Read(path, blob_dir, /*lenient=*/true, cursor, /*whole_lines=*/true);
}

}  // namespace kiln::sessionlog
