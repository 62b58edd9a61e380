#include "gateway/request_bounds.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dsar {
namespace {

using ::testing::HasSubstr;

TEST(RequestBoundsTest, Utf8IsCheckedAsProtobufStringsNeedIt) {
  EXPECT_TRUE(IsValidUtf8("dsr_01HZX"));
  EXPECT_TRUE(IsValidUtf8("Zoë Łukasz 日本 😀"));
  EXPECT_FALSE(IsValidUtf8("\xff\xfe"));
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // Overlong '/'.
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // Surrogate U+D800.
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // Past U+10FFFF.
  EXPECT_FALSE(IsValidUtf8("abc\xe2\x82"));       // Cut short.
}

// The body that crashed the gateway: a value nested 300,000 deep.
TEST(RequestBoundsTest, DeepJsonIsRefusedBeforeParsing) {
  const std::string deep = std::string(300000, '[') + std::string(300000, ']');
  absl::Status status =
      CheckJsonDepth(absl::StrCat(R"({"requestType":)", deep, "}"));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("nested deeper than 64"));
  EXPECT_TRUE(CheckJsonDepth(std::string(kMaxJsonDepth, '[') +
                             std::string(kMaxJsonDepth, ']'))
                  .ok());
  // Brackets inside strings do not count.
  EXPECT_TRUE(
      CheckJsonDepth(absl::StrCat(R"({"a":")", std::string(1000, '['), "\"}"))
          .ok());
  EXPECT_TRUE(CheckJsonDepth(R"({"a":"\"[[[[["})").ok());
}

TEST(RequestBoundsTest, PathsAndQueriesMustBeUtf8AndShort) {
  EXPECT_TRUE(
      CheckRequestBounds("/v1/requests/dsr_1", {{"page_size", "10"}}, "").ok());
  absl::Status path = CheckRequestBounds("/v1/requests/\xff\xfe", {}, "");
  EXPECT_EQ(path.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(path.message(), HasSubstr("path: not valid UTF-8"));
  absl::Status query =
      CheckRequestBounds("/v1/requests", {{"page_token", "\xff"}}, "");
  EXPECT_EQ(query.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(query.message(), HasSubstr("page_token"));
  absl::Status long_path =
      CheckRequestBounds("/v1/requests/" + std::string(1 << 20, 'a'), {}, "");
  EXPECT_EQ(long_path.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LT(long_path.message().size(), 100u);
}

}  // namespace
}  // namespace dsar
