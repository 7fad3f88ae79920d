// The seal check's benchmark driver (tests/bench/images.sh): how long the
// image store takes to hand a run an image, with every layer walked (as a
// `kiln run` process, and `kiln serve` where it cannot watch) against the
// layers kept checked by a SealWatch (`kiln serve`). Prints one JSON object.
//
//   kiln_seal_bench STATE_DIR IMAGE [RUNS]
//
// walk_ms: the median of RUNS resolves, each walking the layers (the anchor).
// watch_first_ms: the watch's first resolve (a walk, and each entry's id).
// watch_ms: the median of the RUNS resolves after it.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "controller/images/seal_watch.h"
#include "controller/images/store.h"

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "kiln_seal_bench: %s\n", what.c_str());
  std::exit(1);
}

// Milliseconds of one resolve of image, through seals when given.
double Resolve(const kiln::images::Store& store, const std::string& image,
               kiln::images::SealWatch* seals) {
  auto start = Clock::now();
  auto img = store.Resolve(image, seals);
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  if (!img) Die("resolving " + image + ": " + img.error().message());
  return ms;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) Die("usage: kiln_seal_bench STATE_DIR IMAGE [RUNS]");
  const std::string image = argv[2];
  const int runs = argc > 3 ? std::max(1, std::atoi(argv[3])) : 50;
  auto store = kiln::images::Store::Open(argv[1]);
  if (!store) Die(store.error().message());
  std::vector<double> walk, watched;
  for (int i = 0; i < runs; ++i) walk.push_back(Resolve(*store, image, nullptr));
  auto watch = kiln::images::SealWatch::Start(store->root());
  if (!watch) Die("watching the seals: " + watch.error().message());
  const double first = Resolve(*store, image, watch->get());
  for (int i = 0; i < runs; ++i) watched.push_back(Resolve(*store, image, watch->get()));
  auto img = store->Resolve(image);
  uint64_t entries = 0;
  for (const auto& l : img->manifest["layers"]) {
    auto record = store->LayerRecord(l.value("digest", ""));
    if (record) entries += record->value("entries", uint64_t{0});
  }
  std::printf("%s\n", nlohmann::json{{"image", image},
                                     {"entries", entries},
                                     {"runs", runs},
                                     {"walk_ms", Median(walk)},
                                     {"watch_first_ms", first},
                                     {"watch_ms", Median(watched)},
                                     {"walks_by_watch", (*watch)->walks()}}
                          .dump()
                          .c_str());
  return 0;
}
