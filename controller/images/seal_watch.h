// Layer seals kept checked between runs (docs/images.md, "The seal at each
// use"). A store image's layers are checked at every use: their seal, a stat
// of every entry, must be what it was when the layer was stored. For a
// daemon that is the same walk, 50-70 ms for a toolchain image, at every run.
// A SealWatch walks a layer once, then keeps it sealed for as long as
// fanotify reports no change to any of its entries: writes, attribute and
// owner changes, entries created, removed or renamed, also through a hard
// link from outside the layer. A change, or events lost (the queue
// overflowed), and the next use walks again.
#pragma once

#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>

#include "base/fd.h"
#include "base/result.h"

namespace kiln::images {

class SealWatch {
 public:
  // Watches the filesystem that holds root (the image store's directory).
  // An error when this kernel or filesystem cannot (no fanotify with file
  // ids, no CAP_SYS_ADMIN): the caller then checks by walking.
  static Result<std::unique_ptr<SealWatch>> Start(const std::string& root);
  ~SealWatch();
  SealWatch(const SealWatch&) = delete;
  SealWatch& operator=(const SealWatch&) = delete;

  // Whether layer directory dir still has the seal `seal`: a walk the first
  // time and after a change seen under dir, else nothing but a look at the
  // events. The walk's error as Seal's. A layer with an entry that has no
  // file id (a mount inside it) is walked at every use.
  Result<bool> Holds(const std::string& dir, const std::string& seal);

  // How many layers were walked, and how often a change or a lost event
  // dropped what was known (metrics and tests).
  uint64_t walks() const;
  uint64_t drops() const;

 private:
  explicit SealWatch(UniqueFd fanotify, UniqueFd wake);
  void Drain();  // reads the pending events; mu_ held
  void Watch();  // the thread: drains as events come

  mutable std::mutex mu_;
  UniqueFd fanotify_;
  UniqueFd wake_;  // an eventfd that ends the thread
  // The file id (fsid and handle) of every entry of a layer walked: which
  // layer it is in.
  std::unordered_map<std::string, std::string> layer_of_;  // guarded by mu_
  std::set<std::string> sealed_;                           // guarded by mu_
  uint64_t walks_ = 0, drops_ = 0;                         // guarded by mu_
  std::thread thread_;
};

}  // namespace kiln::images
