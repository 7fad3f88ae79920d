#include "base/result.h"

#include <cstring>

namespace kiln {

Error Error::Sys(std::string_view what, int err) {
  Code code = Code::kIO;
  if (err == ENOENT) code = Code::kNotFound;
  if (err == EPERM || err == EACCES) code = Code::kPermission;
  if (err == ENOSYS || err == EOPNOTSUPP) code = Code::kUnsupported;
  if (err == EINVAL) code = Code::kInvalidArgument;
  std::string msg(what);
  msg += ": ";
  msg += std::strerror(err);
  return Error(code, std::move(msg), err);
}

Error Error::Wrap(std::string_view context) const {
  std::string msg(context);
  msg += ": ";
  msg += message_;
  return Error(code_, std::move(msg), errno_);
}

std::string Quote(std::string_view s) {
  std::string out = "'";
  out += s;
  out += "'";
  return out;
}

}  // namespace kiln
