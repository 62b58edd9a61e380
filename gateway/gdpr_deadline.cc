#include "gateway/gdpr_deadline.h"

#include <algorithm>

#include "absl/time/civil_time.h"

namespace dsar::gateway {

absl::Time OneCalendarMonthAfter(absl::Time received) {
  absl::TimeZone utc = absl::UTCTimeZone();
  absl::CivilSecond at = absl::ToCivilSecond(received, utc);
  absl::CivilMonth next_month = absl::CivilMonth(at) + 1;
  int days_in_next_month = static_cast<int>(absl::CivilDay(next_month + 1) -
                                            absl::CivilDay(next_month));
  absl::CivilSecond due(next_month.year(), next_month.month(),
                        std::min(at.day(), days_in_next_month), at.hour(),
                        at.minute(), at.second());
  absl::Duration subsecond =
      received - absl::FromCivil(at, utc);  // Keep the fraction of a second.
  return absl::FromCivil(due, utc) + subsecond;
}

}  // namespace dsar::gateway
