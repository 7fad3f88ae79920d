// A log's records as data, for what reads a run back (kiln replay, kiln
// audit). It parses; it does not verify: callers run Verify() first and
// decide what to do with a log that fails.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "controller/sessionlog/request_body.h"

namespace kiln::sessionlog {

struct Entry {
  uint64_t seq = 0;
  uint64_t line = 0;  // 1-based line in the file
  std::string ts;
  std::string type;
  nlohmann::json payload;  // read from its blob when the record has one
  std::string key_id;      // of the signature; empty for an unsigned record
};

struct Entries {
  std::vector<Entry> records;      // the lines that are records, in file order
  uint64_t damaged = 0;            // lines that are not
  uint64_t unreadable_blobs = 0;   // lenient reads: records whose payload stays null
  uint64_t unresolved_bodies = 0;  // lenient reads: requests that keep a body_delta
};

// Reads every record of the log at path, blobs from blob_dir ("": "blobs"
// beside the log). A model.request's body recorded as a delta comes back
// whole, in "body" (request_body.h). A blob that is missing, unreadable or
// not JSON is an error naming the record's seq and type and the blob; when
// lenient, the record's payload is null instead, and counted. A body_delta
// that does not resolve is an error naming the seq; when lenient, the
// record keeps its body_delta and no body, and is counted.
Result<Entries> ReadEntries(const std::string& path, const std::string& blob_dir = "",
                            bool lenient = false);

// Where a log being written was read up to: the byte after the last whole
// line, and that line's number.
struct Cursor {
  uint64_t offset = 0;
  uint64_t line = 0;
  RequestBody request;  // the last model.request's body: the next one's base
};

// The records of the whole lines after *cursor (leniently, as above), and
// the cursor moved past them: a line still being written is left for the
// next call.
Result<Entries> ReadNewEntries(const std::string& path, Cursor* cursor,
                               const std::string& blob_dir = "");

}  // namespace kiln::sessionlog
