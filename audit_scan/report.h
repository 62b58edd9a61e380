#ifndef DSAR_AUDIT_SCAN_REPORT_H_
#define DSAR_AUDIT_SCAN_REPORT_H_

// The compliance report of an audit run, in seed 002's shape
// (docs/audit-scan.md, "The report"):
//   {"audit_timestamp": "2026-01-06T01:05:00Z",
//    "total_records_scanned": 1500000,
//    "privacy_signals_detected": [
//      {"subject_reference": "sref:...", "signal": "OPT_OUT_VIOLATION",
//       "severity": "CRITICAL", "store": "users", "collection": "users",
//       "field": "email", "record_key": "42"}, ...],
//    "compliance_status": "NON_COMPLIANT",
//    "records_scanned": [{"store", "collection", "records"}, ...],
//    "stores_not_scanned": [{"store", "error"}, ...],
//    "findings_not_listed": 0}
// and the difference between two reports. A report holds no personal value:
// findings name places and opaque references only, and store errors come
// from connectors whose messages never quote values.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "audit_scan/finding.h"
#include "audit_scan/scan_options.h"
#include "nlohmann/json.hpp"

namespace dsar {

struct StoreFailure {
  std::string store;
  std::string error;  // The status, as text.
};

struct StoreCollectionCount {
  std::string store;
  std::string collection;
  int64_t records = 0;
};

struct AuditReport {
  absl::Time audit_timestamp;
  int64_t total_records_scanned = 0;
  std::vector<Finding> findings;
  // "NON_COMPLIANT": a finding of severity MEDIUM or above. Else
  // "INCOMPLETE": a store could not be scanned. Else "COMPLIANT" (LOW
  // findings, UNDECLARED_PII_FIELD, are advice for the inventory).
  std::string compliance_status;
  std::vector<StoreCollectionCount> records_scanned;
  std::vector<StoreFailure> stores_not_scanned;
  int64_t findings_not_listed = 0;
};

// The report of a run at `at` over the stores scanned (`results`, with any
// residue findings added to one of them by the caller) and those that
// failed (`failures`: store name and status).
AuditReport BuildAuditReport(
    absl::Time at, const std::vector<StoreScanResult>& results,
    const std::vector<std::pair<std::string, absl::Status>>& failures);

// The report as JSON (shape above). Findings keep their order; optional
// finding members (collection, json_path, record_key, subject_reference,
// patterns, matching_records) appear only when set.
nlohmann::ordered_json AuditReportToJson(const AuditReport& report);

// Reads a report written by AuditReportToJson (one kept by dsard).
// INVALID_ARGUMENT naming the member that is missing or malformed.
absl::StatusOr<AuditReport> AuditReportFromJson(const nlohmann::json& json);

struct AuditReportDiff {
  std::vector<Finding> new_findings;       // In `current` only.
  std::vector<Finding> resolved_findings;  // In `previous` only.
};

// Findings compared by FindingIdentity (signal, store, collection, field
// with JSON path, record key): new ones in `current`'s order, resolved ones
// in `previous`'s.
AuditReportDiff DiffAuditReports(const AuditReport& previous,
                                 const AuditReport& current);

}  // namespace dsar

#endif  // DSAR_AUDIT_SCAN_REPORT_H_
