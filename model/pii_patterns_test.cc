#include "model/pii_patterns.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dsar {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(PiiPatternsTest, ColumnNames) {
  EXPECT_THAT(PiiKindsOfColumnName("user_email"), ElementsAre(PiiKind::kEmail));
  EXPECT_THAT(PiiKindsOfColumnName("MSISDN"), ElementsAre(PiiKind::kPhone));
  EXPECT_THAT(PiiKindsOfColumnName("last_login_ip"),
              ElementsAre(PiiKind::kIpAddress));
  EXPECT_THAT(PiiKindsOfColumnName("ip_address"),
              ElementsAre(PiiKind::kIpAddress));
  EXPECT_THAT(PiiKindsOfColumnName("ssn"), ElementsAre(PiiKind::kNationalId));
  EXPECT_THAT(PiiKindsOfColumnName("billing_address"),
              ElementsAre(PiiKind::kPostalAddress));
  EXPECT_THAT(PiiKindsOfColumnName("date_of_birth"),
              ElementsAre(PiiKind::kBirthDate));
  EXPECT_THAT(PiiKindsOfColumnName("amount_cents"), IsEmpty());
  EXPECT_THAT(PiiKindsOfColumnName("shipping_zone"), IsEmpty());
  EXPECT_THAT(PiiKindsOfColumnName("description"), IsEmpty());
}

TEST(PiiPatternsTest, Values) {
  EXPECT_THAT(PiiKindsOfValue(" Anna.B@example.co.uk "),
              ElementsAre(PiiKind::kEmail));
  EXPECT_THAT(PiiKindsOfValue("+44 7700 900123"), ElementsAre(PiiKind::kPhone));
  EXPECT_THAT(PiiKindsOfValue("(555) 010-4477"), ElementsAre(PiiKind::kPhone));
  EXPECT_THAT(PiiKindsOfValue("192.0.2.17"), ElementsAre(PiiKind::kIpAddress));
  EXPECT_THAT(PiiKindsOfValue("2001:db8::1"), ElementsAre(PiiKind::kIpAddress));
  // A test Visa number passes Luhn; one digit off does not.
  EXPECT_THAT(PiiKindsOfValue("4111 1111 1111 1111"),
              ElementsAre(PiiKind::kPaymentCard));
  EXPECT_FALSE(LooksLikePaymentCard("4111 1111 1111 1112"));
  EXPECT_THAT(PiiKindsOfValue("078-05-1120"),
              ElementsAre(PiiKind::kNationalId));
  EXPECT_THAT(PiiKindsOfValue("QQ 12 34 56 C"),
              ElementsAre(PiiKind::kNationalId));
  // Ordinary values.
  EXPECT_THAT(PiiKindsOfValue("12345678"), IsEmpty());
  EXPECT_THAT(PiiKindsOfValue("2024-01-02"), IsEmpty());
  EXPECT_THAT(PiiKindsOfValue("blue widget"), IsEmpty());
  EXPECT_THAT(PiiKindsOfValue("a@b"), IsEmpty());
  EXPECT_THAT(PiiKindsOfValue("666-12-3456"), IsEmpty());
}

}  // namespace
}  // namespace dsar
