#include "engine/cron_schedule.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"

namespace dsar {
namespace {

constexpr int kSearchYears = 8;

struct FieldSpec {
  const char* name;
  int min;
  int max;
  const char* const* names;  // Names for min, min+1, ...; or null.
};

constexpr const char* kMonthNames[] = {"jan", "feb", "mar", "apr",
                                       "may", "jun", "jul", "aug",
                                       "sep", "oct", "nov", "dec"};
constexpr const char* kWeekdayNames[] = {"sun", "mon", "tue", "wed",
                                         "thu", "fri", "sat"};

absl::Status Invalid(const FieldSpec& field, const std::string& reason) {
  return absl::InvalidArgumentError(absl::StrCat(field.name, ": ", reason));
}

absl::StatusOr<int> ParseValue(const FieldSpec& field, absl::string_view text) {
  int value = 0;
  if (absl::SimpleAtoi(text, &value)) {
    // Day-of-week 7 is Sunday too.
    int max = field.min == 0 && field.max == 6 ? 7 : field.max;
    if (value < field.min || value > max) {
      return Invalid(field, absl::StrCat(value, " is out of range ", field.min,
                                         "-", field.max));
    }
    return value == 7 && max == 7 ? 0 : value;
  }
  if (field.names != nullptr) {
    const std::string lower = absl::AsciiStrToLower(text);
    for (int i = 0; i <= field.max - field.min; ++i) {
      if (lower == field.names[i]) return field.min + i;
    }
  }
  return Invalid(field,
                 absl::StrCat("\"", text, "\" is not a number",
                              field.names != nullptr ? " or a name" : ""));
}

// Sets the bits of `field` that `text` selects; `*any` tells whether it
// was "*" (every value).
template <size_t N>
absl::Status ParseField(const FieldSpec& field, absl::string_view text,
                        std::bitset<N>* bits, bool* any) {
  *any = text == "*";
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    if (part.empty()) return Invalid(field, "an empty list item");
    int step = 1;
    size_t slash = part.find('/');
    if (slash != absl::string_view::npos) {
      if (!absl::SimpleAtoi(part.substr(slash + 1), &step) || step < 1) {
        return Invalid(field, "a step must be a positive number");
      }
      part = part.substr(0, slash);
    }
    int low = field.min;
    int high = field.max;
    if (part != "*") {
      size_t dash = part.find('-');
      absl::StatusOr<int> first = ParseValue(field, part.substr(0, dash));
      if (!first.ok()) return first.status();
      low = high = *first;
      if (dash != absl::string_view::npos) {
        absl::StatusOr<int> last = ParseValue(field, part.substr(dash + 1));
        if (!last.ok()) return last.status();
        high = *last;
        // "5-7" in day-of-week ends on Sunday (7), which ParseValue made 0.
        if (high == 0 && field.max == 6 && part.substr(dash + 1) != "0") {
          high = 7;
        }
        if (high < low) {
          return Invalid(
              field, absl::StrCat("range ", part, " ends before it starts"));
        }
      } else if (slash != absl::string_view::npos) {
        high = field.max;  // "a/n": from a to the end.
      }
    }
    for (int value = low; value <= high; value += step) {
      bits->set(static_cast<size_t>(value == 7 && field.max == 6 ? 0 : value));
    }
  }
  return absl::OkStatus();
}

absl::string_view Expand(absl::string_view expression) {
  if (expression == "@hourly") return "0 * * * *";
  if (expression == "@daily" || expression == "@midnight") return "0 0 * * *";
  if (expression == "@weekly") return "0 0 * * 0";
  if (expression == "@monthly") return "0 0 1 * *";
  if (expression == "@yearly" || expression == "@annually") return "0 0 1 1 *";
  return expression;
}

}  // namespace

absl::StatusOr<CronSchedule> CronSchedule::Parse(absl::string_view expression) {
  std::vector<absl::string_view> fields = absl::StrSplit(
      Expand(absl::StripAsciiWhitespace(expression)), ' ', absl::SkipEmpty());
  if (fields.size() != 5) {
    return absl::InvalidArgumentError(
        "schedule: a cron expression has five fields (minute hour "
        "day-of-month month day-of-week), e.g. \"0 1 * * *\"");
  }
  CronSchedule schedule;
  schedule.expression_ = std::string(absl::StripAsciiWhitespace(expression));
  bool any = false;
  absl::Status status = ParseField({"minute", 0, 59, nullptr}, fields[0],
                                   &schedule.minutes_, &any);
  if (status.ok()) {
    status =
        ParseField({"hour", 0, 23, nullptr}, fields[1], &schedule.hours_, &any);
  }
  if (status.ok()) {
    status = ParseField({"day-of-month", 1, 31, nullptr}, fields[2],
                        &schedule.days_of_month_, &schedule.any_day_of_month_);
  }
  if (status.ok()) {
    status = ParseField({"month", 1, 12, kMonthNames}, fields[3],
                        &schedule.months_, &any);
  }
  if (status.ok()) {
    status = ParseField({"day-of-week", 0, 6, kWeekdayNames}, fields[4],
                        &schedule.days_of_week_, &schedule.any_day_of_week_);
  }
  if (!status.ok()) return status;
  return schedule;
}

bool CronSchedule::DayMatches(const absl::CivilDay& day) const {
  if (!months_.test(static_cast<size_t>(day.month()))) return false;
  bool by_month_day = days_of_month_.test(static_cast<size_t>(day.day()));
  // absl::Weekday: monday = 0 ... sunday = 6; cron: sunday = 0.
  int weekday = (static_cast<int>(absl::GetWeekday(day)) + 1) % 7;
  bool by_weekday = days_of_week_.test(static_cast<size_t>(weekday));
  if (any_day_of_month_ && any_day_of_week_) return true;
  if (any_day_of_month_) return by_weekday;
  if (any_day_of_week_) return by_month_day;
  return by_month_day || by_weekday;
}

absl::Time CronSchedule::NextAfter(absl::Time after) const {
  const absl::TimeZone utc = absl::UTCTimeZone();
  absl::CivilMinute start =
      absl::ToCivilMinute(after, utc) + 1;  // Strictly later.
  absl::CivilDay day = absl::CivilDay(start);
  const absl::CivilDay last = day + 366 * kSearchYears;
  for (; day <= last; ++day) {
    if (!DayMatches(day)) continue;
    for (int hour = 0; hour < 24; ++hour) {
      if (!hours_.test(static_cast<size_t>(hour))) continue;
      for (int minute = 0; minute < 60; ++minute) {
        if (!minutes_.test(static_cast<size_t>(minute))) continue;
        absl::CivilMinute candidate(day.year(), day.month(), day.day(), hour,
                                    minute);
        if (candidate >= start) return absl::FromCivil(candidate, utc);
      }
    }
  }
  return absl::InfiniteFuture();
}

absl::Time CronSchedule::LastAtOrBefore(absl::Time at) const {
  const absl::TimeZone utc = absl::UTCTimeZone();
  absl::CivilMinute end = absl::ToCivilMinute(at, utc);
  absl::CivilDay day = absl::CivilDay(end);
  const absl::CivilDay first = day - 366 * kSearchYears;
  for (; day >= first; --day) {
    if (!DayMatches(day)) continue;
    for (int hour = 23; hour >= 0; --hour) {
      if (!hours_.test(static_cast<size_t>(hour))) continue;
      for (int minute = 59; minute >= 0; --minute) {
        if (!minutes_.test(static_cast<size_t>(minute))) continue;
        absl::CivilMinute candidate(day.year(), day.month(), day.day(), hour,
                                    minute);
        if (candidate <= end) return absl::FromCivil(candidate, utc);
      }
    }
  }
  return absl::InfinitePast();
}

}  // namespace dsar
