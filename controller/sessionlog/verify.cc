#include "controller/sessionlog/verify.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "base/fd.h"
#include "controller/sessionlog/analysis.h"
#include "controller/sessionlog/line_reader.h"

namespace kiln::sessionlog {
namespace {

using verify_internal::Analysis;

std::optional<BlobInfo> HashBlobFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return std::nullopt;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  Sha256 sha;
  sha.Init();
  BlobInfo info;
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    sha.Update(std::string_view(buf.data(), static_cast<size_t>(n)));
    info.size += static_cast<uint64_t>(n);
  }
  info.sha256 = sha.Final();
  return info;
}

}  // namespace

std::string_view KindName(FindingKind kind) {
  switch (kind) {
    case FindingKind::kModified:
      return "modified";
    case FindingKind::kDeleted:
      return "deleted";
    case FindingKind::kInserted:
      return "inserted";
    case FindingKind::kReordered:
      return "reordered";
    case FindingKind::kTruncated:
      return "truncated";
    case FindingKind::kBadSignature:
      return "bad-signature";
    case FindingKind::kUnknownKey:
      return "unknown-key";
    case FindingKind::kBlobMissing:
      return "blob-missing";
    case FindingKind::kBlobAltered:
      return "blob-altered";
    case FindingKind::kMalformed:
      return "malformed";
  }
  return "unknown";
}

std::string FormatFinding(const Finding& f) {
  return "seq " + std::to_string(f.seq) + ": " + std::string(KindName(f.kind)) + ": " + f.message +
         " (line " + std::to_string(f.line) + ")";
}

VerifyReport VerifyBuffer(std::string_view data, const VerifyOptions& options,
                          const BlobLookup& blobs) {
  Analysis a(options, blobs);
  LineReader reader(data, options.max_line_bytes);
  LineReader::Line line;
  while (*reader.Next(&line)) a.AddLine(line, nullptr);
  return a.Finish();
}

Result<VerifyReport> Verify(const std::string& path, const VerifyOptions& options) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Error::Sys("open(" + Quote(path) + ")", errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Error::Sys("fstat(" + Quote(path) + ")", errno);
  if (S_ISDIR(st.st_mode)) {
    return Error::Invalid(Quote(path) + " is a directory, not a session log");
  }
  const std::string dir = BlobDirFor(path, options.blob_dir);
  BlobLookup lookup = [&dir](const std::string& hex) { return HashBlobFile(dir + "/" + hex); };
  Analysis a(options, lookup);
  HashedLineReader reader(fd.get(), options.max_line_bytes);
  HashedLineReader::Line line;
  for (;;) {
    KILN_ASSIGN_OR_RETURN(bool more, reader.Next(&line));
    if (!more) break;
    a.AddLine(line.line, &line.hash);
  }
  return a.Finish();
}

}  // namespace kiln::sessionlog
