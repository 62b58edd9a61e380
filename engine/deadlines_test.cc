#include "engine/deadlines.h"

#include <string>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dsar {
namespace {

using ::testing::HasSubstr;

absl::TimeZone Zone(const std::string& name) {
  absl::StatusOr<absl::TimeZone> zone = LoadDeadlineTimeZone(name);
  EXPECT_TRUE(zone.ok()) << zone.status();
  return zone.ok() ? *zone : absl::UTCTimeZone();
}

// A local wall-clock time in `zone` ("2024-01-31 10:00").
absl::Time At(const std::string& local, const absl::TimeZone& zone) {
  absl::Time t;
  std::string error;
  EXPECT_TRUE(absl::ParseTime("%Y-%m-%d %H:%M", local, zone, &t, &error))
      << local << ": " << error;
  return t;
}

// Deadlines printed in the zone with offset and milliseconds.
std::string Local(absl::Time t, const absl::TimeZone& zone) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%E3S %Ez", t, zone);
}

std::string Gdpr(const std::string& received, const absl::TimeZone& zone) {
  absl::StatusOr<absl::Time> due =
      StatutoryDeadline("GDPR", At(received, zone), zone);
  EXPECT_TRUE(due.ok()) << due.status();
  return due.ok() ? Local(*due, zone) : due.status().ToString();
}

std::string Ccpa(const std::string& received, const absl::TimeZone& zone) {
  absl::StatusOr<absl::Time> due =
      StatutoryDeadline("CCPA", At(received, zone), zone);
  EXPECT_TRUE(due.ok()) << due.status();
  return due.ok() ? Local(*due, zone) : due.status().ToString();
}

TEST(AddCalendarMonthsTest, ClampsToTheLastDayOfTheTargetMonth) {
  using D = absl::CivilDay;
  EXPECT_EQ(AddCalendarMonths(D(2023, 1, 31), 1), D(2023, 2, 28));
  EXPECT_EQ(AddCalendarMonths(D(2024, 1, 31), 1), D(2024, 2, 29));
  EXPECT_EQ(AddCalendarMonths(D(2024, 3, 31), 1), D(2024, 4, 30));
  EXPECT_EQ(AddCalendarMonths(D(2024, 12, 31), 1), D(2025, 1, 31));
  EXPECT_EQ(AddCalendarMonths(D(2024, 3, 15), 1), D(2024, 4, 15));
  EXPECT_EQ(AddCalendarMonths(D(2024, 2, 29), 12), D(2025, 2, 28));
  EXPECT_EQ(AddCalendarMonths(D(2024, 11, 30), 3), D(2025, 2, 28));
  EXPECT_EQ(AddCalendarMonths(D(2024, 3, 31), -1), D(2024, 2, 29));
}

TEST(StatutoryDeadlineTest, GdprSameDayNextMonth) {
  absl::TimeZone utc = absl::UTCTimeZone();
  EXPECT_EQ(Gdpr("2024-03-15 09:00", utc), "2024-04-15 23:59:59.999 +00:00");
  EXPECT_EQ(Gdpr("2024-05-01 00:00", utc), "2024-06-01 23:59:59.999 +00:00");
}

TEST(StatutoryDeadlineTest, GdprMonthEndsClampToTheLastDay) {
  absl::TimeZone utc = absl::UTCTimeZone();
  // Non-leap year.
  EXPECT_EQ(Gdpr("2023-01-31 12:00", utc), "2023-02-28 23:59:59.999 +00:00");
  EXPECT_EQ(Gdpr("2023-01-30 12:00", utc), "2023-02-28 23:59:59.999 +00:00");
  EXPECT_EQ(Gdpr("2023-01-29 12:00", utc), "2023-02-28 23:59:59.999 +00:00");
  EXPECT_EQ(Gdpr("2023-01-28 12:00", utc), "2023-02-28 23:59:59.999 +00:00");
  // Leap year: 29 Feb exists.
  EXPECT_EQ(Gdpr("2024-01-31 12:00", utc), "2024-02-29 23:59:59.999 +00:00");
  EXPECT_EQ(Gdpr("2024-01-30 12:00", utc), "2024-02-29 23:59:59.999 +00:00");
  EXPECT_EQ(Gdpr("2024-01-29 12:00", utc), "2024-02-29 23:59:59.999 +00:00");
  // 31 Mar -> 30 Apr; a request received on 29 Feb is due on 29 Mar.
  EXPECT_EQ(Gdpr("2024-03-31 12:00", utc), "2024-04-30 23:59:59.999 +00:00");
  EXPECT_EQ(Gdpr("2024-02-29 12:00", utc), "2024-03-29 23:59:59.999 +00:00");
  // Across the year end.
  EXPECT_EQ(Gdpr("2024-12-31 12:00", utc), "2025-01-31 23:59:59.999 +00:00");
}

TEST(StatutoryDeadlineTest, GdprCenturyRuleForLeapYears) {
  absl::TimeZone utc = absl::UTCTimeZone();
  EXPECT_EQ(Gdpr("2100-01-31 12:00", utc), "2100-02-28 23:59:59.999 +00:00");
  EXPECT_EQ(Gdpr("2000-01-31 12:00", utc), "2000-02-29 23:59:59.999 +00:00");
}

TEST(StatutoryDeadlineTest, ReceiptDayIsTheDayInTheConfiguredZone) {
  absl::TimeZone utc = absl::UTCTimeZone();
  absl::TimeZone berlin = Zone("Europe/Berlin");
  // 23:30 UTC on 31 Jan is 00:30 on 1 Feb in Berlin.
  absl::Time received = At("2024-01-31 23:30", utc);
  absl::StatusOr<absl::Time> due = StatutoryDeadline("GDPR", received, berlin);
  ASSERT_TRUE(due.ok()) << due.status();
  EXPECT_EQ(Local(*due, berlin), "2024-03-01 23:59:59.999 +01:00");
  EXPECT_EQ(*due, At("2024-03-01 22:59", utc) + absl::Seconds(59) +
                      absl::Milliseconds(999));
  // The same instant in UTC is still 31 Jan.
  EXPECT_EQ(Local(*StatutoryDeadline("GDPR", received, utc), utc),
            "2024-02-29 23:59:59.999 +00:00");

  // Los Angeles: 2024-03-01 03:00 UTC is still 29 Feb local.
  absl::TimeZone la = Zone("America/Los_Angeles");
  received = At("2024-03-01 03:00", utc);
  EXPECT_EQ(Local(*StatutoryDeadline("GDPR", received, la), la),
            "2024-03-29 23:59:59.999 -07:00");  // PDT since 10 Mar.
  EXPECT_EQ(Local(*StatutoryDeadline("CCPA", received, la), la),
            "2024-04-14 23:59:59.999 -07:00");
}

TEST(StatutoryDeadlineTest, EndOfDayAcrossDaylightSavingChanges) {
  absl::TimeZone berlin = Zone("Europe/Berlin");
  // Received in winter time, due on the day clocks go forward (31 Mar 2024):
  // the day is 23 hours long but still ends at 23:59:59.999 CEST.
  EXPECT_EQ(Gdpr("2024-02-29 10:00", berlin), "2024-03-29 23:59:59.999 +01:00");
  EXPECT_EQ(Gdpr("2024-03-01 10:00", berlin), "2024-04-01 23:59:59.999 +02:00");
  absl::Time end_of_dst_day =
      EndOfCivilDay(absl::CivilDay(2024, 3, 31), berlin);
  EXPECT_EQ(Local(end_of_dst_day, berlin), "2024-03-31 23:59:59.999 +02:00");
  // Due on the day clocks go back (27 Oct 2024, 25 hours long).
  EXPECT_EQ(Gdpr("2024-09-27 10:00", berlin), "2024-10-27 23:59:59.999 +01:00");
  EXPECT_EQ(EndOfCivilDay(absl::CivilDay(2024, 10, 27), berlin) -
                EndOfCivilDay(absl::CivilDay(2024, 10, 26), berlin),
            absl::Hours(25));

  absl::TimeZone la = Zone("America/Los_Angeles");
  EXPECT_EQ(Gdpr("2024-02-10 23:00", la), "2024-03-10 23:59:59.999 -07:00");
  EXPECT_EQ(Gdpr("2024-10-03 08:00", la), "2024-11-03 23:59:59.999 -08:00");

  // America/Santiago skips local midnight when DST starts (2024-09-08 00:00
  // does not exist): the day before ends one millisecond before 01:00.
  absl::TimeZone santiago = Zone("America/Santiago");
  absl::Time end = EndOfCivilDay(absl::CivilDay(2024, 9, 7), santiago);
  EXPECT_EQ(Local(end, santiago), "2024-09-07 23:59:59.999 -04:00");
  EXPECT_EQ(Local(end + absl::Milliseconds(1), santiago),
            "2024-09-08 01:00:00.000 -03:00");
}

TEST(StatutoryDeadlineTest, CcpaIsFortyFiveCalendarDays) {
  absl::TimeZone la = Zone("America/Los_Angeles");
  EXPECT_EQ(Ccpa("2024-01-01 09:00", la), "2024-02-15 23:59:59.999 -08:00");
  // Across the year end, and through a leap day.
  EXPECT_EQ(Ccpa("2024-12-01 09:00", la), "2025-01-15 23:59:59.999 -08:00");
  EXPECT_EQ(Ccpa("2023-11-20 09:00", la), "2024-01-04 23:59:59.999 -08:00");
  EXPECT_EQ(Ccpa("2024-02-01 09:00", la), "2024-03-17 23:59:59.999 -07:00");
  EXPECT_EQ(Ccpa("2023-02-01 09:00", la), "2023-03-18 23:59:59.999 -07:00");
}

TEST(StatutoryDeadlineTest, UnknownRegulationNamesTheField) {
  for (const std::string regulation : {"HIPAA", "gdpr", "", " GDPR"}) {
    absl::StatusOr<absl::Time> due =
        StatutoryDeadline(regulation, absl::Now(), absl::UTCTimeZone());
    EXPECT_EQ(due.status().code(), absl::StatusCode::kInvalidArgument)
        << regulation;
    EXPECT_THAT(due.status().message(), HasSubstr("regulation")) << regulation;
  }
}

TEST(LoadDeadlineTimeZoneTest, UnknownZoneIsInvalidArgument) {
  EXPECT_TRUE(LoadDeadlineTimeZone("Europe/Berlin").ok());
  EXPECT_TRUE(LoadDeadlineTimeZone("UTC").ok());
  for (const std::string name : {"Mars/Olympus_Mons", ""}) {
    absl::StatusOr<absl::TimeZone> zone = LoadDeadlineTimeZone(name);
    EXPECT_EQ(zone.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(zone.status().message(), HasSubstr("time_zone"));
  }
}

class ExtendedDeadlineTest : public ::testing::Test {
 protected:
  absl::TimeZone berlin_ = Zone("Europe/Berlin");
  absl::TimeZone la_ = Zone("America/Los_Angeles");
};

TEST_F(ExtendedDeadlineTest, GdprExtendsFromTheOriginalDeadline) {
  absl::Time received = At("2023-01-31 10:00", berlin_);
  absl::Time original = *StatutoryDeadline("GDPR", received, berlin_);
  EXPECT_EQ(Local(original, berlin_), "2023-02-28 23:59:59.999 +01:00");
  EXPECT_EQ(*NotifyExtensionBy("GDPR", received, berlin_), original);

  absl::StatusOr<absl::Time> two =
      ExtendedDeadline("GDPR", received, original, 2, received, berlin_);
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_EQ(Local(*two, berlin_), "2023-04-28 23:59:59.999 +02:00");
  absl::StatusOr<absl::Time> one =
      ExtendedDeadline("GDPR", received, original, 1, original, berlin_);
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(Local(*one, berlin_), "2023-03-28 23:59:59.999 +02:00");

  received = At("2024-11-30 10:00", berlin_);
  original = *StatutoryDeadline("GDPR", received, berlin_);
  EXPECT_EQ(Local(original, berlin_), "2024-12-30 23:59:59.999 +01:00");
  EXPECT_EQ(
      Local(*ExtendedDeadline("GDPR", received, original, 2, received, berlin_),
            berlin_),
      "2025-02-28 23:59:59.999 +01:00");
}

TEST_F(ExtendedDeadlineTest, CcpaExtendsByUpToFortyFiveDays) {
  absl::Time received = At("2024-11-20 10:00", la_);
  absl::Time original = *StatutoryDeadline("CCPA", received, la_);
  EXPECT_EQ(Local(original, la_), "2025-01-04 23:59:59.999 -08:00");
  EXPECT_EQ(*NotifyExtensionBy("CCPA", received, la_), original);
  EXPECT_EQ(
      Local(*ExtendedDeadline("CCPA", received, original, 45, received, la_),
            la_),
      "2025-02-18 23:59:59.999 -08:00");
  EXPECT_EQ(
      Local(*ExtendedDeadline("CCPA", received, original, 1, received, la_),
            la_),
      "2025-01-05 23:59:59.999 -08:00");
}

TEST_F(ExtendedDeadlineTest, RejectsAmountsOutsideTheStatutoryLimit) {
  absl::Time received = At("2024-03-15 10:00", berlin_);
  absl::Time gdpr = *StatutoryDeadline("GDPR", received, berlin_);
  for (int months : {0, -1, 3, 12}) {
    absl::StatusOr<absl::Time> extended =
        ExtendedDeadline("GDPR", received, gdpr, months, received, berlin_);
    EXPECT_EQ(extended.status().code(), absl::StatusCode::kInvalidArgument)
        << months;
    EXPECT_THAT(extended.status().message(), HasSubstr("extension_months"));
  }
  absl::Time ccpa = *StatutoryDeadline("CCPA", received, berlin_);
  for (int days : {0, -5, 46, 90}) {
    absl::StatusOr<absl::Time> extended =
        ExtendedDeadline("CCPA", received, ccpa, days, received, berlin_);
    EXPECT_EQ(extended.status().code(), absl::StatusCode::kInvalidArgument)
        << days;
    EXPECT_THAT(extended.status().message(), HasSubstr("extension_days"));
  }
  absl::StatusOr<absl::Time> unknown =
      ExtendedDeadline("LGPD", received, gdpr, 1, received, berlin_);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.status().message(), HasSubstr("regulation"));
}

TEST_F(ExtendedDeadlineTest, RejectsASecondExtension) {
  absl::Time received = At("2024-03-15 10:00", berlin_);
  absl::Time original = *StatutoryDeadline("GDPR", received, berlin_);
  absl::Time extended =
      *ExtendedDeadline("GDPR", received, original, 1, received, berlin_);
  absl::StatusOr<absl::Time> again =
      ExtendedDeadline("GDPR", received, extended, 1, received, berlin_);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(again.status().message(), HasSubstr("current_deadline"));
  EXPECT_THAT(again.status().message(), HasSubstr("only once"));

  absl::Time ccpa = *StatutoryDeadline("CCPA", received, la_);
  absl::Time ccpa_extended =
      *ExtendedDeadline("CCPA", received, ccpa, 10, received, la_);
  EXPECT_EQ(ExtendedDeadline("CCPA", received, ccpa_extended, 10, received, la_)
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(ExtendedDeadlineTest, RejectsADeadlineNotDerivedFromReceipt) {
  absl::Time received = At("2024-03-15 10:00", berlin_);
  absl::Time original = *StatutoryDeadline("GDPR", received, berlin_);
  absl::StatusOr<absl::Time> extended = ExtendedDeadline(
      "GDPR", received, original - absl::Hours(24), 1, received, berlin_);
  EXPECT_EQ(extended.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(extended.status().message(), HasSubstr("current_deadline"));
}

TEST_F(ExtendedDeadlineTest, MustBeDecidedWithinTheFirstPeriod) {
  absl::Time received = At("2024-03-15 10:00", berlin_);
  absl::Time original = *StatutoryDeadline("GDPR", received, berlin_);
  EXPECT_TRUE(
      ExtendedDeadline("GDPR", received, original, 2, original, berlin_).ok());
  absl::StatusOr<absl::Time> late = ExtendedDeadline(
      "GDPR", received, original, 2, original + absl::Milliseconds(1), berlin_);
  EXPECT_EQ(late.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(late.status().message(), HasSubstr("now"));
}

}  // namespace
}  // namespace dsar
