// Cron expressions: every field form, each malformed expression's message,
// and next-fire times across month ends, leap days and both daylight-saving
// changes, against a table worked out by hand (and checked with Python's
// zoneinfo).
#include "base/cron.h"

#include <time.h>

#include <string>

#include <gtest/gtest.h>

namespace kiln::cron {
namespace {

// "YYYY-MM-DDTHH:MM[:SS]Z" (UTC) to ms and back.
int64_t Ms(const std::string& iso) {
  struct tm tm = {};
  const char* end = strptime(iso.c_str(), "%Y-%m-%dT%H:%M", &tm);
  EXPECT_NE(end, nullptr) << iso;
  int seconds = 0;
  if (end && *end == ':') seconds = std::stoi(end + 1);
  return (static_cast<int64_t>(timegm(&tm)) + seconds) * 1000;
}

std::string Iso(int64_t ms) {
  time_t t = static_cast<time_t>(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%MZ", &tm);
  return buf;
}

struct Case {
  const char* expression;
  const char* zone;
  const char* after;
  std::vector<const char*> next;  // the following fire times, in order
};

class NextFire : public ::testing::TestWithParam<Case> {};

TEST_P(NextFire, MatchesTheTable) {
  const Case& c = GetParam();
  auto s = Schedule::Parse(c.expression, c.zone);
  ASSERT_TRUE(s.ok()) << s.error().message();
  int64_t t = Ms(c.after);
  for (const char* want : c.next) {
    t = s->Next(t);
    EXPECT_EQ(Iso(t), want) << c.expression << " in " << c.zone;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, NextFire,
    ::testing::Values(
        // Field forms.
        Case{"* * * * *", "UTC", "2026-12-06T10:00:30", {"2026-12-06T10:01Z", "2026-12-06T10:02Z"}},
        Case{"*/15 * * * *", "UTC", "2026-12-06T10:07", {"2026-12-06T10:15Z", "2026-12-06T10:30Z"}},
        Case{"5/20 * * * *",
             "UTC",
             "2026-12-06T10:07",
             {"2026-12-06T10:25Z", "2026-12-06T10:45Z", "2026-12-06T11:05Z"}},
        Case{"0 9-17/4 * * *",
             "UTC",
             "2026-12-06T10:00",
             {"2026-12-06T13:00Z", "2026-12-06T17:00Z", "2026-12-07T09:00Z"}},
        Case{"0,30 8,20 * * *",
             "UTC",
             "2026-12-06T08:15",
             {"2026-12-06T08:30Z", "2026-12-06T20:00Z", "2026-12-06T20:30Z", "2026-12-07T08:00Z"}},
        Case{"0 0 * jan,Jul *",
             "UTC",
             "2026-12-06T00:00",
             {"2027-01-01T00:00Z", "2027-01-02T00:00Z"}},
        Case{"0 12 * * mon-FRI",
             "UTC",
             "2026-12-04T13:00",  // a Friday afternoon
             {"2026-12-07T12:00Z", "2026-12-08T12:00Z"}},
        Case{"0 12 * * 7", "UTC", "2026-12-01T00:00", {"2026-12-06T12:00Z"}},  // 7 is Sunday
        Case{"0 12 * * sat,sun",
             "UTC",
             "2026-12-01T00:00",
             {"2026-12-05T12:00Z", "2026-12-06T12:00Z"}},
        Case{"@hourly", "UTC", "2026-12-06T10:59", {"2026-12-06T11:00Z"}},
        Case{"@daily", "UTC", "2026-12-06T10:00", {"2026-12-07T00:00Z"}},
        Case{"@weekly", "UTC", "2026-12-02T10:00", {"2026-12-06T00:00Z"}},  // Wednesday to Sunday
        Case{"@monthly", "UTC", "2026-12-06T10:00", {"2027-01-01T00:00Z"}},
        Case{"@yearly", "UTC", "2026-12-06T10:00", {"2027-01-01T00:00Z"}},
        // Both day fields restricted: either matches (the 1st, and Mondays).
        Case{"0 0 1 * MON",
             "UTC",
             "2026-12-02T00:00",
             {"2026-12-07T00:00Z", "2026-12-14T00:00Z", "2026-12-21T00:00Z", "2026-12-28T00:00Z",
              "2027-01-01T00:00Z"}},
        // A day field starting with '*' restricts nothing on its own: both
        // must match (odd days that are Mondays).
        Case{
            "0 0 */2 * MON", "UTC", "2026-12-01T00:00", {"2026-12-07T00:00Z", "2026-12-21T00:00Z"}},
        // Month ends.
        Case{"0 0 1 * *", "UTC", "2026-01-31T12:00", {"2026-02-01T00:00Z", "2026-03-01T00:00Z"}},
        Case{"0 0 31 * *",
             "UTC",
             "2026-01-31T00:00",
             {"2026-03-31T00:00Z", "2026-05-31T00:00Z", "2026-07-31T00:00Z", "2026-08-31T00:00Z"}},
        Case{"59 23 31 12 *", "UTC", "2026-12-31T23:59", {"2027-12-31T23:59Z"}},
        // 29 February: leap years only, and 2100 is not one.
        Case{"0 12 29 2 *", "UTC", "2025-03-01T00:00", {"2028-02-29T12:00Z", "2032-02-29T12:00Z"}},
        Case{"0 0 29 2 *", "UTC", "2096-03-01T00:00", {"2104-02-29T00:00Z"}},
        // Europe/Berlin springs forward on 2026-03-29 at 02:00 CET (01:00Z) to
        // 03:00 CEST. A fixed-time job in the gap runs as the clock jumps; a
        // wildcard job runs only at times that exist.
        Case{"30 2 * * *",
             "Europe/Berlin",
             "2026-03-28T23:00",
             {"2026-03-29T01:00Z", "2026-03-30T00:30Z"}},
        Case{"*/30 * * * *",
             "Europe/Berlin",
             "2026-03-29T00:40",
             {"2026-03-29T01:00Z", "2026-03-29T01:30Z"}},
        Case{"0 3 * * *", "Europe/Berlin", "2026-03-28T23:00", {"2026-03-29T01:00Z"}},
        // It falls back on 2026-10-25 at 03:00 CEST (01:00Z) to 02:00 CET: 02:30
        // happens at 00:30Z and at 01:30Z. A fixed-time job runs at the first
        // only, a wildcard job at both.
        Case{"30 2 * * *",
             "Europe/Berlin",
             "2026-10-24T23:00",
             {"2026-10-25T00:30Z", "2026-10-26T01:30Z"}},
        Case{"30 * * * *",
             "Europe/Berlin",
             "2026-10-25T00:00",
             {"2026-10-25T00:30Z", "2026-10-25T01:30Z", "2026-10-25T02:30Z"}},
        // Starting inside the repeated hour, on its second pass.
        Case{"45 2 * * *", "Europe/Berlin", "2026-10-25T01:10", {"2026-10-26T01:45Z"}},
        Case{"*/20 2 * * *",
             "Europe/Berlin",
             "2026-10-25T01:10",
             {"2026-10-25T01:20Z", "2026-10-25T01:40Z", "2026-10-26T01:00Z"}},
        // America/New_York: 02:00 EST to 03:00 EDT on 2026-03-08 (07:00Z),
        // 02:00 EDT back to 01:00 EST on 2026-11-01 (06:00Z).
        Case{"0 2 * * *",
             "America/New_York",
             "2026-03-08T06:00",
             {"2026-03-08T07:00Z", "2026-03-09T06:00Z"}},
        Case{"30 1 * * *",
             "America/New_York",
             "2026-11-01T04:00",
             {"2026-11-01T05:30Z", "2026-11-02T06:30Z"}},
        // Lord Howe Island moves its clocks by half an hour.
        Case{"15 2 * * *",
             "Australia/Lord_Howe",
             "2026-10-03T14:00",
             {"2026-10-03T15:30Z", "2026-10-04T15:15Z"}}));

TEST(Local, NamesTheZonesAbbreviation) {
  auto s = Schedule::Parse("30 2 * * *", "Europe/Berlin");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->Local(Ms("2026-03-29T01:00")), "2026-03-29 03:00 CEST");
  EXPECT_EQ(s->Local(Ms("2026-10-25T01:30")), "2026-10-25 02:30 CET");
}

struct Bad {
  const char* expression;
  const char* zone;
  const char* message;
};

class Invalid : public ::testing::TestWithParam<Bad> {};

TEST_P(Invalid, SaysWhatIsWrong) {
  const Bad& b = GetParam();
  auto s = Schedule::Parse(b.expression, b.zone);
  ASSERT_FALSE(s.ok()) << b.expression;
  EXPECT_EQ(s.error().message(), b.message);
}

INSTANTIATE_TEST_SUITE_P(
    Table, Invalid,
    ::testing::Values(
        Bad{"60 * * * *", "UTC", "the minute field: 60 is out of range 0-59"},
        Bad{"* 24 * * *", "UTC", "the hour field: 24 is out of range 0-23"},
        Bad{"* * 0 * *", "UTC", "the day-of-month field: 0 is out of range 1-31"},
        Bad{"* * 32 * *", "UTC", "the day-of-month field: 32 is out of range 1-31"},
        Bad{"* * * 13 *", "UTC", "the month field: 13 is out of range 1-12"},
        Bad{"* * * * 8", "UTC", "the day-of-week field: 8 is out of range 0-7"},
        Bad{"* * * FOO *", "UTC", "the month field: 'FOO' is not a number or a name (JAN-DEC)"},
        Bad{"* * * * SUNDAY", "UTC",
            "the day-of-week field: 'SUNDAY' is not a number or a name (SUN-SAT)"},
        Bad{"x * * * *", "UTC", "the minute field: 'x' is not a number"},
        Bad{"*/0 * * * *", "UTC",
            "the minute field: the step in '*/0' must be a number from 1 to 59"},
        Bad{"* */x * * *", "UTC",
            "the hour field: the step in '*/x' must be a number from 1 to 23"},
        Bad{"5-1 * * * *", "UTC", "the minute field: the range '5-1' goes backwards"},
        Bad{"0 0 * * SAT-SUN", "UTC", "the day-of-week field: the range 'SAT-SUN' goes backwards"},
        Bad{"1,,2 * * * *", "UTC", "the minute field: an empty item in the list '1,,2'"},
        Bad{"1- * * * *", "UTC", "the minute field: a value is missing"},
        Bad{"* * * *", "UTC",
            "'* * * *' has 4 field(s); a cron expression has 5 (minute hour day-of-month month "
            "day-of-week) or is a shorthand such as @daily"},
        Bad{"* * * * * *", "UTC",
            "'* * * * * *' has 6 field(s); a cron expression has 5 (minute hour day-of-month "
            "month day-of-week) or is a shorthand such as @daily"},
        Bad{"", "UTC",
            "'' has 0 field(s); a cron expression has 5 (minute hour day-of-month month "
            "day-of-week) or is a shorthand such as @daily"},
        Bad{"@reboot", "UTC",
            "'@reboot' is not a shorthand kiln knows (@hourly, @daily, @midnight, @weekly, "
            "@monthly, @yearly, @annually)"},
        Bad{"0 0 30 2 *", "UTC",
            "'0 0 30 2 *': the day-of-month and month fields never meet (no such date), so it "
            "would never fire"},
        Bad{"0 0 31 4,6,9,11 *", "UTC",
            "'0 0 31 4,6,9,11 *': the day-of-month and month fields never meet (no such date), "
            "so it would never fire"},
        Bad{"0 0 * * *", "Mars/Olympus_Mons",
            "time zone 'Mars/Olympus_Mons': not an IANA time zone name in the system's tzdata "
            "(/usr/share/zoneinfo), such as Europe/Berlin or UTC"},
        Bad{"0 0 * * *", "../../etc/passwd",
            "time zone '../../etc/passwd': not an IANA time zone name in the system's tzdata "
            "(/usr/share/zoneinfo), such as Europe/Berlin or UTC"}));

TEST(Parse, AcceptsTheLastDayOfFebruaryInALeapYearAndTabs) {
  EXPECT_TRUE(Schedule::Parse("0 0 29 2 *").ok());
  EXPECT_TRUE(Schedule::Parse("0 0 31 1-3 *").ok());
  EXPECT_TRUE(Schedule::Parse("0\t0  * *\t*").ok());
  // 30 February, but the weekday field makes it fire on Mondays.
  EXPECT_TRUE(Schedule::Parse("0 0 30 2 MON").ok());
}

}  // namespace
}  // namespace kiln::cron
