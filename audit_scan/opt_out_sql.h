#ifndef DSAR_AUDIT_SCAN_OPT_OUT_SQL_H_
#define DSAR_AUDIT_SCAN_OPT_OUT_SQL_H_

// The OPT_OUT_VIOLATION check written as an SQL condition, so that a
// PostgreSQL store evaluates it where the data lives and sends back only
// the violating rows (docs/audit-scan.md, "PostgreSQL"). It says what
// record_audit.h's UnscrubbedFields says, which confirms each row again.

#include <optional>
#include <string>
#include <vector>

#include "inventory/inventory.h"
#include "workers/connectors/postgres.h"

namespace dsar {

// The condition selecting the rows of `collection` whose privacy status
// (trimmed, lowercased) is an opted_out value, whose restriction flag (if
// declared) is not set, and that hold at least one checked field
// (OptOutCheckedFields) that is not NULL, not blank, not a declared or
// masked placeholder and not a digest where those count as scrubbed.
// Values are appended to `params` and written $n; names go through
// `quote`. nullopt when the collection declares no privacy status or has
// no field to check.
std::optional<std::string> OptOutViolationSql(
    const CollectionSpec& collection, const PostgresRowScan::Quote& quote,
    std::vector<std::string>* params);

}  // namespace dsar

#endif  // DSAR_AUDIT_SCAN_OPT_OUT_SQL_H_
