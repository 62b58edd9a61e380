#include "model/connector_errors.h"

#include "absl/strings/cord.h"

namespace dsar {
namespace {

// The payload key under which WithErrorName stores the name.
constexpr char kErrorNameUrl[] = "type.dsar.dev/dsar.ErrorName";

}  // namespace

absl::Status WithErrorName(absl::Status status, std::string_view name) {
  status.SetPayload(kErrorNameUrl,
                    absl::Cord(absl::string_view(name.data(), name.size())));
  return status;
}

std::string ConnectorErrorName(const absl::Status& status) {
  if (auto name = status.GetPayload(kErrorNameUrl); name.has_value()) {
    return std::string(*name);
  }
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kResourceExhausted:
      return std::string(kErrorUnavailable);
    case absl::StatusCode::kInvalidArgument:
      return std::string(kErrorInvalidValue);
    case absl::StatusCode::kPermissionDenied:
      return std::string(kErrorPermissionDenied);
    case absl::StatusCode::kNotFound:
      return std::string(kErrorSchemaMismatch);
    case absl::StatusCode::kDataLoss:
      return std::string(kErrorCorrupt);
    default:
      return std::string(kErrorFailed);
  }
}

bool IsTransientErrorName(std::string_view name) {
  return name == kErrorUnavailable || name == kErrorFailed;
}

}  // namespace dsar
