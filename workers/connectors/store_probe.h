#ifndef DSAR_WORKERS_CONNECTORS_STORE_PROBE_H_
#define DSAR_WORKERS_CONNECTORS_STORE_PROBE_H_

// Reads the shape of a store's collections for `dsarctl inventory check`
// (docs/inventory.md, "Checking an inventory"): which columns (fields) each
// collection has and a few of their values. Read-only; it never reads a
// whole store: a table is sampled with LIMIT, a JSON-lines log by its first
// lines. Sampled values stay in memory for pattern checks and are never
// printed.

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "inventory/inventory.h"

namespace dsar {

struct CollectionShape {
  bool exists = false;
  // Column (or top-level JSON field) -> up to `sample_rows` non-null values
  // as text, in the store's order.
  std::map<std::string, std::vector<std::string>> columns;
  // Identity keys of the collection (identity_fields) whose lookup, written
  // as the connector writes it, the store cannot serve from an index: each
  // request for such a key reads the whole collection. The store's own
  // planner decides (SQLite's EXPLAIN QUERY PLAN; PostgreSQL's EXPLAIN with
  // sequential scans disabled). Every key of a JSON-lines log (it has no
  // index).
  std::vector<std::string> unindexed_identity_keys;
};

// The shape of every collection of `store`, by collection name. UNAVAILABLE
// when the store cannot be opened; INVALID_ARGUMENT for a kind that cannot
// be probed (manual stores, services).
absl::StatusOr<std::map<std::string, CollectionShape>> ProbeStore(
    const StoreSpec& store, int sample_rows);

}  // namespace dsar

#endif  // DSAR_WORKERS_CONNECTORS_STORE_PROBE_H_
