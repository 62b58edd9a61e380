#ifndef DSAR_WORKERS_CONNECTORS_CORRECTIONS_H_
#define DSAR_WORKERS_CONNECTORS_CORRECTIONS_H_

// Shared by the connectors' Rectify and SetProcessingFlag: which corrections
// apply to one collection, and which flag names exist. Header-only.

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "inventory/inventory.h"
#include "model/field_types.h"
#include "nlohmann/json.hpp"
#include "workers/connectors/connector.h"

namespace dsar {

// The corrections of one Rectify call that concern one collection.
struct CollectionCorrections {
  // PII field -> corrected value: set these on matching records.
  std::map<std::string, std::string> updates;
  // Fields asked for that are not PII fields and that `has_field` did not
  // know: skipped, but a connector that can only tell from the records
  // whether the collection has them (JSON lines) rejects them when a matching
  // record has one.
  std::set<std::string> unknown_fields;
};

// Sorts `corrections` for `collection` of `store`: a correction naming
// another collection is ignored; one whose field is in pii_fields is an
// update; one whose field `has_field` says the collection holds but is not a
// PII field is INVALID_ARGUMENT naming the field; the rest are unknown.
// INVALID_ARGUMENT as well for an empty field, a value that is not UTF-8 or
// not of the field's declared type (FieldTypeOf), or two different values
// for one field. Called before the store is changed.
inline absl::StatusOr<CollectionCorrections> ResolveCorrections(
    const StoreSpec& store, const CollectionSpec& collection,
    const std::vector<FieldCorrection>& corrections,
    const std::function<bool(const std::string&)>& has_field) {
  const std::string& store_name = store.name;
  CollectionCorrections result;
  std::string where =
      absl::StrCat("store ", store_name, ": collection ", collection.name);
  for (const FieldCorrection& correction : corrections) {
    if (correction.field.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": a correction names no field"));
    }
    if (!correction.collection.empty() &&
        correction.collection != collection.name) {
      continue;
    }
    if (collection.pii_fields.count(correction.field) == 0) {
      if (has_field(correction.field)) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, ": field \"", correction.field,
            "\" is not one of its pii_fields and cannot be rectified"));
      }
      result.unknown_fields.insert(correction.field);
      continue;
    }
    try {
      // Throws for text that is not UTF-8 (which a JSON log cannot hold).
      (void)nlohmann::json(correction.value).dump();
    } catch (const nlohmann::json::exception&) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": the corrected value of field \"",
                       correction.field, "\" is not valid UTF-8"));
    }
    absl::Status typed =
        ValidateFieldValue(FieldTypeOf(collection, correction.field),
                           correction.value, store.default_phone_region);
    if (!typed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": the corrected value of field \"",
                       correction.field, "\": ", typed.message()));
    }
    auto [it, inserted] =
        result.updates.emplace(correction.field, correction.value);
    if (!inserted && it->second != correction.value) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": two different corrections of field \"",
                       correction.field, "\""));
    }
  }
  return result;
}

// INVALID_ARGUMENT unless `flag` is a processing flag name.
inline absl::Status CheckProcessingFlagName(const std::string& store_name,
                                            const std::string& flag) {
  if (IsProcessingFlagName(flag)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("store ", store_name, ": unknown processing flag \"", flag,
                   "\" (known: objection, restriction)"));
}

}  // namespace dsar

#endif  // DSAR_WORKERS_CONNECTORS_CORRECTIONS_H_
