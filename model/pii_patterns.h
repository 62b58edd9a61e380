#ifndef DSAR_MODEL_PII_PATTERNS_H_
#define DSAR_MODEL_PII_PATTERNS_H_

// Recognises columns that look like personal data, for `dsarctl inventory
// check` (docs/inventory.md, "Checking an inventory"): by the column's name
// and by sampled values. Only the kind found is ever reported, never a value.
// Heuristics: a match is a reason to look, not proof; a miss proves nothing.

#include <string>
#include <string_view>
#include <vector>

namespace dsar {

enum class PiiKind {
  kEmail,
  kPhone,
  kIpAddress,
  kPaymentCard,  // 13-19 digits passing the Luhn check.
  kNationalId,   // US SSN (123-45-6789) or UK National Insurance number.
  kName,         // By column name only.
  kPostalAddress,
  kBirthDate,
};

// "email", "phone", "ip_address", "payment_card", "national_id", "name",
// "postal_address", "birth_date".
const char* PiiKindName(PiiKind kind);

// The kinds a column's name suggests ("user_email", "msisdn", "ssn", ...).
std::vector<PiiKind> PiiKindsOfColumnName(std::string_view column);

// The kinds found in one sampled value (trimmed; empty for values longer
// than 256 bytes): PiiDetector::KindsInText (pii_detector.h), the detector
// the audit scans use too. Checks are strict enough that ordinary numbers
// and words rarely match (a phone needs a leading '+' or typical
// separators, a card the Luhn check).
std::vector<PiiKind> PiiKindsOfValue(std::string_view value);

// True when the card number's digits (separators ' ' and '-' ignored) pass
// the Luhn check and number 13 to 19.
bool LooksLikePaymentCard(std::string_view value);

}  // namespace dsar

#endif  // DSAR_MODEL_PII_PATTERNS_H_
