#ifndef DSAR_AUDIT_SCAN_FINDING_H_
#define DSAR_AUDIT_SCAN_FINDING_H_

// What an audit scan reports (docs/audit-scan.md): one finding per signal,
// naming where it is (store, collection, field, JSON key path, record key)
// and whose it is (an opaque subject reference), but never a personal
// value.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dsar {

enum class Signal {
  // A record whose privacy status says opted out or erased still holds an
  // unscrubbed personal data field. One finding per such field. CRITICAL.
  kOptOutViolation,
  // A personal data pattern in a field the inventory does not declare as
  // personal data (metadata, JSON payloads, free text). MEDIUM.
  kDataRenameDetection,
  // An erased subject is still found in a store. CRITICAL.
  kErasureResidue,
  // A field (or JSON key inside one) holding patterns in more than the
  // configured share of a collection's records: input for the inventory.
  // LOW.
  kUndeclaredPiiField,
};

enum class Severity { kLow, kMedium, kHigh, kCritical };

// "OPT_OUT_VIOLATION", "DATA_RENAME_DETECTION", "ERASURE_RESIDUE",
// "UNDECLARED_PII_FIELD".
const char* SignalName(Signal signal);
// "LOW", "MEDIUM", "HIGH", "CRITICAL".
const char* SeverityName(Severity severity);
// The severity each signal has (see Signal).
Severity SeverityOf(Signal signal);
// Inverses of the names; false for an unknown name.
bool ParseSignal(std::string_view name, Signal* signal);
bool ParseSeverity(std::string_view name, Severity* severity);

struct Finding {
  Signal signal = Signal::kDataRenameDetection;
  Severity severity = Severity::kMedium;
  std::string store;
  std::string collection;
  // The column or top-level JSON field.
  std::string field;
  // Inside `field`'s value, the JSON key path ("backup_contact"); empty
  // when the finding is about the field's value as a whole.
  std::string json_path;
  // The record (CollectionSpec::record_key, else rowid, ctid or line
  // number); empty for UNDECLARED_PII_FIELD, which is about a field.
  std::string record_key;
  // Opaque: a keyed hash (subject_reference.h). Empty for
  // UNDECLARED_PII_FIELD.
  std::string subject_reference;
  // The pattern kinds found ("email", "phone", ...; PiiKindName), for
  // DATA_RENAME_DETECTION and UNDECLARED_PII_FIELD.
  std::vector<std::string> patterns;
  // UNDECLARED_PII_FIELD: records whose field matched, of records scanned.
  int64_t matching_records = 0;
  int64_t records_scanned = 0;
};

// The finding's stable identity across runs, for report diffs:
// signal, store, collection, field (with its JSON path) and record key.
std::string FindingIdentity(const Finding& finding);

}  // namespace dsar

#endif  // DSAR_AUDIT_SCAN_FINDING_H_
