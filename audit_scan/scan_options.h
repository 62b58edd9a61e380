#ifndef DSAR_AUDIT_SCAN_SCAN_OPTIONS_H_
#define DSAR_AUDIT_SCAN_SCAN_OPTIONS_H_

// What a caller sets for the audit scans (store_scan.h, residue_check.h),
// and what a store's scan returns.

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "audit_scan/finding.h"
#include "audit_scan/subject_reference.h"

namespace dsar {

struct ScanOptions {
  // Makes the findings' subject references (required: a scan without one
  // is INVALID_ARGUMENT). Must outlive the scan.
  const SubjectReferencer* referencer = nullptr;
  // UNDECLARED_PII_FIELD: a field (or JSON key) whose value holds patterns
  // in more than this share of a collection's records (0 to 1) ...
  double undeclared_share = 0.2;
  // ... and in at least this many records.
  int64_t undeclared_min_records = 5;
  // Findings kept per collection; further ones are counted in
  // StoreScanResult::findings_not_listed, so that a store full of
  // violations does not make a report of unbounded size.
  int64_t max_findings_per_collection = 10000;
  // Once set, the scan stops with CANCELLED (may be null; must outlive the
  // scan).
  const std::atomic<bool>* cancel = nullptr;
};

// Records scanned in one collection.
struct CollectionCount {
  std::string collection;
  int64_t records_scanned = 0;
};

struct StoreScanResult {
  std::string store;
  std::vector<CollectionCount> collections;  // In inventory order.
  std::vector<Finding> findings;
  int64_t findings_not_listed = 0;

  int64_t records_scanned() const {
    int64_t total = 0;
    for (const CollectionCount& c : collections) total += c.records_scanned;
    return total;
  }
};

}  // namespace dsar

#endif  // DSAR_AUDIT_SCAN_SCAN_OPTIONS_H_
