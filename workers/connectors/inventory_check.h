#ifndef DSAR_WORKERS_CONNECTORS_INVENTORY_CHECK_H_
#define DSAR_WORKERS_CONNECTORS_INVENTORY_CHECK_H_

// `dsarctl inventory check` (docs/inventory.md, "Checking an inventory"):
// compares the inventory with the stores themselves. Reports tables and
// columns the inventory names but a store lacks, identity routes that cannot
// work (a store no identity kind reaches), and columns that look like
// personal data the inventory does not declare (by name, and by sampled
// values matching email, phone, IP address, card or national-id patterns,
// model/pii_patterns.h). Messages name stores, tables, columns and kinds,
// never a value.

#include <string>
#include <vector>

#include "inventory/inventory.h"

namespace dsar {

struct InventoryFinding {
  enum class Severity { kError, kWarning };
  Severity severity = Severity::kError;
  std::string store;       // Empty for findings about the whole inventory.
  std::string collection;  // Empty for findings about the whole store.
  std::string message;
};

// Probes every store that can be probed (store_probe.h) with
// `sample_rows` rows per table. Errors: the inventory cannot work as
// written (a store that cannot be opened, a missing table or column).
// Warnings: it works but may miss data (an unreachable store for some
// identity kind, undeclared personal data, a manual store nobody probes).
std::vector<InventoryFinding> CheckInventory(const Inventory& inventory,
                                             int sample_rows = 50);

}  // namespace dsar

#endif  // DSAR_WORKERS_CONNECTORS_INVENTORY_CHECK_H_
