#include "gateway/error_response.h"

#include "absl/strings/ascii.h"
#include "nlohmann/json.hpp"

namespace dsar::gateway {
namespace {

// A field path as the project writes it: identifiers joined by "." with
// optional "[index]" suffixes, e.g. "identities[0].value".
bool IsFieldPath(absl::string_view text) {
  if (text.empty()) return false;
  bool expect_identifier_start = true;
  bool in_index = false;
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if (in_index) {
      if (c == ']') {
        in_index = false;
      } else if (!absl::ascii_isdigit(u)) {
        return false;
      }
      continue;
    }
    if (expect_identifier_start) {
      if (!(absl::ascii_isalpha(u) || c == '_')) return false;
      expect_identifier_start = false;
    } else if (c == '.') {
      expect_identifier_start = true;
    } else if (c == '[') {
      in_index = true;
    } else if (!(absl::ascii_isalnum(u) || c == '_')) {
      return false;
    }
  }
  return !expect_identifier_start && !in_index;
}

}  // namespace

int HttpStatusForCode(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kCancelled:
      return 499;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kDataLoss:
    default:
      return 500;
  }
}

std::optional<FieldViolation> FieldViolationOf(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kInvalidArgument) return std::nullopt;
  absl::string_view message = status.message();
  size_t colon = message.find(": ");
  if (colon == absl::string_view::npos ||
      !IsFieldPath(message.substr(0, colon))) {
    return std::nullopt;
  }
  return FieldViolation{std::string(message.substr(0, colon)),
                        std::string(message.substr(colon + 2))};
}

std::string ErrorJson(const absl::Status& status) {
  nlohmann::json body = {{"code", static_cast<int>(status.code())},
                         {"message", std::string(status.message())}};
  if (std::optional<FieldViolation> violation = FieldViolationOf(status)) {
    body["details"] = nlohmann::json::array(
        {{{"@type", "type.googleapis.com/google.rpc.BadRequest"},
          {"fieldViolations",
           nlohmann::json::array(
               {{{"field", violation->field},
                 {"description", violation->description}}})}}});
  }
  // Replace invalid UTF-8 rather than throw: messages may quote user input.
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace dsar::gateway
