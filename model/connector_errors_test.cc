#include "model/connector_errors.h"

#include "gtest/gtest.h"

namespace dsar {
namespace {

TEST(ConnectorErrorName, ClassifiesCodes) {
  EXPECT_EQ(ConnectorErrorName(absl::UnavailableError("")),
            "Connector.Unavailable");
  EXPECT_EQ(ConnectorErrorName(absl::DeadlineExceededError("")),
            "Connector.Unavailable");
  EXPECT_EQ(ConnectorErrorName(absl::AbortedError("")),
            "Connector.Unavailable");
  EXPECT_EQ(ConnectorErrorName(absl::ResourceExhaustedError("")),
            "Connector.Unavailable");
  EXPECT_EQ(ConnectorErrorName(absl::InvalidArgumentError("")),
            "Connector.InvalidValue");
  EXPECT_EQ(ConnectorErrorName(absl::PermissionDeniedError("")),
            "Connector.PermissionDenied");
  EXPECT_EQ(ConnectorErrorName(absl::NotFoundError("")),
            "Connector.SchemaMismatch");
  EXPECT_EQ(ConnectorErrorName(absl::DataLossError("")), "Connector.Corrupt");
  EXPECT_EQ(ConnectorErrorName(absl::InternalError("")), "Connector.Failed");
  EXPECT_EQ(ConnectorErrorName(absl::FailedPreconditionError("")),
            "Connector.Failed");
}

TEST(ConnectorErrorName, AnAttachedNameWins) {
  absl::Status conflict = WithErrorName(
      absl::FailedPreconditionError("ambiguous"), kErrorIdentityConflict);
  EXPECT_EQ(conflict.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(conflict.message(), "ambiguous");
  EXPECT_EQ(ConnectorErrorName(conflict), "Identity.Conflict");
  EXPECT_EQ(ConnectorErrorName(WithErrorName(absl::FailedPreconditionError(""),
                                             kErrorConstraintViolation)),
            "Connector.ConstraintViolation");
}

TEST(ConnectorErrorName, TransientNames) {
  EXPECT_TRUE(IsTransientErrorName("Connector.Unavailable"));
  EXPECT_TRUE(IsTransientErrorName("Connector.Failed"));
  for (const char* name :
       {"Connector.InvalidValue", "Connector.ConstraintViolation",
        "Connector.PermissionDenied", "Connector.SchemaMismatch",
        "Connector.Corrupt", "Identity.Conflict"}) {
    EXPECT_FALSE(IsTransientErrorName(name)) << name;
  }
}

}  // namespace
}  // namespace dsar
