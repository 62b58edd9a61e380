#ifndef DSAR_AUDIT_SCAN_STORE_SCAN_H_
#define DSAR_AUDIT_SCAN_STORE_SCAN_H_

// The audit scan of one store (docs/audit-scan.md): every record of every
// collection, checked for OPT_OUT_VIOLATION, DATA_RENAME_DETECTION and
// UNDECLARED_PII_FIELD (record_audit.h), against a point-in-time view,
// streaming:
//   - sqlite: one read transaction, row by row (SqliteConnector::
//     ScanRecords).
//   - jsonl: line by line up to the log's length at the start, under the
//     log's shared lock (JsonlConnector::ScanRecords).
//   - postgres: one REPEATABLE READ READ ONLY transaction; the opt-out check
//     runs in the server as a WHERE clause (opt_out_sql.h), only violating
//     rows come back; the pattern checks stream every row through a
//     server-side cursor (PostgresConnector::ScanRecords).

#include "absl/status/statusor.h"
#include "audit_scan/scan_options.h"
#include "inventory/inventory.h"

namespace dsar {

// Scans `store`. INVALID_ARGUMENT without options.referencer;
// FAILED_PRECONDITION for a store no scan reaches (manual, opendsr: the
// data is not ours to read); otherwise the connector's errors (UNAVAILABLE
// when the store cannot be opened, NOT_FOUND for a table or column the
// inventory names but the store lacks, CANCELLED once options.cancel is
// set), whose messages never hold a value. On error no partial result is
// returned.
absl::StatusOr<StoreScanResult> ScanStore(const StoreSpec& store,
                                          const ScanOptions& options);

}  // namespace dsar

#endif  // DSAR_AUDIT_SCAN_STORE_SCAN_H_
