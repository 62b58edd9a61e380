#include "model/identity.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dsar {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

std::string Normalized(std::string_view key, std::string_view value,
                       std::string_view region = "GB") {
  absl::StatusOr<std::string> normalized =
      NormalizeIdentityValue(key, value, region);
  EXPECT_TRUE(normalized.ok()) << normalized.status();
  return normalized.ok() ? *normalized : "";
}

TEST(NormalizeIdentityValue, EmailsAreTrimmedAndCaseFolded) {
  EXPECT_EQ(Normalized("email", "  Jane.Doe@Example.COM\t"),
            "jane.doe@example.com");
}

TEST(NormalizeIdentityValue, PhonesBecomeE164) {
  EXPECT_EQ(Normalized("phone", "+44 7700 454764"), "+447700454764");
  EXPECT_EQ(Normalized("phone", "+447700454764"), "+447700454764");
  EXPECT_EQ(Normalized("phone", "07700 454764"), "+447700454764");
  EXPECT_EQ(Normalized("phone", "(020) 7946-0958"), "+442079460958");
  EXPECT_EQ(Normalized("phone", "+1 (202) 555-0143", ""), "+12025550143");
  // A number with a country code does not depend on the default region.
  EXPECT_EQ(Normalized("phone", "+44 20 7946 0958", "US"), "+442079460958");
}

TEST(NormalizeIdentityValue, UnparseablePhonesAreInvalidWithAReason) {
  struct Case {
    std::string value, region, reason;
  };
  for (const Case& c : std::vector<Case>{
           {"12", "GB", "too short"},
           {"+44 7700 454764 1234567", "GB", "too long"},
           {"07700 454764", "", "country code"},
           {"+999 1234567", "GB", "country code"},
           {"+44 20 79x6 0958", "GB", "only digits"},
           {"++442079460958", "GB", "only digits"},
           {"+442079460958 ext 12", "GB", "only digits"},
           {"44+2079460958", "GB", "only digits"},
       }) {
    SCOPED_TRACE(c.value);
    absl::StatusOr<std::string> normalized =
        NormalizeIdentityValue("phone", c.value, c.region);
    ASSERT_FALSE(normalized.ok());
    EXPECT_EQ(normalized.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(normalized.status().message(),
                HasSubstr("not a valid phone number: "));
    EXPECT_THAT(normalized.status().message(), HasSubstr(c.reason));
    EXPECT_THAT(std::string(normalized.status().message()),
                Not(HasSubstr(c.value)));
  }
}

// Phones are remembered once parsed (identity.cc): the answer depends on
// the region as well as the value, errors are remembered as errors, and a
// full memo starts again without changing any answer.
TEST(NormalizeIdentityValue, RememberedPhonesKeepTheirRegionAndErrors) {
  for (int round = 0; round < 2; ++round) {
    EXPECT_EQ(Normalized("phone", "07700 454764", "GB"), "+447700454764");
    EXPECT_EQ(Normalized("phone", "202 555 0143", "US"), "+12025550143");
    EXPECT_EQ(
        NormalizeIdentityValue("phone", "07700 454764", "").status().code(),
        absl::StatusCode::kInvalidArgument);
  }
  for (int i = 0; i < 5000; ++i) {
    std::string national = absl::StrCat("07700 9", 10000 + i);
    ASSERT_EQ(Normalized("phone", national, "GB"),
              absl::StrCat("+4477009", 10000 + i));
  }
  EXPECT_EQ(Normalized("phone", "07700 454764", "GB"), "+447700454764");
}

TEST(NormalizeIdentityValue, UserIdsAreExactAndNeverNumbers) {
  for (const char* value : {"007", "+8", "9.0", "1e1", "Abc"}) {
    EXPECT_EQ(Normalized("user_id", value), value);
  }
  EXPECT_EQ(Normalized("user_id", " 42 "), "42");
}

TEST(NormalizeIdentityValue, CustomIdentitiesAreTrimmedOnly) {
  EXPECT_EQ(Normalized("customer_number", " C-0042 "), "C-0042");
  EXPECT_EQ(Normalized("customer_number", "C-0042"), "C-0042");
}

TEST(NormalizeIdentityValue, EmptyValuesAreInvalid) {
  for (const char* key : {"email", "phone", "user_id", "custom"}) {
    EXPECT_EQ(NormalizeIdentityValue(key, "  ", "GB").status().code(),
              absl::StatusCode::kInvalidArgument);
  }
}

TEST(NormalizeSubjectIdentity, KeepsTheTypeAndNormalizesTheValue) {
  v1::SubjectIdentity phone = IdentityFromKey("phone", "07700 454764");
  absl::StatusOr<v1::SubjectIdentity> normalized =
      NormalizeSubjectIdentity(phone, "GB");
  ASSERT_TRUE(normalized.ok()) << normalized.status();
  EXPECT_EQ(normalized->type(), v1::PHONE);
  EXPECT_EQ(normalized->value(), "+447700454764");
}

TEST(IdentityKeys, RoundTrip) {
  for (const char* key : {"email", "user_id", "phone", "customer_number"}) {
    EXPECT_EQ(IdentityKey(IdentityFromKey(key, "v")), key);
  }
  EXPECT_EQ(IdentityFromKey("email", "x").type(), v1::EMAIL);
  EXPECT_EQ(IdentityFromKey("loyalty", "x").type(), v1::CUSTOM);
  EXPECT_EQ(IdentityFromKey("loyalty", "x").custom_type(), "loyalty");
}

TEST(IsKnownPhoneRegion, AcceptsIsoCodesWithMetadata) {
  EXPECT_TRUE(IsKnownPhoneRegion("GB"));
  EXPECT_TRUE(IsKnownPhoneRegion("US"));
  EXPECT_FALSE(IsKnownPhoneRegion("gb"));
  EXPECT_FALSE(IsKnownPhoneRegion("UK"));  // Not ISO 3166 (that is GB).
  EXPECT_FALSE(IsKnownPhoneRegion("GBR"));
  EXPECT_FALSE(IsKnownPhoneRegion(""));
}

TEST(PhoneLookupForms, ListsTheWrittenFormsOfANumber) {
  EXPECT_THAT(PhoneLookupForms("+447700454764"),
              ElementsAre("+447700454764", "07700454764", "7700454764"));
  EXPECT_THAT(PhoneLookupForms("+12025550143"),
              ElementsAre("+12025550143", "2025550143"));
  EXPECT_THAT(PhoneLookupForms("07700454764"), IsEmpty());
  EXPECT_THAT(PhoneLookupForms("+44 7700 454764"), IsEmpty());
}

}  // namespace
}  // namespace dsar
