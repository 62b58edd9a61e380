// PiiDetector::FindInField over arbitrary field values: the audit scans
// (audit_scan/) run it on every undeclared field of every record, and the
// stores' contents are written by other programs, so any bytes, any JSON
// nesting and JSON text inside JSON strings reach it.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "model/pii_detector.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Byte 0 picks the field name (the context of a 7-digit local number).
  if (size == 0) return 0;
  const char* field = data[0] % 2 == 0 ? "metadata" : "backup_contact";
  std::string_view value(reinterpret_cast<const char*>(data + 1), size - 1);
  const dsar::PiiDetector& detector = dsar::PiiDetector::Default();
  std::vector<dsar::PiiMatch> matches = detector.FindInField(field, value);
  std::vector<dsar::PiiKind> kinds = detector.KindsInText(value, field);
  for (const dsar::PiiMatch& match : matches) {
    // Only the value's own text has an empty path; what it finds there the
    // plain text search finds too (a value that is not JSON).
    FUZZ_CHECK(match.kind != dsar::PiiKind::kName &&
                   match.kind != dsar::PiiKind::kPostalAddress &&
                   match.kind != dsar::PiiKind::kBirthDate,
               dsar::PiiKindName(match.kind));
    if (match.path.empty()) {
      bool also_in_text = false;
      for (dsar::PiiKind kind : kinds) also_in_text |= kind == match.kind;
      FUZZ_CHECK(also_in_text, dsar::PiiKindName(match.kind));
    }
  }
  return 0;
}
