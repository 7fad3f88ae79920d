// Schedules through the binaries: `kiln schedules run` under the
// single-flight rule, `kiln schedules list`, two `kiln serve` on one store
// catching up on missed ticks with one run between them, and a schedule that
// names no role stopping `kiln serve` with its line, /metrics counting fires
// and skips.
#include <sqlite3.h>

#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "base/clock.h"
#include "tests/integration/controller_fixture.h"
#include "tests/support/net.h"

namespace kiln::testing {
namespace {

using nlohmann::json;

// One value from the test's store, read behind kiln's back.
std::string Query(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  std::string out;
  if (stmt && sqlite3_step(stmt) == SQLITE_ROW) {
    const unsigned char* text = sqlite3_column_text(stmt, 0);
    out = text ? reinterpret_cast<const char*>(text) : "";
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

class Schedules : public Controller {
 protected:
  void SetUp() override {
    Controller::SetUp();
    if (IsSkipped()) return;
    Setup("default: {tool_calls: [{name: submit, input: {summary: done}}]}\n",
          "schedules:\n"
          "  - name: hourly-edit\n"
          "    cron: '@hourly'\n"
          "    time_zone: Europe/Berlin\n"
          "    run: {role: edit, repo: " +
              repo_ + ", commit: main, task: tidy up}\n");
  }

  json List() {
    Outcome o = Kiln({"schedules", "list", "--config", config_, "--json"});
    EXPECT_EQ(o.status, 0) << o.err;
    json j = json::parse(o.out, nullptr, false);
    EXPECT_TRUE(j.is_array() && j.size() == 1) << o.out;
    return j.is_array() && !j.empty() ? j[0] : json();
  }

  std::string Db() const { return root_ + "/kiln.db"; }

  // The configuration with entry as its first schedule.
  std::string WithSchedule(const std::string& entry) {
    std::string text = ReadAll(config_);
    size_t at = text.find("  - name: hourly-edit\n");
    EXPECT_NE(at, std::string::npos);
    return text.insert(at, entry);
  }
};

TEST_F(Schedules, RunFiresOnceWhileItsRunIsActiveAndListShowsIt) {
  json before = List();
  EXPECT_EQ(before["name"], "hourly-edit");
  EXPECT_EQ(before["fires"], 0);
  EXPECT_FALSE(before.contains("last"));
  EXPECT_TRUE(Contains(before["next"].get<std::string>(), ":00 CE")) << before.dump();

  Outcome fire = Kiln({"schedules", "run", "--config", config_, "hourly-edit"});
  ASSERT_EQ(fire.status, 0) << fire.err;
  std::string id = fire.out.substr(0, fire.out.find('\n'));
  ASSERT_TRUE(id.starts_with("r")) << fire.out;

  // Its run is queued: a second fire is skipped, and says why.
  Outcome again = Kiln({"schedules", "run", "--config", config_, "hourly-edit"});
  EXPECT_EQ(again.status, 1);
  EXPECT_TRUE(Contains(again.err,
                       "schedule hourly-edit skipped: its previous run " + id + " is still queued"))
      << again.err;
  json listed = List();
  EXPECT_EQ(listed["fires"], 1);
  EXPECT_EQ(listed["skips"], 1);
  EXPECT_EQ(listed["last"]["outcome"], "skipped");

  // The daemon runs it; then the schedule fires again.
  Outcome serve = Kiln({"serve", "--config", config_, "--until-idle"});
  ASSERT_EQ(serve.status, 0) << serve.err;
  json run = json::parse(Kiln({"runs", "show", "--config", config_, id, "--json"}).out);
  EXPECT_EQ(run["status"], "succeeded") << run.dump();
  EXPECT_EQ(run["requested_by"], "schedule:hourly-edit");
  Outcome third = Kiln({"schedules", "run", "--config", config_, "hourly-edit", "--json"});
  ASSERT_EQ(third.status, 0) << third.err;
  json fired = json::parse(third.out);
  EXPECT_EQ(fired["outcome"], "fired");
  EXPECT_EQ(fired["kind"], "manual");
  EXPECT_NE(fired["run_id"], id);

  Outcome unknown = Kiln({"schedules", "run", "--config", config_, "weekly"});
  EXPECT_EQ(unknown.status, 2);
  EXPECT_TRUE(
      Contains(unknown.err, "no schedule named 'weekly' in " + config_ + " (it has hourly-edit)"))
      << unknown.err;
}

TEST_F(Schedules, TwoDaemonsCatchUpOnMissedTicksWithOneRun) {
  // A first daemon sees the schedule (it counts from there) and stops.
  ASSERT_EQ(Kiln({"serve", "--config", config_, "--until-idle"}).status, 0);
  ASSERT_EQ(Query(Db(), "SELECT COUNT(*) FROM schedules"), "1");
  // Then no kiln ran for three and a half hours.
  int64_t now = NowMs();
  Query(Db(),
        "UPDATE schedules SET last_tick_ms = " + std::to_string(now - 12'600'000) + " RETURNING 1");
  // Two daemons start at once on the store.
  Outcome a, b;
  std::thread ta([&] { a = Kiln({"serve", "--config", config_, "--until-idle"}); });
  std::thread tb([&] { b = Kiln({"serve", "--config", config_, "--until-idle"}); });
  ta.join();
  tb.join();
  ASSERT_EQ(a.status, 0) << a.err;
  ASSERT_EQ(b.status, 0) << b.err;
  // Three ticks were missed (four when the half hour crossed one more): one
  // fire, one run, at the latest tick.
  EXPECT_EQ(Query(Db(), "SELECT COUNT(*) FROM schedule_fires"), "1");
  EXPECT_EQ(Query(Db(), "SELECT outcome FROM schedule_fires"), "fired");
  EXPECT_EQ(Query(Db(), "SELECT COUNT(*) FROM runs WHERE requested_by = 'schedule:hourly-edit'"),
            "1");
  int64_t tick = std::stoll(Query(Db(), "SELECT tick_ms FROM schedule_fires"));
  EXPECT_EQ(tick % 3'600'000, 0);
  EXPECT_LE(tick, now);
  EXPECT_GT(tick, now - 3'600'000);
  json listed = List();
  EXPECT_EQ(listed["last"]["run_status"], "succeeded");
  EXPECT_EQ(listed["fires"], 1);
  // Both exits were clean, and the one that lost the claim said nothing.
  EXPECT_FALSE(Contains(a.err + b.err, "error")) << a.err << b.err;
}

TEST_F(Schedules, MetricsCountFiresAndSkipsFromTheStore) {
  const uint16_t port = FreePort();
  std::string cfg = ReadAll(config_);
  cfg.replace(cfg.find("metrics_listen: \"\""), 18,
              "metrics_listen: 127.0.0.1:" + std::to_string(port));
  WriteAll(config_, cfg);
  ASSERT_EQ(Kiln({"schedules", "run", "--config", config_, "hourly-edit"}).status, 0);
  ASSERT_EQ(Kiln({"schedules", "run", "--config", config_, "hourly-edit"}).status, 1);
  Daemon d(config_, root_ + "/serve.log");
  std::string metrics;
  for (int i = 0; i < 100 && !Contains(metrics, "kiln_schedule_fires_total"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    metrics = kiln::testing::Run({"/usr/bin/curl", "-sS", "--noproxy", "*",
                                  "http://127.0.0.1:" + std::to_string(port) + "/metrics"})
                  .out;
  }
  EXPECT_TRUE(Contains(metrics, "kiln_schedule_fires_total{schedule=\"hourly-edit\"} 1\n"))
      << metrics << ReadAll(root_ + "/serve.log");
  EXPECT_TRUE(Contains(metrics, "kiln_schedule_skips_total{schedule=\"hourly-edit\"} 1\n"))
      << metrics;
  EXPECT_TRUE(Contains(metrics, "# TYPE kiln_schedule_lateness_seconds gauge")) << metrics;
}

TEST_F(Schedules, AScheduleNamingNoRoleStopsServeWithItsLine) {
  std::string bad = root_ + "/bad.yaml";
  WriteAll(bad, WithSchedule("  - name: nightly\n"
                             "    cron: '0 3 * * *'\n"
                             "    run: {role: nosuchrole, repo: /srv/r.git, task: t}\n"));
  Outcome o = Kiln({"serve", "--config", bad, "--until-idle"});
  EXPECT_EQ(o.status, 2);
  EXPECT_TRUE(Contains(o.err, bad + ":")) << o.err;
  EXPECT_TRUE(Contains(o.err, "schedule 'nightly'")) << o.err;
  EXPECT_TRUE(Contains(o.err, "nosuchrole")) << o.err;
  EXPECT_EQ(Query(Db(), "SELECT COUNT(*) FROM runs"), "0");

  WriteAll(bad, WithSchedule("  - name: nightly\n"
                             "    cron: '0 3 * * FRY'\n"
                             "    run: {role: edit, repo: /srv/r.git, task: t}\n"));
  o = Kiln({"schedules", "list", "--config", bad});
  EXPECT_EQ(o.status, 2);
  EXPECT_TRUE(Contains(o.err,
                       "'schedules[0].cron' the day-of-week field: 'FRY' is not a number "
                       "or a name (SUN-SAT)"))
      << o.err;
}

}  // namespace
}  // namespace kiln::testing
