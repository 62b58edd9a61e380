#include "model/pii_detector.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dsar {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

const PiiDetector& Detector() { return PiiDetector::Default(); }

TEST(PiiDetectorTest, FindsEachKindInFreeText) {
  EXPECT_THAT(Detector().KindsInText("mail ann.b@example.co.uk today"),
              ElementsAre(PiiKind::kEmail));
  EXPECT_THAT(Detector().KindsInText("call +44 7700 900123."),
              ElementsAre(PiiKind::kPhone));
  EXPECT_THAT(Detector().KindsInText("office (555) 010-4477"),
              ElementsAre(PiiKind::kPhone));
  EXPECT_THAT(Detector().KindsInText("mobile 07700 900123"),
              ElementsAre(PiiKind::kPhone));
  EXPECT_THAT(Detector().KindsInText("from 192.0.2.17 at noon"),
              ElementsAre(PiiKind::kIpAddress));
  EXPECT_THAT(Detector().KindsInText("client 2001:db8::1"),
              ElementsAre(PiiKind::kIpAddress));
  EXPECT_THAT(Detector().KindsInText("paid with 4111 1111 1111 1111"),
              ElementsAre(PiiKind::kPaymentCard));
  EXPECT_THAT(Detector().KindsInText("ssn 078-05-1120"),
              ElementsAre(PiiKind::kNationalId));
  EXPECT_THAT(Detector().KindsInText("NI QQ 12 34 56 C"),
              ElementsAre(PiiKind::kNationalId));
  EXPECT_THAT(Detector().KindsInText("a@b.org and 192.0.2.1"),
              ElementsAre(PiiKind::kEmail, PiiKind::kIpAddress));
}

TEST(PiiDetectorTest, LuhnInvalidSixteenDigitsIsNotACard) {
  EXPECT_THAT(Detector().KindsInText("4111111111111112"), IsEmpty());
  EXPECT_THAT(Detector().KindsInText("order 4111 1111 1111 1112"), IsEmpty());
  EXPECT_THAT(Detector().KindsInText("4111111111111111"),
              ElementsAre(PiiKind::kPaymentCard));
  // Epoch milliseconds pass Luhn now and then; no card starts with 1.
  EXPECT_THAT(Detector().KindsInText("1767697200003"), IsEmpty());
}

TEST(PiiDetectorTest, OrdinaryTextIsClean) {
  for (const char* text :
       {"12345678", "2024-01-02", "2026-01-06T11:00:00Z", "blue widget", "a@b",
        "666-12-3456", "version 10:30", "order 555-0199", "ref 00000000",
        "http://example.org/path"}) {
    EXPECT_THAT(Detector().KindsInText(text), IsEmpty()) << text;
  }
}

TEST(PiiDetectorTest, LocalNumberCountsOnlyUnderAContactName) {
  EXPECT_THAT(Detector().KindsInText("555-0199"), IsEmpty());
  EXPECT_THAT(Detector().KindsInText("555-0199", "part_number"), IsEmpty());
  EXPECT_THAT(Detector().KindsInText("555-0199", "backup_contact"),
              ElementsAre(PiiKind::kPhone));
  EXPECT_THAT(Detector().KindsInText("555-0199", "home_tel"),
              ElementsAre(PiiKind::kPhone));
  EXPECT_THAT(Detector().KindsInText("555-0199", "hotel"), IsEmpty());
}

TEST(PiiDetectorTest, LooksIntoJsonStringsNestedInAField) {
  // Seed 002's metadata column.
  EXPECT_THAT(
      Detector().FindInField("metadata", R"({"backup_contact": "555-0199"})"),
      ElementsAre(PiiMatch{PiiKind::kPhone, "backup_contact"}));
  // JSON text inside a JSON string inside the field, and arrays.
  EXPECT_THAT(
      Detector().FindInField(
          "payload",
          R"({"extra": "{\"contacts\": [{\"mail\": \"x@example.org\"}]}",)"
          R"( "ip": "192.0.2.9", "n": 4111111111111111})"),
      UnorderedElementsAre(PiiMatch{PiiKind::kEmail, "extra.contacts[0].mail"},
                           PiiMatch{PiiKind::kIpAddress, "ip"},
                           PiiMatch{PiiKind::kPaymentCard, "n"}));
  // Plain text: no path.
  EXPECT_THAT(Detector().FindInField("notes", "write to x@example.org"),
              ElementsAre(PiiMatch{PiiKind::kEmail, ""}));
  EXPECT_THAT(Detector().FindInField("notes", R"({"colour": "blue"})"),
              IsEmpty());
  // Not JSON after all: searched as text.
  EXPECT_THAT(Detector().FindInField("notes", "{ x@example.org"),
              ElementsAre(PiiMatch{PiiKind::kEmail, ""}));
}

TEST(PiiDetectorTest, EscapesInJsonAreDecodedBeforeSearching) {
  // Raw, "n4111" has no word boundary and "\u0040" is no "@": found only
  // once the JSON string is decoded.
  EXPECT_THAT(Detector().FindInField(
                  "notes", R"({"text": "line\n4111 1111 1111 1111"})"),
              ElementsAre(PiiMatch{PiiKind::kPaymentCard, "text"}));
  EXPECT_THAT(
      Detector().FindInField("notes", R"({"to": "ann\u0040example.org"})"),
      ElementsAre(PiiMatch{PiiKind::kEmail, "to"}));
}

TEST(PiiDetectorTest, KeyHoldingAPatternIsNotWrittenInThePath) {
  std::vector<PiiMatch> found = Detector().FindInField(
      "metadata", R"({"by_mail": {"ann@example.org": {"ip": "192.0.2.1"}}})");
  EXPECT_THAT(found, UnorderedElementsAre(
                         PiiMatch{PiiKind::kEmail, "by_mail.*"},
                         PiiMatch{PiiKind::kIpAddress, "by_mail.*.ip"}));
}

TEST(PiiDetectorTest, DepthIsBounded) {
  std::string deep = "\"x@example.org\"";
  for (int i = 0; i < 40; ++i) deep = "[" + deep + "]";
  std::vector<PiiMatch> found = Detector().FindInField("f", deep);
  // Too deep to walk, so nothing is reported from inside, and nothing
  // crashes; a shallow copy is found.
  EXPECT_THAT(found, IsEmpty());
  EXPECT_THAT(Detector().FindInField("f", "[[\"x@example.org\"]]"),
              ElementsAre(PiiMatch{PiiKind::kEmail, "[0][0]"}));
}

}  // namespace
}  // namespace dsar
