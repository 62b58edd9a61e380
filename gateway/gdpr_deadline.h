#ifndef DSAR_GATEWAY_GDPR_DEADLINE_H_
#define DSAR_GATEWAY_GDPR_DEADLINE_H_

#include "absl/time/time.h"

namespace dsar::gateway {

// GDPR Art. 12(3): the answer is due one month after receipt. Per Regulation
// 1182/71 Art. 3(2)(c) a period in months ends on the same date of the next
// month, or on its last day when that date does not exist (31 January →
// 28/29 February). Computed in UTC, keeping the time of day.
absl::Time OneCalendarMonthAfter(absl::Time received);

}  // namespace dsar::gateway

#endif  // DSAR_GATEWAY_GDPR_DEADLINE_H_
