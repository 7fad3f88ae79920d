// A model.request's body in the log: whole ("body"), or, when the previous
// model.request of the log holds most of it, as the change from that one
// ("body_delta"). Each request carries the whole conversation so far, so
// whole bodies make a log grow with the square of its turns; deltas keep it
// in proportion (docs/session-log.md).
//
//   "body_delta": {"base": SEQ, "head": H, "tail": T, "text": TEXT}
//
// is the body of the model.request at seq SEQ (which must be the log's
// previous model.request), its first H bytes, then TEXT, then its last T
// bytes. The writer writes it; a reader gives every reader of the log the
// whole body back (ReadEntries, which counts the ones it cannot).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace kiln::sessionlog {

// The last model.request's body, as recorded, and its seq; seq 0: none, or
// one that cannot be a base.
struct RequestBody {
  uint64_t seq = 0;
  std::string body;
};

// body as a body_delta on base, or null when writing it whole is as good
// (no base, or less than 1 KiB of it kept). body and base.body must be
// valid UTF-8; the delta's text starts and ends on character boundaries.
nlohmann::json BodyDelta(const RequestBody& base, std::string_view body);

// The body that the body_delta of the model.request at seq describes,
// given the log's previous model.request. The error names seq and what does
// not hold (another base, bounds, member types).
Result<std::string> ResolveBody(const RequestBody& base, uint64_t seq, const nlohmann::json& delta);

// For a reader of a log, record by record in order: a model.request's
// payload with its body_delta replaced by the body it describes, and base
// moved on to it. A model.request with neither (or a null payload), or one
// whose delta does not resolve (the error), leaves no base for the next.
Status ResolveRequest(RequestBody* base, uint64_t seq, nlohmann::json* payload);

}  // namespace kiln::sessionlog
