// kiln::Error and kiln::Result<T>: the error-or-value type every layer returns.
//
// An Error carries the operation that failed, the quoted path or field it
// failed on, and the reason, as one human-readable message; context is added
// on the way up with Wrap(). Exceptions from third-party libraries are caught
// at the layer boundary and turned into an Error.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace kiln {

class [[nodiscard]] Error {
 public:
  enum class Code {
    kInvalidArgument,  // the caller's input is malformed
    kNotFound,         // a named thing does not exist
    kIO,               // a system call or I/O operation failed
    kCorruption,       // stored data is inconsistent
    kUnsupported,      // the host lacks a needed feature
    kPermission,       // not allowed
    kTimeout,
    kInternal,
  };

  Error(Code code, std::string message, int sys_errno = 0)
      : code_(code), message_(std::move(message)), errno_(sys_errno) {}

  static Error Invalid(std::string message) { return {Code::kInvalidArgument, std::move(message)}; }
  static Error NotFound(std::string message) { return {Code::kNotFound, std::move(message)}; }
  static Error Unsupported(std::string message) { return {Code::kUnsupported, std::move(message)}; }
  static Error Internal(std::string message) { return {Code::kInternal, std::move(message)}; }

  // A failed system call: "<what>: <strerror(err)>", e.g.
  // Sys("mkdir('/sys/fs/cgroup/pids/kiln-42', 0700)", EACCES).
  static Error Sys(std::string_view what, int err);

  // Prefixes context: Wrap("creating cgroup") -> "creating cgroup: <message>".
  Error Wrap(std::string_view context) const;

  Code code() const { return code_; }
  int sys_errno() const { return errno_; }
  const std::string& message() const { return message_; }

 private:
  Code code_;
  std::string message_;
  int errno_;
};

// Quotes a path or value for an error message: 'value'.
std::string Quote(std::string_view s);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const {
    assert(!ok());
    return std::get<1>(v_);
  }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : err_(std::move(error)), ok_(false) {}  // NOLINT

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const {
    assert(!ok_);
    return err_;
  }

 private:
  Error err_{Error::Code::kInternal, ""};
  bool ok_ = true;
};

using Status = Result<void>;

inline Status Ok() { return {}; }

}  // namespace kiln

#define KILN_CONCAT_INNER(a, b) a##b
#define KILN_CONCAT(a, b) KILN_CONCAT_INNER(a, b)

// Returns the error of a Result expression from the enclosing function.
#define KILN_TRY(expr)                                           \
  do {                                                           \
    auto&& kiln_try_result_ = (expr);                            \
    if (!kiln_try_result_.ok()) return kiln_try_result_.error(); \
  } while (0)

// Declares lhs from a Result expression, or returns its error.
#define KILN_ASSIGN_OR_RETURN(lhs, expr) \
  KILN_ASSIGN_OR_RETURN_IMPL(KILN_CONCAT(kiln_result_, __LINE__), lhs, expr)
#define KILN_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.error();               \
  lhs = std::move(tmp).value()
