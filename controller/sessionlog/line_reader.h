// Splits a session log into lines without holding more than one line (up to a
// limit) in memory: longer lines are measured and skipped, not buffered.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

#include "base/digest.h"
#include "base/result.h"

namespace kiln::sessionlog {

class LineReader {
 public:
  struct Line {
    uint64_t offset = 0;     // of the first byte in the file
    uint64_t length = 0;     // without the newline
    std::string_view bytes;  // the line and its newline if any; empty if too_long
    bool newline = false;    // false only for a last line without "\n"
    bool too_long = false;   // longer than max_line; bytes not kept
  };

  // Reads from memory.
  LineReader(std::string_view data, size_t max_line);
  // Reads from fd (not owned).
  LineReader(int fd, size_t max_line);

  // The next line, valid until the next call; false at the end of input.
  // A read error is returned as an Error.
  Result<bool> Next(Line* line);

 private:
  Result<bool> Fill();  // reads more; false at EOF

  int fd_ = -1;
  size_t max_line_;
  std::vector<char> owned_;
  const char* buf_ = nullptr;
  size_t begin_ = 0, end_ = 0, scanned_ = 0;
  uint64_t offset_ = 0;  // file offset of buf_[begin_]
  bool eof_ = false;
};

// A LineReader over a file descriptor that also hashes each line (SHA-256 of
// the line plus "\n"). Reading and splitting run on a helper thread, which
// also hashes every other chunk; the caller's thread hashes the rest, so both
// threads do about the same work and I/O overlaps with whatever the caller
// does per line. Memory stays bounded: a few chunks of about 1 MiB, or one
// line up to max_line.
class HashedLineReader {
 public:
  struct Line {
    LineReader::Line line;
    Digest hash{};  // zero for a too-long line
  };

  HashedLineReader(int fd, size_t max_line);
  ~HashedLineReader();
  HashedLineReader(const HashedLineReader&) = delete;
  HashedLineReader& operator=(const HashedLineReader&) = delete;

  // As LineReader::Next; the line stays valid until the next call.
  Result<bool> Next(Line* out);

 private:
  struct Item {
    uint64_t offset, length;
    size_t start;  // in Chunk::data
    bool newline, too_long;
    Digest hash;
  };
  struct Chunk {
    std::vector<char> data;
    std::vector<Item> items;
    Status status;  // a read error, reported after the items
    bool last = false;
    bool hashed = false;  // the items' hashes are set (else the reader computes them)
  };

  void Produce();

  LineReader reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Chunk>> full_;
  std::vector<std::unique_ptr<Chunk>> free_;
  bool stop_ = false;
  std::unique_ptr<Chunk> current_;
  size_t next_item_ = 0;
  Sha256 sha_;  // for the chunks the helper thread leaves unhashed
  std::thread thread_;
};

}  // namespace kiln::sessionlog
