#include "gateway/error_response.h"

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace dsar::gateway {
namespace {

TEST(ErrorResponseTest, StandardHttpMapping) {
  using C = absl::StatusCode;
  EXPECT_EQ(HttpStatusForCode(C::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusForCode(C::kFailedPrecondition), 400);
  EXPECT_EQ(HttpStatusForCode(C::kOutOfRange), 400);
  EXPECT_EQ(HttpStatusForCode(C::kUnauthenticated), 401);
  EXPECT_EQ(HttpStatusForCode(C::kPermissionDenied), 403);
  EXPECT_EQ(HttpStatusForCode(C::kNotFound), 404);
  EXPECT_EQ(HttpStatusForCode(C::kAlreadyExists), 409);
  EXPECT_EQ(HttpStatusForCode(C::kAborted), 409);
  EXPECT_EQ(HttpStatusForCode(C::kResourceExhausted), 429);
  EXPECT_EQ(HttpStatusForCode(C::kCancelled), 499);
  EXPECT_EQ(HttpStatusForCode(C::kInternal), 500);
  EXPECT_EQ(HttpStatusForCode(C::kUnknown), 500);
  EXPECT_EQ(HttpStatusForCode(C::kDataLoss), 500);
  EXPECT_EQ(HttpStatusForCode(C::kUnimplemented), 501);
  EXPECT_EQ(HttpStatusForCode(C::kUnavailable), 503);
  EXPECT_EQ(HttpStatusForCode(C::kDeadlineExceeded), 504);
}

TEST(ErrorResponseTest, InvalidArgumentWithFieldPathGetsAViolation) {
  nlohmann::json body = nlohmann::json::parse(ErrorJson(
      absl::InvalidArgumentError("identities[0].value: not an email address")));
  EXPECT_EQ(body["code"], 3);
  EXPECT_EQ(body["message"], "identities[0].value: not an email address");
  ASSERT_EQ(body["details"].size(), 1u);
  EXPECT_EQ(body["details"][0]["@type"],
            "type.googleapis.com/google.rpc.BadRequest");
  EXPECT_EQ(body["details"][0]["fieldViolations"][0]["field"],
            "identities[0].value");
  EXPECT_EQ(body["details"][0]["fieldViolations"][0]["description"],
            "not an email address");
}

TEST(ErrorResponseTest, NoViolationWithoutAFieldPath) {
  for (const char* message :
       {"request body is not a valid JSON object: Unexpected end",
        "no field here", "2bad: starts with a digit", ": empty"}) {
    nlohmann::json body =
        nlohmann::json::parse(ErrorJson(absl::InvalidArgumentError(message)));
    EXPECT_FALSE(body.contains("details")) << message;
  }
  nlohmann::json not_found =
      nlohmann::json::parse(ErrorJson(absl::NotFoundError("id: no request")));
  EXPECT_EQ(not_found["code"], 5);
  EXPECT_FALSE(not_found.contains("details"));
}

TEST(ErrorResponseTest, FieldViolationOfSplitsFieldAndReason) {
  std::optional<FieldViolation> violation = FieldViolationOf(
      absl::InvalidArgumentError("identities[0].value: not an email address"));
  ASSERT_TRUE(violation.has_value());
  EXPECT_EQ(violation->field, "identities[0].value");
  EXPECT_EQ(violation->description, "not an email address");
  EXPECT_FALSE(FieldViolationOf(absl::InvalidArgumentError("no field here"))
                   .has_value());
  EXPECT_FALSE(
      FieldViolationOf(absl::NotFoundError("id: no request")).has_value());
}

TEST(ErrorResponseTest, InvalidUtf8InMessagesIsReplaced) {
  nlohmann::json body = nlohmann::json::parse(
      ErrorJson(absl::InvalidArgumentError("x: bad \xff byte")));
  EXPECT_EQ(body["code"], 3);
}

}  // namespace
}  // namespace dsar::gateway
