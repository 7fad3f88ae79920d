// The queue's benchmark driver (tests/bench/queue.sh): prints one JSON
// object.
//
//   kiln_queue_bench LOCATION HOSTS RUNS [LATENCY_RUNS] [RATE] [POLL_MS]
//
// LOCATION is a SQLite file or a postgres:// URL (an empty store); HOSTS
// threads stand for that many `kiln serve`, each with a Store (a connection)
// of its own, claiming and completing one run at a time as a host's loop
// does, with runs that do nothing between their start and their end.
//
// burn_down: RUNS runs queued first (enqueue_per_s), then worked by the hosts
// until none is left (runs_per_s).
// latency: LATENCY_RUNS runs queued at RATE a second while the hosts work;
// a host whose claim finds nothing waits POLL_MS before it asks again. From
// each Enqueue's return to the Claim that returned the run: p50, p99, max.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "controller/store/store.h"

namespace {

using Clock = std::chrono::steady_clock;
using kiln::store::Store;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "kiln_queue_bench: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T Must(kiln::Result<T> r, const char* what) {
  if (!r.ok()) Die(std::string(what) + ": " + r.error().message());
  return std::move(*r);
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

kiln::store::RunRequest Request(int i) {
  kiln::store::RunRequest r;
  r.role = "bench";
  r.repo = "https://git.example/repo-" + std::to_string(i % 10) + ".git";
  r.commit = "main";
  r.task = "nothing";
  r.requested_by = "bench";
  return r;
}

// The hosts: each claims, then ends what it claimed, until stop is set and
// the queue is empty. on_claim sees each run's id at its claim.
template <typename OnClaim>
std::vector<std::thread> Hosts(const std::string& location, int hosts, int poll_ms,
                               std::atomic<bool>& stop, std::atomic<int>& done, OnClaim on_claim) {
  std::vector<std::thread> threads;
  for (int h = 0; h < hosts; ++h) {
    auto store = std::shared_ptr<Store>(Must(kiln::store::Open(location), "opening the store"));
    threads.emplace_back([store, h, poll_ms, &stop, &done, on_claim] {
      const std::string owner = "host-" + std::to_string(h) + "/1:1";
      const kiln::store::ClaimLimits limits{100'000, 100'000};
      for (;;) {
        auto claimed = Must(store->Claim(limits, owner, NowMs(), 60'000), "claiming");
        if (!claimed) {
          if (stop.load()) return;
          std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
          continue;
        }
        on_claim(claimed->id);
        kiln::store::Finish end;
        end.status = kiln::store::Status::kSucceeded;
        end.outcome = "submitted";
        auto st = store->Complete(claimed->id, end, NowMs(), claimed->epoch);
        if (!st.ok()) Die("completing: " + st.error().message());
        ++done;
      }
    });
  }
  return threads;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    Die("usage: kiln_queue_bench LOCATION HOSTS RUNS [LATENCY_RUNS] [RATE] [POLL_MS]");
  }
  const std::string location = argv[1];
  const int hosts = std::stoi(argv[2]);
  const int runs = std::stoi(argv[3]);
  const int latency_runs = argc > 4 ? std::stoi(argv[4]) : 2'000;
  const int rate = argc > 5 ? std::stoi(argv[5]) : 200;
  const int poll_ms = argc > 6 ? std::stoi(argv[6]) : 10;
  auto producer = Must(kiln::store::Open(location), "opening the store");

  // Burn-down: everything queued first, then worked.
  auto t0 = Clock::now();
  for (int i = 0; i < runs; ++i) Must(producer->Enqueue(Request(i), NowMs()), "enqueueing");
  const double enqueue_s = Seconds(Clock::now() - t0);
  std::atomic<bool> stop{true};
  std::atomic<int> done{0};
  t0 = Clock::now();
  for (auto& t : Hosts(location, hosts, poll_ms, stop, done, [](const std::string&) {})) t.join();
  const double burn_s = Seconds(Clock::now() - t0);
  if (done.load() != runs) Die("worked " + std::to_string(done.load()) + " of the runs");

  // Latency: queued at a steady rate while the hosts poll.
  std::mutex mu;
  std::map<std::string, Clock::time_point> queued;  // guarded by mu
  std::vector<double> waits_ms;                     // guarded by mu
  stop = false;
  done = 0;
  auto workers = Hosts(location, hosts, poll_ms, stop, done, [&](const std::string& id) {
    const auto now = Clock::now();
    std::lock_guard lock(mu);
    auto it = queued.find(id);
    if (it != queued.end()) waits_ms.push_back(Seconds(now - it->second) * 1e3);
  });
  const auto every = std::chrono::duration<double>(1.0 / rate);
  const auto start = Clock::now();
  for (int i = 0; i < latency_runs; ++i) {
    std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(every * i));
    // Held across Enqueue, so that a claim cannot look for the run first.
    std::lock_guard lock(mu);
    auto run = Must(producer->Enqueue(Request(i), NowMs()), "enqueueing");
    queued[run.id] = Clock::now();
  }
  stop = true;
  for (auto& t : workers) t.join();
  std::sort(waits_ms.begin(), waits_ms.end());
  auto at = [&](double q) {
    if (waits_ms.empty()) return 0.0;
    return waits_ms[std::min(waits_ms.size() - 1, static_cast<size_t>(q * waits_ms.size()))];
  };

  nlohmann::json out = {
      {"backend", location.starts_with("postgres") ? "postgres" : "sqlite"},
      {"hosts", hosts},
      {"burn_down",
       {{"runs", runs},
        {"enqueue_per_s", runs / enqueue_s},
        {"seconds", burn_s},
        {"runs_per_s", runs / burn_s}}},
      {"latency",
       {{"runs", static_cast<int>(waits_ms.size())},
        {"rate_per_s", rate},
        {"poll_ms", poll_ms},
        {"p50_ms", at(0.50)},
        {"p99_ms", at(0.99)},
        {"max_ms", waits_ms.empty() ? 0.0 : waits_ms.back()}}},
  };
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
