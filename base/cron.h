// Cron expressions in a time zone: the five fields of crontab(5) (minute,
// hour, day of month, month, day of week) with ranges, steps, lists, month
// and weekday names, and the @hourly/@daily/@weekly/@monthly/@yearly
// shorthands, evaluated in an IANA time zone from the system's tzdata.
//
// Semantics are Vixie cron's (cronie's), which systemd and Kubernetes share:
// - When both day fields are restricted (neither starts with '*'), a day
//   matches if either does ("0 0 1 * MON": the 1st, and every Monday).
// - Daylight saving time: a job at a fixed time (neither the minute nor the
//   hour field starts with '*') whose local time is skipped by a
//   spring-forward runs once, at the instant the clock jumps; one whose local
//   time happens twice in a fall-back runs once, at the first. A job with '*'
//   in its minute or hour field follows the wall clock: it runs at the times
//   that exist, and in a repeated hour again.
//
// The time-zone rules come from Howard Hinnant's date library (Debian's
// libhowardhinnant-date-dev, the proposal C++20's std::chrono::zoned_time
// was made from; libstdc++ 12 does not have that part yet).
#pragma once

#include <bitset>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace date {
class time_zone;
}

namespace kiln::cron {

class Schedule {
 public:
  // Errors name the field and the value: "the hour field: 24 is out of range
  // 0-23", "time zone \"Mars/Base\": not in the system's tzdata".
  static Result<Schedule> Parse(std::string_view expression, std::string_view time_zone = "UTC");

  // The first time the schedule fires strictly after `after`, in milliseconds
  // since the Unix epoch (whole minutes). Every expression Parse accepts
  // fires within eight years.
  int64_t Next(int64_t after_ms) const;

  // ms as a local time in the schedule's zone: "2026-03-29 03:00 CEST".
  std::string Local(int64_t ms) const;

  const std::string& expression() const { return expression_; }
  const std::string& time_zone() const { return zone_name_; }

 private:
  Schedule() = default;
  bool DayMatches(unsigned day, unsigned weekday) const;
  std::chrono::minutes NextMatch(std::chrono::minutes local) const;

  std::string expression_;
  std::string zone_name_;
  const date::time_zone* zone_ = nullptr;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;      // 1-31
  std::bitset<13> months_;    // 1-12
  std::bitset<7> weekdays_;   // 0 = Sunday
  bool any_day_ = false;      // the day-of-month field starts with '*'
  bool any_weekday_ = false;  // the day-of-week field starts with '*'
  bool fixed_time_ = false;   // neither minute nor hour starts with '*'
};

}  // namespace kiln::cron
