#ifndef DSAR_ENGINE_CRON_SCHEDULE_H_
#define DSAR_ENGINE_CRON_SCHEDULE_H_

// When a recurring job is due, from a cron expression (crontab(5), the five
// fields minute hour day-of-month month day-of-week), in UTC. Used by
// dsard's scheduled audit scans (issue 13; seed 002 runs them daily at
// 01:00 UTC: "0 1 * * *"). Pure: time is passed in.
//
// Fields accept `*`, numbers, ranges `a-b`, lists `a,b`, steps `*/n` and
// `a-b/n`; months and weekdays also by their English three-letter names
// (JAN, MON; any case); day-of-week 0 and 7 are Sunday. As in Vixie cron,
// when both day-of-month and day-of-week are restricted (neither is `*`),
// a day matches when either does. The shorthands @hourly, @daily
// (@midnight), @weekly, @monthly and @yearly (@annually) are accepted.

#include <bitset>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace dsar {

class CronSchedule {
 public:
  // INVALID_ARGUMENT naming the field and the reason for a malformed
  // expression ("hour: 24 is out of range 0-23").
  static absl::StatusOr<CronSchedule> Parse(absl::string_view expression);

  // The first time after `after` (strictly later, whole minutes, UTC) the
  // schedule fires; absl::InfiniteFuture() when it never does within the
  // next eight years (e.g. "0 0 30 2 *", February 30th).
  absl::Time NextAfter(absl::Time after) const;

  // The latest time at or before `at` it fired, or absl::InfinitePast()
  // when none within the eight years before. A scheduler that was down
  // compares it with its last run to run a missed one once at start.
  absl::Time LastAtOrBefore(absl::Time at) const;

  const std::string& expression() const { return expression_; }

 private:
  CronSchedule() = default;
  bool DayMatches(const absl::CivilDay& day) const;

  std::string expression_;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_of_month_;  // 1-31.
  std::bitset<13> months_;         // 1-12.
  std::bitset<7> days_of_week_;    // 0 (Sunday) - 6.
  bool any_day_of_month_ = false;
  bool any_day_of_week_ = false;
};

}  // namespace dsar

#endif  // DSAR_ENGINE_CRON_SCHEDULE_H_
