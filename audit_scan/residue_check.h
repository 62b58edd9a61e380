#ifndef DSAR_AUDIT_SCAN_RESIDUE_CHECK_H_
#define DSAR_AUDIT_SCAN_RESIDUE_CHECK_H_

// Post-erasure verification (docs/audit-scan.md, "Erasure residue"): does
// a store still hold the erased subject? It asks the store's connector for
// the subject's records the way an export finds them (through the store's
// indexes, never a whole-store scan; connector.h, "Matching"), so that
// what the erasure was supposed to remove is exactly what is looked for.
// Read-only.

#include <vector>

#include "absl/status/statusor.h"
#include "audit_scan/finding.h"
#include "audit_scan/scan_options.h"
#include "inventory/inventory.h"
#include "workers/connectors/connector.h"

namespace dsar {

// One ERASURE_RESIDUE finding (CRITICAL) per record of `store` that still
// matches `identities`, per identity field through which it matches
// (field: that identity field; record key: the collection's record_key
// value, else "match <n>", the record's position among the subject's
// records of that collection). Empty when the store holds none of them; a
// masked record (mask_on_erase) no longer matches and is not a residue.
// Uses options.referencer and options.cancel. INVALID_ARGUMENT without a
// referencer; FAILED_PRECONDITION for a manual or opendsr store (no
// connector reads its data); otherwise the connector's errors (UNAVAILABLE,
// Identity.Conflict, ...), which never hold a value.
absl::StatusOr<std::vector<Finding>> CheckErasureResidue(
    const StoreSpec& store, const std::vector<Identity>& identities,
    const ScanOptions& options);

// The same with a connector the caller made (a test's, or one shared with
// the erasure); `store` must be the connector's store.
absl::StatusOr<std::vector<Finding>> CheckErasureResidueWith(
    Connector& connector, const StoreSpec& store,
    const std::vector<Identity>& identities, const ScanOptions& options);

}  // namespace dsar

#endif  // DSAR_AUDIT_SCAN_RESIDUE_CHECK_H_
