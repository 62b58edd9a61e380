#ifndef DSAR_AUDIT_SCAN_RECORD_AUDIT_H_
#define DSAR_AUDIT_SCAN_RECORD_AUDIT_H_

// The checks of one collection's records, whatever store they come from:
// OPT_OUT_VIOLATION and DATA_RENAME_DETECTION per record, and the counts
// behind UNDECLARED_PII_FIELD (docs/audit-scan.md, "Signals"). The store
// scanners (store_scan.h) feed it records; it never keeps a value, only
// per-field counts.

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "audit_scan/scan_options.h"
#include "inventory/inventory.h"
#include "workers/connectors/record_scan.h"

namespace dsar {

// The fields checked in a record whose status says opted out: the
// collection's pii_fields and its email and phone identity fields, minus
// the status field itself. Sorted.
std::vector<std::string> OptOutCheckedFields(const CollectionSpec& collection);

// What counts as scrubbed in `field` besides empty (after trimming), null
// and absent: the declared placeholders, the fixed text of the field's own
// erase mask, and digests (64 lowercase hex digits for scrubbed_hashes or a
// `hash` mask, 32 for scrubbed_hashes or a `random` mask).
struct ScrubbedForms {
  std::set<std::string> values;
  bool hex64 = false;
  bool hex32 = false;
};
ScrubbedForms ScrubbedFormsOf(const CollectionSpec& collection,
                              const std::string& field);

// True when the record's status (compared ignoring case) is one of the
// collection's opted_out values, and neither a restricted value nor a set
// restriction processing flag says processing is only restricted.
// False when the collection declares no privacy_status.
bool IsOptedOut(const CollectionSpec& collection, const ScannedRecord& record);

// The checked fields (OptOutCheckedFields) of an opted-out record that hold
// an unscrubbed value; empty when the record is not opted out.
std::vector<std::string> UnscrubbedFields(const CollectionSpec& collection,
                                          const ScannedRecord& record);

// Audits the records of one collection. Not thread-safe; one per scan.
class CollectionAudit {
 public:
  // `store`, `collection`, `options` and `out` must outlive the audit.
  CollectionAudit(const StoreSpec& store, const CollectionSpec& collection,
                  const ScanOptions& options, StoreScanResult* out);

  // Adds an OPT_OUT_VIOLATION finding per unscrubbed field of `record`
  // when it is opted out. Does not count the record.
  void CheckOptOut(const ScannedRecord& record);

  // Counts the record, adds a DATA_RENAME_DETECTION finding per field (and
  // JSON key path in it) that the inventory does not declare and that holds
  // a pattern (pii_detector.h), and counts those for UNDECLARED_PII_FIELD.
  void CheckPatterns(const ScannedRecord& record);

  // Adds the UNDECLARED_PII_FIELD findings and the collection's count to
  // `out`. Call once, after the last record.
  void Finish();

 private:
  void Add(Finding finding);
  Finding At(Signal signal, const std::string& field, const std::string& path,
             const ScannedRecord& record) const;

  const StoreSpec& store_;
  const CollectionSpec& collection_;
  const ScanOptions& options_;
  StoreScanResult* out_;
  // Fields not searched for patterns; looked up by string_view.
  std::set<std::string, std::less<>> declared_;
  int64_t records_ = 0;
  int64_t listed_ = 0;
  // (field, JSON path) -> records matching and the kinds seen. Bounded by
  // kMaxTrackedFields.
  struct FieldStats {
    int64_t records = 0;
    std::set<std::string> kinds;
  };
  std::map<std::pair<std::string, std::string>, FieldStats> stats_;
};

}  // namespace dsar

#endif  // DSAR_AUDIT_SCAN_RECORD_AUDIT_H_
