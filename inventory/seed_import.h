#ifndef DSAR_INVENTORY_SEED_IMPORT_H_
#define DSAR_INVENTORY_SEED_IMPORT_H_

// Converts the data inventory of the seed designs (seed 003's
// data-inventory.yaml: a `data_stores` list of {name, type, contains_pii,
// pii_fields, retention_policy}) into dsar's inventory format
// (docs/inventory.md). `dsarctl inventory import` runs it.
//
// What maps: PostgreSQL stores become `postgres` stores with one table named
// after the store, whose identity fields are the PII fields that look like
// an email, phone or user id, and whose PII fields get a category guessed
// from their names; stores of a type without a connector (Elasticsearch,
// RabbitMQ, ...) become `manual` stores (docs/manual-stores.md) whose
// instructions name the type and the fields; `retention_policy` becomes
// `retention`. What cannot be known from the seed's file (the server, the
// real table names, an owner) is written as "<fill in>" and listed in the
// report; the result does not load until those are filled in, so nothing
// runs half-configured.

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace dsar {

// What stays to be done by hand, e.g.
// `stores[0] ("user_profiles").connection.host: the database server`.
struct ImportedInventory {
  std::string yaml;
  std::vector<std::string> to_fill;
  // Entries left out, with the reason (contains_pii: false).
  std::vector<std::string> skipped;
};

// The placeholder written for everything in ImportedInventory::to_fill.
inline constexpr char kFillIn[] = "<fill in>";

// INVALID_ARGUMENT naming the entry and field when `seed_yaml` is not the
// seed's shape (no data_stores list, an entry without name or type, a
// pii_fields that is not a list of names, an unknown key).
absl::StatusOr<ImportedInventory> ImportSeedInventory(
    std::string_view seed_yaml);

}  // namespace dsar

#endif  // DSAR_INVENTORY_SEED_IMPORT_H_
