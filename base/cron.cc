#include "base/cron.h"

#include <date/tz.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <optional>

#include "base/strings.h"

namespace kiln::cron {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

struct Field {
  const char* name;
  int min, max;
  // Names accepted for values (min + index), upper case; empty: none.
  std::vector<std::string_view> names;
};

const Field kMinute{"minute", 0, 59, {}};
const Field kHour{"hour", 0, 23, {}};
const Field kDay{"day-of-month", 1, 31, {}};
const Field kMonth{
    "month",
    1,
    12,
    {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}};
// 7 is Sunday too, as in every cron.
const Field kWeekday{"day-of-week", 0, 7, {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}};

Error Bad(const Field& f, const std::string& message) {
  return Error::Invalid(std::string("the ") + f.name + " field: " + message);
}

Result<int> Value(const Field& f, std::string_view text) {
  if (text.empty()) return Bad(f, "a value is missing");
  std::string upper(text);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (size_t i = 0; i < f.names.size(); ++i) {
    if (upper == f.names[i]) return f.min + static_cast<int>(i);
  }
  auto v = ParseUint(text, f.name);
  if (!v) {
    std::string known = f.names.empty() ? ""
                                        : " or a name (" + std::string(f.names.front()) + "-" +
                                              std::string(f.names.back()) + ")";
    return Bad(f, Quote(std::string(text)) + " is not a number" + known);
  }
  if (*v < static_cast<uint64_t>(f.min) || *v > static_cast<uint64_t>(f.max)) {
    return Bad(f, std::to_string(*v) + " is out of range " + std::to_string(f.min) + "-" +
                      std::to_string(f.max));
  }
  return static_cast<int>(*v);
}

// One field: a comma-separated list of *, N, N-M, each with an optional /S.
// Returns the set of values as bits (value v at bit v).
Result<std::bitset<64>> ParseField(const Field& f, std::string_view text) {
  std::bitset<64> bits;
  for (const std::string& item : Split(text, ',')) {
    if (item.empty()) return Bad(f, "an empty item in the list " + Quote(std::string(text)));
    std::string_view range = item;
    int step = 1;
    if (size_t slash = item.find('/'); slash != std::string::npos) {
      range = std::string_view(item).substr(0, slash);
      std::string_view s = std::string_view(item).substr(slash + 1);
      auto v = ParseUint(s, f.name);
      if (!v || *v == 0 || *v > static_cast<uint64_t>(f.max)) {
        return Bad(f, "the step in " + Quote(item) + " must be a number from 1 to " +
                          std::to_string(f.max));
      }
      step = static_cast<int>(*v);
    }
    int lo, hi;
    if (range == "*") {
      lo = f.min;
      hi = f.max;
    } else if (size_t dash = range.find('-'); dash != std::string_view::npos) {
      KILN_ASSIGN_OR_RETURN(lo, Value(f, range.substr(0, dash)));
      KILN_ASSIGN_OR_RETURN(hi, Value(f, range.substr(dash + 1)));
      if (lo > hi) return Bad(f, "the range " + Quote(std::string(range)) + " goes backwards");
    } else {
      KILN_ASSIGN_OR_RETURN(lo, Value(f, range));
      // "N/S" is N to the end in steps of S (cronie, systemd).
      hi = range.size() == item.size() ? lo : f.max;
    }
    for (int v = lo; v <= hi; v += step) bits.set(static_cast<size_t>(v));
  }
  return bits;
}

template <size_t N>
std::bitset<N> Narrow(const std::bitset<64>& bits) {
  std::bitset<N> out;
  for (size_t i = 0; i < N; ++i) out[i] = bits[i];
  return out;
}

std::string_view Shorthand(std::string_view text) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 7> kTable = {{
      {"@yearly", "0 0 1 1 *"},
      {"@annually", "0 0 1 1 *"},
      {"@monthly", "0 0 1 * *"},
      {"@weekly", "0 0 * * 0"},
      {"@daily", "0 0 * * *"},
      {"@midnight", "0 0 * * *"},
      {"@hourly", "0 * * * *"},
  }};
  for (const auto& [name, fields] : kTable) {
    if (text == name) return fields;
  }
  return {};
}

constexpr std::array<unsigned, 13> kDaysIn = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

}  // namespace

Result<Schedule> Schedule::Parse(std::string_view expression, std::string_view time_zone) {
  Schedule s;
  s.expression_ = std::string(Trim(expression));
  std::string_view fields_text = s.expression_;
  if (!fields_text.empty() && fields_text[0] == '@') {
    fields_text = Shorthand(s.expression_);
    if (fields_text.empty()) {
      return Error::Invalid(Quote(s.expression_) +
                            " is not a shorthand kiln knows (@hourly, @daily, @midnight, "
                            "@weekly, @monthly, @yearly, @annually)");
    }
  }
  std::vector<std::string> fields;
  for (const std::string& w : Split(fields_text, ' ')) {
    for (const std::string& part : Split(w, '\t')) {
      if (!part.empty()) fields.push_back(part);
    }
  }
  if (fields.size() != 5) {
    return Error::Invalid(Quote(s.expression_) + " has " + std::to_string(fields.size()) +
                          " field(s); a cron expression has 5 (minute hour day-of-month month "
                          "day-of-week) or is a shorthand such as @daily");
  }
  KILN_ASSIGN_OR_RETURN(auto minutes_bits, ParseField(kMinute, fields[0]));
  KILN_ASSIGN_OR_RETURN(auto hours_bits, ParseField(kHour, fields[1]));
  KILN_ASSIGN_OR_RETURN(auto days_bits, ParseField(kDay, fields[2]));
  KILN_ASSIGN_OR_RETURN(auto months_bits, ParseField(kMonth, fields[3]));
  KILN_ASSIGN_OR_RETURN(auto weekdays_bits, ParseField(kWeekday, fields[4]));
  if (weekdays_bits[7]) weekdays_bits.set(0);
  s.minutes_ = Narrow<60>(minutes_bits);
  s.hours_ = Narrow<24>(hours_bits);
  s.days_ = Narrow<32>(days_bits);
  s.months_ = Narrow<13>(months_bits);
  s.weekdays_ = Narrow<7>(weekdays_bits);
  s.any_day_ = fields[2][0] == '*';
  s.any_weekday_ = fields[4][0] == '*';
  s.fixed_time_ = fields[0][0] != '*' && fields[1][0] != '*';

  // With the weekday unrestricted, some chosen day must exist in some chosen
  // month ("0 0 30 2 *" never fires; cron would accept it silently).
  if (!s.any_day_ && s.any_weekday_) {
    bool meets = false;
    for (unsigned m = 1; m <= 12 && !meets; ++m) {
      for (unsigned d = 1; d <= kDaysIn[m] && !meets; ++d) meets = s.months_[m] && s.days_[d];
    }
    if (!meets) {
      return Error::Invalid(Quote(s.expression_) +
                            ": the day-of-month and month fields never meet (no such date), so "
                            "it would never fire");
    }
  }

  s.zone_name_ = std::string(time_zone);
  try {
    s.zone_ = date::locate_zone(s.zone_name_);
  } catch (const std::exception& e) {
    return Error::Invalid("time zone " + Quote(s.zone_name_) +
                          ": not an IANA time zone name in the system's tzdata "
                          "(/usr/share/zoneinfo), such as Europe/Berlin or UTC");
  }
  return s;
}

bool Schedule::DayMatches(unsigned day, unsigned weekday) const {
  bool dom = days_[day];
  bool dow = weekdays_[weekday];
  if (any_day_ || any_weekday_) return dom && dow;
  return dom || dow;
}

// Local time as minutes since the local epoch. The eight-year calendar cycle
// bounds the loop for every schedule Parse accepts.
std::chrono::minutes Schedule::NextMatch(std::chrono::minutes from) const {
  for (int guard = 0; guard < 200'000; ++guard) {
    date::local_days day = std::chrono::floor<date::days>(date::local_time<minutes>(from));
    date::year_month_day ymd(day);
    unsigned month = static_cast<unsigned>(ymd.month());
    if (!months_[month]) {
      from = date::local_days((ymd.year() / ymd.month() + date::months(1)) / 1).time_since_epoch();
      continue;
    }
    if (!DayMatches(static_cast<unsigned>(ymd.day()), date::weekday(day).c_encoding())) {
      from = (day + date::days(1)).time_since_epoch();
      continue;
    }
    auto since = from - day.time_since_epoch();
    int h0 = static_cast<int>(std::chrono::duration_cast<hours>(since).count());
    int m0 = static_cast<int>((since - hours(h0)).count());
    for (int h = h0; h < 24; ++h) {
      if (!hours_[static_cast<size_t>(h)]) continue;
      for (int m = h == h0 ? m0 : 0; m < 60; ++m) {
        if (minutes_[static_cast<size_t>(m)]) return day.time_since_epoch() + hours(h) + minutes(m);
      }
    }
    from = (day + date::days(1)).time_since_epoch();
  }
  return from;
}

int64_t Schedule::Next(int64_t after_ms) const {
  using std::chrono::milliseconds;
  const date::sys_time<milliseconds> after{milliseconds(after_ms)};
  const auto after_s = std::chrono::floor<seconds>(after);
  // Local times before `after`'s own can still lie ahead when the clock is
  // about to go back (a fall-back within three hours): start there then.
  date::sys_info now_info = zone_->get_info(after_s);
  auto lookback = now_info.end - after_s <= hours(3) ? hours(3) : hours(0);
  auto local = std::chrono::floor<minutes>(zone_->to_local(after_s)) - lookback;

  std::optional<date::sys_seconds> best;
  for (int guard = 0; guard < 1'000'000; ++guard) {
    local = date::local_time<minutes>(NextMatch(local.time_since_epoch()));
    date::local_info info = zone_->get_info(date::local_seconds(local));
    std::array<date::sys_seconds, 2> found{};
    size_t n = 0;
    date::sys_seconds lower;  // no later local time maps to an earlier instant
    const auto ls = date::local_seconds(local).time_since_epoch();
    switch (info.result) {
      case date::local_info::unique:
        found[n++] = date::sys_seconds(ls - info.first.offset);
        lower = found[0];
        break;
      case date::local_info::nonexistent:
        // Skipped by a spring-forward: a fixed-time job runs as the clock jumps.
        lower = info.second.begin;
        if (fixed_time_) found[n++] = info.second.begin;
        break;
      case date::local_info::ambiguous: {
        // Twice in a fall-back: a fixed-time job runs at the first only.
        auto first = date::sys_seconds(ls - info.first.offset);
        auto second = date::sys_seconds(ls - info.second.offset);
        lower = std::min(first, second);
        found[n++] = first;
        if (!fixed_time_) found[n++] = second;
        break;
      }
    }
    if (best && lower > *best) break;
    for (size_t i = 0; i < n; ++i) {
      if (found[i] > after && (!best || found[i] < *best)) best = found[i];
    }
    local += minutes(1);
  }
  return std::chrono::duration_cast<milliseconds>(best->time_since_epoch()).count();
}

std::string Schedule::Local(int64_t ms) const {
  auto t = std::chrono::floor<seconds>(
      date::sys_time<std::chrono::milliseconds>(std::chrono::milliseconds(ms)));
  return date::format("%F %R %Z", date::make_zoned(zone_, t));
}

}  // namespace kiln::cron
