#ifndef DSAR_MODEL_FIELD_TYPES_H_
#define DSAR_MODEL_FIELD_TYPES_H_

// The declared type of a personal-data field (the inventory's field_types),
// which a rectified value must satisfy before any store is touched.

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace dsar {

enum class FieldType {
  kText,       // Any UTF-8 text (the default).
  kEmail,      // An email address: local@domain.tld, RFC 5321 lengths.
  kPhone,      // A phone number NormalizeIdentityValue("phone", ...) accepts.
  kUserId,     // Non-empty text without surrounding whitespace.
  kInteger,    // Canonical decimal int64: "42", "-7"; not "042" or "4.0".
  kDate,       // A calendar date, YYYY-MM-DD.
  kTimestamp,  // RFC 3339 UTC: YYYY-MM-DDTHH:MM:SS[.fff]Z.
};

// nullopt for an unknown name. Names: text, email, phone, user_id, integer,
// date, timestamp.
std::optional<FieldType> ParseFieldType(std::string_view name);
std::string_view FieldTypeName(FieldType type);
// The names ParseFieldType accepts, comma-separated, for error messages.
std::string KnownFieldTypeNames();

// OK when `value` is a value of `type`; otherwise INVALID_ARGUMENT whose
// message is the reason only ("not an email address"), never the value.
// `default_phone_region` as for NormalizeIdentityValue.
absl::Status ValidateFieldValue(FieldType type, std::string_view value,
                                std::string_view default_phone_region);

}  // namespace dsar

#endif  // DSAR_MODEL_FIELD_TYPES_H_
