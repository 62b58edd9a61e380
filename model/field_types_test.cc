#include "model/field_types.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dsar {
namespace {

using ::testing::HasSubstr;

void ExpectValid(FieldType type, std::string_view value) {
  absl::Status status = ValidateFieldValue(type, value, "GB");
  EXPECT_TRUE(status.ok()) << FieldTypeName(type) << " " << value << ": "
                           << status;
}

void ExpectInvalid(FieldType type, std::string_view value,
                   std::string_view reason) {
  absl::Status status = ValidateFieldValue(type, value, "GB");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument)
      << FieldTypeName(type) << " " << value;
  EXPECT_THAT(std::string(status.message()), HasSubstr(std::string(reason)));
}

TEST(FieldTypes, NamesRoundTrip) {
  for (const char* name :
       {"text", "email", "phone", "user_id", "integer", "date", "timestamp"}) {
    std::optional<FieldType> type = ParseFieldType(name);
    ASSERT_TRUE(type.has_value()) << name;
    EXPECT_EQ(FieldTypeName(*type), name);
  }
  EXPECT_FALSE(ParseFieldType("string").has_value());
}

TEST(FieldTypes, ValidatesValues) {
  ExpectValid(FieldType::kText, "");
  ExpectValid(FieldType::kEmail, "jane@example.org");
  ExpectInvalid(FieldType::kEmail, "not an email", "not an email address");
  ExpectInvalid(FieldType::kEmail, "jane@localhost", "not an email address");
  ExpectValid(FieldType::kPhone, "07700 454764");
  ExpectInvalid(FieldType::kPhone, "12", "not a valid phone number");
  ExpectValid(FieldType::kUserId, "007");
  ExpectInvalid(FieldType::kUserId, " 7", "not a user id");
  ExpectValid(FieldType::kInteger, "-42");
  ExpectInvalid(FieldType::kInteger, "042", "not an integer");
  ExpectInvalid(FieldType::kInteger, "4.0", "not an integer");
  ExpectValid(FieldType::kDate, "2024-02-29");
  ExpectInvalid(FieldType::kDate, "2023-02-29", "not a date");
  ExpectInvalid(FieldType::kDate, "2024-2-1", "not a date");
  ExpectValid(FieldType::kTimestamp, "2024-02-29T12:00:00Z");
  ExpectValid(FieldType::kTimestamp, "2024-02-29T12:00:00.125Z");
  ExpectInvalid(FieldType::kTimestamp, "2024-02-29 12:00:00",
                "not a timestamp");
}

}  // namespace
}  // namespace dsar
