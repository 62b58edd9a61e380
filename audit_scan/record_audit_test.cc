#include "audit_scan/record_audit.h"

#include "audit_scan/audit_scan_testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dsar {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// A record of the planted collection with `status` and `email`.
ScannedRecord Record(std::string_view status,
                     std::optional<std::string_view> email,
                     std::string_view restricted = "0") {
  ScannedRecord record;
  record.key = "k";
  record.fields = {{"user_id", "u-1"},
                   {"privacy_status", status},
                   {"restricted", restricted},
                   {"email", email}};
  return record;
}

TEST(RecordAuditTest, StatusComparisonIgnoresCaseAndSpace) {
  CollectionSpec users = audit_testing::PlantedCollection("users");
  for (std::string_view status :
       {"opt_out", "OPT_OUT", "Opt_Out", " erased "}) {
    EXPECT_TRUE(IsOptedOut(users, Record(status, "a@example.com"))) << status;
  }
  for (std::string_view status : {"active", "restricted", "RESTRICTED", ""}) {
    EXPECT_FALSE(IsOptedOut(users, Record(status, "a@example.com"))) << status;
  }
}

TEST(RecordAuditTest, RestrictedRecordIsNotAViolation) {
  CollectionSpec users = audit_testing::PlantedCollection("users");
  EXPECT_THAT(UnscrubbedFields(users, Record("restricted", "a@example.com")),
              IsEmpty());
  // The restriction flag set on an opted-out record: kept lawfully.
  EXPECT_THAT(UnscrubbedFields(users, Record("opt_out", "a@example.com", "1")),
              IsEmpty());
  EXPECT_THAT(
      UnscrubbedFields(users, Record("opt_out", "a@example.com", "true")),
      IsEmpty());
  EXPECT_THAT(UnscrubbedFields(users, Record("opt_out", "a@example.com", "0")),
              ElementsAre("email"));
}

TEST(RecordAuditTest, ScrubbedForms) {
  CollectionSpec users = audit_testing::PlantedCollection("users");
  for (std::optional<std::string_view> email :
       {std::optional<std::string_view>(), std::optional<std::string_view>(""),
        std::optional<std::string_view>("  "),
        std::optional<std::string_view>("REDACTED"),
        std::optional<std::string_view>(
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
        std::optional<std::string_view>("0123456789abcdef0123456789abcdef")}) {
    EXPECT_THAT(UnscrubbedFields(users, Record("opt_out", email)), IsEmpty())
        << email.value_or("<null>");
  }
  // Placeholders compare exactly; hashes need scrubbed_hashes.
  EXPECT_THAT(UnscrubbedFields(users, Record("opt_out", "redacted")),
              ElementsAre("email"));
  users.privacy_status->scrubbed_hashes = false;
  EXPECT_THAT(UnscrubbedFields(
                  users, Record("opt_out", "0123456789abcdef0123456789abcdef")),
              ElementsAre("email"));
  // What the collection's own masks write counts as scrubbed.
  users.masks["email"] = {MaskStrategy::kFixed, "erased@invalid"};
  EXPECT_THAT(UnscrubbedFields(users, Record("opt_out", "erased@invalid")),
              IsEmpty());
  users.masks["email"] = {MaskStrategy::kRandom, ""};
  EXPECT_THAT(UnscrubbedFields(
                  users, Record("opt_out", "0123456789abcdef0123456789abcdef")),
              IsEmpty());
}

TEST(RecordAuditTest, CheckedFieldsArePiiAndContactIdentities) {
  CollectionSpec users = audit_testing::PlantedCollection("users");
  EXPECT_THAT(OptOutCheckedFields(users), ElementsAre("email", "phone"));
  users.pii_fields["full_name"] = "identity";
  EXPECT_THAT(OptOutCheckedFields(users),
              ElementsAre("email", "full_name", "phone"));
}

}  // namespace
}  // namespace dsar
