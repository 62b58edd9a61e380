#ifndef DSAR_GATEWAY_ERROR_RESPONSE_H_
#define DSAR_GATEWAY_ERROR_RESPONSE_H_

// Errors as REST clients see them: the HTTP status of a google.rpc.Code
// (the mapping of google/rpc/code.proto) and a google.rpc.Status JSON body.

#include <optional>
#include <string>

#include "absl/status/status.h"

namespace dsar::gateway {

// The HTTP status for a canonical code: INVALID_ARGUMENT, FAILED_PRECONDITION
// and OUT_OF_RANGE 400, UNAUTHENTICATED 401, PERMISSION_DENIED 403, NOT_FOUND
// 404, ALREADY_EXISTS and ABORTED 409, RESOURCE_EXHAUSTED 429, CANCELLED 499,
// UNIMPLEMENTED 501, UNAVAILABLE 503, DEADLINE_EXCEEDED 504, others 500.
int HttpStatusForCode(absl::StatusCode code);

// {"code": <number>, "message": ..., "details": [...]}. For INVALID_ARGUMENT
// whose message has the project's "<field path>: <reason>" form (the
// coordinator's and the transcoder's), details holds one
// google.rpc.BadRequest with that field violation.
std::string ErrorJson(const absl::Status& status);

// One bad field of a request, as google.rpc.BadRequest names it.
struct FieldViolation {
  std::string field;        // A field path: "identities[0].value".
  std::string description;  // The reason: "not a valid email address".
};

// The field violation of an INVALID_ARGUMENT `status` whose message has the
// "<field path>: <reason>" form; nullopt for any other status or message.
std::optional<FieldViolation> FieldViolationOf(const absl::Status& status);

}  // namespace dsar::gateway

#endif  // DSAR_GATEWAY_ERROR_RESPONSE_H_
