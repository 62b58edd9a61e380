#include "workers/connectors/inventory_check.h"

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/identity_reach.h"
#include "model/identity.h"
#include "model/pii_patterns.h"
#include "workers/connectors/store_probe.h"

namespace dsar {
namespace {

using Severity = InventoryFinding::Severity;

// Every column the collection declares, with what for.
std::map<std::string, std::string> DeclaredColumns(
    const CollectionSpec& collection) {
  std::map<std::string, std::string> declared;
  for (const auto& [key, column] : collection.identity_fields) {
    declared[column] = absl::StrCat("identity field (", key, ")");
  }
  for (const auto& [column, category] : collection.pii_fields) {
    declared.emplace(column, absl::StrCat("pii field (", category, ")"));
  }
  for (const auto& [flag, column] : collection.processing_flags) {
    declared.emplace(column, absl::StrCat("processing flag (", flag, ")"));
  }
  return declared;
}

// Why `column` looks like undeclared personal data, or "" when it does not:
// its name, or at least a fifth (and at least one) of its sampled values.
std::string LooksPersonal(const std::string& column,
                          const std::vector<std::string>& values) {
  std::vector<std::string> reasons;
  for (PiiKind kind : PiiKindsOfColumnName(column)) {
    reasons.push_back(absl::StrCat(PiiKindName(kind), " by its name"));
  }
  std::map<PiiKind, int> counts;
  for (const std::string& value : values) {
    for (PiiKind kind : PiiKindsOfValue(value)) ++counts[kind];
  }
  for (const auto& [kind, count] : counts) {
    if (count * 5 >= static_cast<int>(values.size())) {
      reasons.push_back(absl::StrCat(PiiKindName(kind), " in ", count, " of ",
                                     values.size(), " sampled values"));
    }
  }
  return absl::StrJoin(reasons, ", ");
}

// Why a lookup by `key` reads the whole collection, and the index that
// would serve it (the expression the connector compares: docs/inventory.md,
// "Indexes").
std::string IndexAdvice(const CollectionSpec& collection,
                        const std::string& key) {
  const std::string field = collection.identity_fields.at(key);
  const bool canonical = collection.canonical_identities.count(key) > 0;
  std::string expression = field;
  if (key == kEmailKey && !canonical) {
    expression = absl::StrCat("lower(", field, ")");
  } else if (key == kPhoneKey && !canonical) {
    expression = "the digits of " + field + " (docs/inventory.md, \"Indexes\")";
  }
  return absl::StrCat("identity field ", field, " (", key,
                      ") has no index a lookup can use, so every request "
                      "reads the whole table; create one on ",
                      expression, " in ", collection.name);
}

}  // namespace

std::vector<InventoryFinding> CheckInventory(const Inventory& inventory,
                                             int sample_rows) {
  std::vector<InventoryFinding> findings;
  for (const StoreSpec& store : inventory.stores()) {
    if (IsManualStore(store)) {
      findings.push_back(
          {Severity::kWarning, store.name, "",
           absl::StrCat("manual store: not probed; its owner (", store.owner,
                        ") answers its work items")});
      continue;
    }
    if (IsNullStore(store)) {
      findings.push_back(
          {Severity::kWarning, store.name, "",
           "null store: it holds nothing, so every request finds and changes "
           "nothing in it (meant for measuring the engine)"});
      continue;
    }
    absl::StatusOr<std::map<std::string, CollectionShape>> shapes =
        ProbeStore(store, sample_rows);
    if (!shapes.ok()) {
      findings.push_back(
          {absl::IsInvalidArgument(shapes.status()) ? Severity::kWarning
                                                    : Severity::kError,
           store.name, "", std::string(shapes.status().message())});
      continue;
    }
    const bool log = store.kind == "jsonl";
    for (const CollectionSpec& collection : store.collections) {
      const CollectionShape& shape = (*shapes)[collection.name];
      if (!shape.exists) {
        findings.push_back(
            {Severity::kError, store.name, collection.name,
             absl::StrCat("table ", collection.name, " does not exist")});
        continue;
      }
      const std::map<std::string, std::string> declared =
          DeclaredColumns(collection);
      for (const auto& [column, role] : declared) {
        if (shape.columns.count(column) > 0) continue;
        // A log's field may simply be absent from the lines sampled.
        findings.push_back(
            {log ? Severity::kWarning : Severity::kError, store.name,
             collection.name,
             log ? absl::StrCat(role, " ", column, " not seen in the first ",
                                sample_rows, " lines")
                 : absl::StrCat(role, " ", column, " is not a column of ",
                                collection.name)});
      }
      for (const std::string& key : shape.unindexed_identity_keys) {
        findings.push_back({Severity::kWarning, store.name, collection.name,
                            IndexAdvice(collection, key)});
      }
      for (const auto& [column, values] : shape.columns) {
        if (declared.count(column) > 0) continue;
        std::string why = LooksPersonal(column, values);
        if (why.empty()) continue;
        findings.push_back(
            {Severity::kWarning, store.name, collection.name,
             absl::StrCat("column ", column,
                          " looks like personal data the inventory does not "
                          "declare (",
                          why, ")")});
      }
    }
  }
  for (const std::string& warning : UnreachableStoreWarnings(inventory)) {
    findings.push_back({Severity::kWarning, "", "", warning});
  }
  return findings;
}

}  // namespace dsar
