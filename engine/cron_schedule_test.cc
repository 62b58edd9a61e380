#include "engine/cron_schedule.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dsar {
namespace {

using ::testing::HasSubstr;

absl::Time At(const std::string& rfc3339) {
  absl::Time time;
  std::string error;
  EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full, rfc3339, &time, &error))
      << error;
  return time;
}

std::string Format(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone());
}

std::string Next(const std::string& expression, const std::string& after) {
  absl::StatusOr<CronSchedule> schedule = CronSchedule::Parse(expression);
  EXPECT_TRUE(schedule.ok()) << schedule.status();
  if (!schedule.ok()) return "";
  absl::Time next = schedule->NextAfter(At(after));
  return next == absl::InfiniteFuture() ? "never" : Format(next);
}

TEST(CronScheduleTest, SeedTwosDailyAuditAtOneUtc) {
  EXPECT_EQ(Next("0 1 * * *", "2026-11-29T23:42:00Z"), "2026-11-30T01:00:00Z");
  EXPECT_EQ(Next("0 1 * * *", "2026-11-30T00:59:59Z"), "2026-11-30T01:00:00Z");
  // Strictly later: at 01:00 exactly, the next one is tomorrow's.
  EXPECT_EQ(Next("0 1 * * *", "2026-11-30T01:00:00Z"), "2026-12-01T01:00:00Z");
  EXPECT_EQ(Next("@daily", "2026-12-31T12:00:00Z"), "2027-01-01T00:00:00Z");
}

TEST(CronScheduleTest, ListsRangesStepsAndNames) {
  EXPECT_EQ(Next("*/15 * * * *", "2026-11-30T10:07:00Z"),
            "2026-11-30T10:15:00Z");
  EXPECT_EQ(Next("5,35 9-17/4 * * *", "2026-11-30T13:40:00Z"),
            "2026-11-30T17:05:00Z");
  // 2026-11-30 is a Monday.
  EXPECT_EQ(Next("30 2 * * MON-FRI", "2026-11-28T00:00:00Z"),
            "2026-11-30T02:30:00Z");
  EXPECT_EQ(Next("0 0 * * 7", "2026-11-30T00:00:00Z"), "2026-12-06T00:00:00Z");
  EXPECT_EQ(Next("0 0 * * fri-sun", "2026-11-30T00:00:00Z"),
            "2026-12-04T00:00:00Z");
  EXPECT_EQ(Next("0 0 1 jan,jul *", "2026-11-30T00:00:00Z"),
            "2027-01-01T00:00:00Z");
}

TEST(CronScheduleTest, DayOfMonthOrDayOfWeekWhenBothAreRestricted) {
  // The 13th, or any Friday: Friday 2026-12-04 comes first.
  EXPECT_EQ(Next("0 0 13 * 5", "2026-11-30T00:00:00Z"), "2026-12-04T00:00:00Z");
  EXPECT_EQ(Next("0 0 13 * *", "2026-11-30T00:00:00Z"), "2026-12-13T00:00:00Z");
}

TEST(CronScheduleTest, AnImpossibleDateNeverFiresAndLeapDaysDo) {
  EXPECT_EQ(Next("0 0 30 2 *", "2026-01-01T00:00:00Z"), "never");
  EXPECT_EQ(Next("0 0 29 2 *", "2026-01-01T00:00:00Z"), "2028-02-29T00:00:00Z");
}

TEST(CronScheduleTest, LastAtOrBeforeFindsTheRunADowntimeMissed) {
  absl::StatusOr<CronSchedule> daily = CronSchedule::Parse("0 1 * * *");
  ASSERT_TRUE(daily.ok());
  EXPECT_EQ(Format(daily->LastAtOrBefore(At("2026-11-30T01:00:00Z"))),
            "2026-11-30T01:00:00Z");
  EXPECT_EQ(Format(daily->LastAtOrBefore(At("2026-11-30T00:59:00Z"))),
            "2026-11-29T01:00:00Z");
  absl::StatusOr<CronSchedule> never = CronSchedule::Parse("0 0 31 4 *");
  ASSERT_TRUE(never.ok());
  EXPECT_EQ(never->LastAtOrBefore(At("2026-11-30T00:00:00Z")),
            absl::InfinitePast());
}

TEST(CronScheduleTest, MalformedExpressionsNameTheFieldAndReason) {
  struct Case {
    std::string expression;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {"0 1 * *", "five fields"},
           {"0 24 * * *", "hour: 24 is out of range 0-23"},
           {"60 * * * *", "minute: 60 is out of range"},
           {"0 0 0 * *", "day-of-month: 0 is out of range 1-31"},
           {"0 0 * 13 *", "month: 13"},
           {"0 0 * * 8", "day-of-week: 8"},
           {"0 0 * foo *", "month: \"foo\" is not a number or a name"},
           {"*/0 * * * *", "minute: a step must be a positive number"},
           {"0 5-2 * * *", "hour: range 5-2 ends before it starts"},
           {"0 1,,2 * * *", "hour: an empty list item"},
           {"@fortnightly", "five fields"},
       }) {
    absl::StatusOr<CronSchedule> schedule = CronSchedule::Parse(c.expression);
    ASSERT_FALSE(schedule.ok()) << c.expression;
    EXPECT_EQ(schedule.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(schedule.status().message(), HasSubstr(c.message))
        << c.expression;
  }
}

}  // namespace
}  // namespace dsar
