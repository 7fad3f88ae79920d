#include "controller/sessionlog/line_reader.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace kiln::sessionlog {
namespace {
constexpr size_t kChunk = 1 << 20;
}

LineReader::LineReader(std::string_view data, size_t max_line)
    : max_line_(max_line), buf_(data.data()), end_(data.size()), eof_(true) {}

LineReader::LineReader(int fd, size_t max_line) : fd_(fd), max_line_(max_line) {
  owned_.resize(std::min(kChunk, max_line + 2));
  buf_ = owned_.data();
}

Result<bool> LineReader::Fill() {
  if (eof_) return false;
  if (begin_ > 0) {
    std::memmove(owned_.data(), owned_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    scanned_ -= begin_;
    begin_ = 0;
  }
  if (end_ == owned_.size()) {
    owned_.resize(std::min(owned_.size() * 2, std::max(owned_.size(), max_line_ + 2)));
    if (end_ == owned_.size()) owned_.resize(end_ + kChunk);  // skipping a too-long line
  }
  buf_ = owned_.data();
  for (;;) {
    ssize_t n = ::read(fd_, owned_.data() + end_, owned_.size() - end_);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::Sys("read", errno);
    if (n == 0) {
      eof_ = true;
      return false;
    }
    end_ += static_cast<size_t>(n);
    return true;
  }
}

Result<bool> LineReader::Next(Line* line) {
  for (;;) {
    const char* nl =
        scanned_ < end_
            ? static_cast<const char*>(std::memchr(buf_ + scanned_, '\n', end_ - scanned_))
            : nullptr;
    if (nl != nullptr) {
      auto len = static_cast<size_t>(nl - (buf_ + begin_));
      line->offset = offset_;
      line->length = len;
      line->newline = true;
      line->too_long = len > max_line_;
      line->bytes = line->too_long ? std::string_view() : std::string_view(buf_ + begin_, len + 1);
      begin_ += len + 1;
      scanned_ = begin_;
      offset_ += len + 1;
      return true;
    }
    scanned_ = end_;
    if (end_ - begin_ > max_line_) {
      // Too long: count the rest of the line without keeping it.
      uint64_t len = end_ - begin_;
      line->offset = offset_;
      for (;;) {
        begin_ = end_ = scanned_ = 0;
        if (fd_ < 0) break;
        KILN_ASSIGN_OR_RETURN(bool more, Fill());
        if (!more) break;
        const char* p = static_cast<const char*>(std::memchr(buf_, '\n', end_));
        if (p != nullptr) {
          len += static_cast<size_t>(p - buf_);
          begin_ = scanned_ = static_cast<size_t>(p - buf_) + 1;
          line->length = len;
          line->newline = true;
          line->too_long = true;
          line->bytes = {};
          offset_ += len + 1;
          return true;
        }
        len += end_;
      }
      line->length = len;
      line->newline = false;
      line->too_long = true;
      line->bytes = {};
      offset_ += len;
      return true;
    }
    if (eof_ || fd_ < 0) {
      if (begin_ == end_) return false;
      line->offset = offset_;
      line->length = end_ - begin_;
      line->newline = false;
      line->too_long = false;
      line->bytes = std::string_view(buf_ + begin_, end_ - begin_);
      offset_ += end_ - begin_;
      begin_ = scanned_ = end_;
      return true;
    }
    KILN_ASSIGN_OR_RETURN(bool more, Fill());
    (void)more;
  }
}

// ---------------------------------------------------------------------------
// HashedLineReader

namespace {

constexpr size_t kChunkBytes = 1 << 20;
constexpr size_t kChunkItems = 16384;  // bounds a chunk of many short lines
constexpr size_t kQueueDepth = 4;

// The record hash: SHA-256 over the line and its newline (a torn last line
// is hashed as if it had one).
Digest LineHash(Sha256& sha, std::string_view bytes, bool newline) {
  if (newline) return sha.Hash(bytes);
  sha.Init();
  sha.Update(bytes);
  sha.Update("\n");
  return sha.Final();
}

}  // namespace

HashedLineReader::HashedLineReader(int fd, size_t max_line) : reader_(fd, max_line) {
  thread_ = std::thread([this] { Produce(); });
}

HashedLineReader::~HashedLineReader() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void HashedLineReader::Produce() {
  Sha256 sha;
  auto take = [&]() -> std::unique_ptr<Chunk> {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return stop_ || full_.size() < kQueueDepth; });
    if (stop_) return nullptr;
    std::unique_ptr<Chunk> c;
    if (!free_.empty()) {
      c = std::move(free_.back());
      free_.pop_back();
    } else {
      c = std::make_unique<Chunk>();
    }
    c->data.clear();
    c->items.clear();
    c->status = Ok();
    c->last = false;
    return c;
  };
  auto give = [&](std::unique_ptr<Chunk> c) {
    {
      std::lock_guard lock(mu_);
      full_.push_back(std::move(c));
    }
    cv_.notify_all();
  };

  uint64_t chunks = 0;
  std::unique_ptr<Chunk> c = take();
  while (c) {
    LineReader::Line line;
    Result<bool> more = reader_.Next(&line);
    if (!more.ok() || !*more) {
      if (!more.ok()) c->status = more.error();
      c->last = true;
      give(std::move(c));
      return;
    }
    c->hashed = chunks % 2 == 0;
    Item it{line.offset, line.length, c->data.size(), line.newline, line.too_long, {}};
    if (!line.too_long) {
      c->data.insert(c->data.end(), line.bytes.begin(), line.bytes.end());
      if (c->hashed) it.hash = LineHash(sha, line.bytes, line.newline);
    }
    c->items.push_back(it);
    if (c->data.size() >= kChunkBytes || c->items.size() >= kChunkItems) {
      give(std::move(c));
      ++chunks;
      c = take();
    }
  }
}

Result<bool> HashedLineReader::Next(Line* out) {
  for (;;) {
    if (current_ && next_item_ < current_->items.size()) {
      const Item& it = current_->items[next_item_++];
      out->line.offset = it.offset;
      out->line.length = it.length;
      out->line.newline = it.newline;
      out->line.too_long = it.too_long;
      out->line.bytes =
          it.too_long ? std::string_view()
                      : std::string_view(current_->data.data() + it.start,
                                         static_cast<size_t>(it.length) + (it.newline ? 1 : 0));
      if (current_->hashed || it.too_long) {
        out->hash = it.hash;
      } else {
        out->hash = LineHash(sha_, out->line.bytes, it.newline);
      }
      return true;
    }
    if (current_ && current_->last) {
      if (!current_->status.ok()) return current_->status.error();
      return false;
    }
    std::unique_lock lock(mu_);
    if (current_) free_.push_back(std::move(current_));
    cv_.notify_all();
    cv_.wait(lock, [&] { return !full_.empty(); });
    current_ = std::move(full_.front());
    full_.pop_front();
    next_item_ = 0;
    lock.unlock();
    cv_.notify_all();
  }
}

}  // namespace kiln::sessionlog
