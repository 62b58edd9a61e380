#include "gateway/json_printer.h"

#include <google/protobuf/duration.pb.h>
#include <google/protobuf/field_mask.pb.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <google/protobuf/wrappers.pb.h>

#include <limits>

#include "dsar/v1/audit.pb.h"
#include "dsar/v1/requests.pb.h"
#include "gateway/testdata/echo.pb.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace dsar::gateway {
namespace {

// PrintJson must give the same JSON value as the library's printer.
void ExpectSameAsLibrary(const google::protobuf::Message& message) {
  std::string expected;
  ASSERT_TRUE(
      google::protobuf::util::MessageToJsonString(message, &expected).ok());
  absl::StatusOr<std::string> printed = PrintJson(message);
  ASSERT_TRUE(printed.ok()) << printed.status();
  nlohmann::json ours = nlohmann::json::parse(*printed, nullptr, false);
  ASSERT_FALSE(ours.is_discarded()) << *printed;
  EXPECT_EQ(ours, nlohmann::json::parse(expected))
      << "ours:    " << *printed << "\nlibrary: " << expected;
}

TEST(JsonPrinterTest, RequestWithEverySortOfField) {
  v1::Request request;
  request.set_id("dsr_1");
  request.set_type(v1::PORTABILITY);
  request.set_status(static_cast<v1::RequestStatus>(77));  // Unknown value.
  auto* identity = request.add_identities();
  identity->set_type(v1::EMAIL);
  identity->set_value("a\"b\\c\n\x01 \xc3\xa9t\xc3\xa9 <tag>");
  request.mutable_created_at()->set_seconds(1704164645);
  request.mutable_updated_at()->set_seconds(1704164645);
  request.mutable_updated_at()->set_nanos(120000000);
  request.mutable_completed_at()->set_nanos(1);
  auto* step = request.add_steps();
  step->set_store("accounts");
  step->set_status(v1::SUCCEEDED);
  step->set_attempts(4000000000u);
  step->set_record_count(-9007199254740993LL);
  request.add_steps();  // All defaults.
  request.mutable_bundle()->set_size_bytes(0);
  request.mutable_bundle()->add_files("manifest.json");
  request.add_stores("a");
  request.add_stores("");
  ExpectSameAsLibrary(request);
  ExpectSameAsLibrary(v1::Request());
}

TEST(JsonPrinterTest, BytesAndUnsigned64) {
  v1::Event event;
  event.set_sequence(std::numeric_limits<uint64_t>::max());
  event.set_previous_leaf_hash(std::string("\x00\xff\x10\x7f", 4));
  event.add_subject_hmacs("abc");
  ExpectSameAsLibrary(event);
  v1::GetEntriesResponse entries;
  entries.add_entries("x");
  entries.add_entries("");
  entries.add_entries("\xfb\xff");
  ExpectSameAsLibrary(entries);
}

TEST(JsonPrinterTest, WellKnownTypesAtTopLevelAndNested) {
  google::protobuf::Duration duration;
  duration.set_seconds(-3);
  duration.set_nanos(-500000000);
  ExpectSameAsLibrary(duration);
  google::protobuf::Int64Value wrapped;
  ExpectSameAsLibrary(wrapped);
  wrapped.set_value(12);
  ExpectSameAsLibrary(wrapped);
  google::protobuf::DoubleValue real;
  real.set_value(0.1);
  ExpectSameAsLibrary(real);
  real.set_value(1e300);
  ExpectSameAsLibrary(real);
  google::protobuf::FloatValue single;
  single.set_value(3.14159f);
  ExpectSameAsLibrary(single);
  google::protobuf::FieldMask mask;
  mask.add_paths("page_size");
  mask.add_paths("a.b_c");
  ExpectSameAsLibrary(mask);
  test::EchoResponse echo;
  echo.mutable_at()->set_seconds(-62135596800);  // 0001-01-01.
  echo.add_tags("t");
  ExpectSameAsLibrary(echo);
}

TEST(JsonPrinterTest, DynamicTypesGoToTheLibrary) {
  google::protobuf::Struct object;
  (*object.mutable_fields())["k"].set_number_value(1.5);
  (*object.mutable_fields())["n"].set_null_value(google::protobuf::NULL_VALUE);
  ExpectSameAsLibrary(object);
}

// Timestamps are formatted here, not by TimeUtil: the text must be the
// library's, byte for byte (3, 6 or 9 digits of fraction, or none).
TEST(JsonPrinterTest, TimestampsAreTheLibrarysText) {
  using google::protobuf::util::TimeUtil;
  const int64_t seconds[] = {TimeUtil::kTimestampMinSeconds,
                             TimeUtil::kTimestampMaxSeconds,
                             -1,
                             0,
                             951782400,  // 2000-02-29.
                             1704164645,
                             4107542399,  // 2100-02-28T23:59:59.
                             253402300799 - 86400 * 366};
  const int32_t nanos[] = {0,         1,         999,       1000,     1000000,
                           120000000, 123456000, 123456789, 999999999};
  for (int64_t s : seconds) {
    for (int32_t n : nanos) {
      google::protobuf::Timestamp timestamp;
      timestamp.set_seconds(s);
      timestamp.set_nanos(n);
      absl::StatusOr<std::string> printed = PrintJson(timestamp);
      ASSERT_TRUE(printed.ok()) << printed.status();
      EXPECT_EQ(*printed, "\"" + TimeUtil::ToString(timestamp) + "\"");
    }
  }
  // Every day of a leap year and of the years around it.
  for (int64_t s = 946684800; s < 946684800 + 3 * 366 * 86400; s += 86399) {
    google::protobuf::Timestamp timestamp;
    timestamp.set_seconds(s);
    EXPECT_EQ(*PrintJson(timestamp),
              "\"" + TimeUtil::ToString(timestamp) + "\"");
  }
}

// Strings keep their exact escaping: quotes, backslashes and control
// characters escaped, everything else (UTF-8 included) as it is.
TEST(JsonPrinterTest, StringEscapes) {
  google::protobuf::StringValue value;
  value.set_value(std::string("a\"b\\c\n\r\t\b\f\x01\x1f \xc3\xa9<>/", 18));
  absl::StatusOr<std::string> printed = PrintJson(value);
  ASSERT_TRUE(printed.ok());
  EXPECT_EQ(*printed,
            "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f \xc3\xa9<>/\"");
}

TEST(JsonPrinterTest, OutOfRangeTimestampIsAnError) {
  test::EchoResponse echo;
  echo.mutable_at()->set_seconds(std::numeric_limits<int64_t>::max());
  EXPECT_EQ(PrintJson(echo).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dsar::gateway
