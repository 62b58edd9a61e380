#include "gateway/gdpr_deadline.h"

#include "gtest/gtest.h"

namespace dsar::gateway {
namespace {

absl::Time Utc(const char* text) {
  absl::Time time;
  std::string error;
  EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full, text, &time, &error))
      << error;
  return time;
}

TEST(GdprDeadlineTest, SameDateNextMonth) {
  EXPECT_EQ(OneCalendarMonthAfter(Utc("2024-03-15T10:20:30.250Z")),
            Utc("2024-04-15T10:20:30.250Z"));
  EXPECT_EQ(OneCalendarMonthAfter(Utc("2024-12-31T23:59:59Z")),
            Utc("2025-01-31T23:59:59Z"));
}

TEST(GdprDeadlineTest, LastDayWhenTheDateDoesNotExist) {
  EXPECT_EQ(OneCalendarMonthAfter(Utc("2024-01-31T08:00:00Z")),
            Utc("2024-02-29T08:00:00Z"));  // Leap year.
  EXPECT_EQ(OneCalendarMonthAfter(Utc("2025-01-30T08:00:00Z")),
            Utc("2025-02-28T08:00:00Z"));
  EXPECT_EQ(OneCalendarMonthAfter(Utc("2025-03-31T00:00:00Z")),
            Utc("2025-04-30T00:00:00Z"));
}

}  // namespace
}  // namespace dsar::gateway
