// The comparison of a replay's session log with the original's: the
// runtime's records in order (model requests and responses, tool calls and
// results), then the run's result (the submitted result and the final diff)
// or a command run's output. Each pair is compared field by field, after
// normalisation; the first field that differs is the pair's divergence.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "controller/replay/normalise.h"
#include "controller/sessionlog/entries.h"

namespace kiln::replay {

struct Divergence {
  uint64_t seq = 0;         // the original's record; for an extra one, the last compared
  int64_t replay_seq = -1;  // the replay's record; -1 when the replay has none
  std::string type;         // record type
  std::string field;        // what differs ("output", "exit_status", "body", ...; "record")
  std::string expected;     // the original's value, normalised
  std::string found;        // the replay's
  std::string diff;         // unified diff of the two
};

struct Comparison {
  std::vector<Divergence> divergences;       // in the original's order
  std::map<std::string, uint64_t> compared;  // record pairs compared, by type
  std::vector<uint64_t> matched;             // per normaliser rule: values it changed
  std::vector<uint64_t> hid;  // per rule: differences it hid (raw differed, normalised equal)
};

Comparison Compare(const sessionlog::Entries& original, const sessionlog::Entries& replay,
                   const Normaliser& normaliser);

}  // namespace kiln::replay
