#ifndef DSAR_ENGINE_REQUEST_VALIDATION_H_
#define DSAR_ENGINE_REQUEST_VALIDATION_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "dsar/v1/requests.pb.h"
#include "inventory/inventory.h"

namespace dsar {

// Checks a CreateRequest before anything is stored. INVALID_ARGUMENT names
// the field and the reason (`identities[1].value: not a valid email
// address`); UNIMPLEMENTED for request types the engine cannot run yet.
// Never echoes identity values: error messages end up in logs. Phone numbers
// must be ones the normaliser (model/identity.h) brings to E.164, reading
// numbers without a country code in `inventory.default_phone_region()`
// (`identities[0].value: not a valid phone number: too short`); an
// identity that passes is stored as NormalizeIdentity(identity,
// inventory.default_phone_region()) gives it. A RECTIFICATION's corrected
// values must fit the declared type of the field in every collection it
// applies to (inventory field_types; `corrections[0].value: not an email
// address`).
absl::Status ValidateCreateRequest(const v1::CreateRequestRequest& request,
                                   const Inventory& inventory);

// Request ids are dsard's ("dsr_" and a ULID); anything longer than
// kMaxRequestIdBytes or outside [A-Za-z0-9_-] is no id of ours.
inline constexpr size_t kMaxRequestIdBytes = 64;

// INVALID_ARGUMENT naming `field` when `id` is empty, too long or has other
// characters; the message quotes at most a short prefix of it.
absl::Status ValidateRequestId(absl::string_view field, absl::string_view id);

// At most the first 32 bytes of outside input, for an error message:
// "abc…" (and the length) when longer, so a megabyte-long id does not come
// back in the status.
std::string QuotedPrefix(absl::string_view value);

// Checks the id and reason of an operator action (cancel, retry, extend,
// pause, resume). `required_hint` empty: the reason is optional; otherwise
// it is required and the hint says what to give.
absl::Status ValidateIdAndReason(const std::string& id,
                                 const std::string& reason,
                                 absl::string_view required_hint);

}  // namespace dsar

#endif  // DSAR_ENGINE_REQUEST_VALIDATION_H_
