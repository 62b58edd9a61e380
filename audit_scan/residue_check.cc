#include "audit_scan/residue_check.h"

#include <map>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "workers/connectors/identity_match.h"
#include "workers/connectors/record_scan.h"

namespace dsar {
namespace {

const CollectionSpec* FindCollection(const StoreSpec& store,
                                     const std::string& name) {
  for (const CollectionSpec& collection : store.collections) {
    if (collection.name == name) return &collection;
  }
  return nullptr;
}

// A JSON value as ScannedField text (record_scan.h): strings as their
// content, null as nullopt, anything else as JSON text.
std::optional<std::string> AsText(const nlohmann::json& value) {
  if (value.is_null()) return std::nullopt;
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
}

}  // namespace

absl::StatusOr<std::vector<Finding>> CheckErasureResidueWith(
    Connector& connector, const StoreSpec& store,
    const std::vector<Identity>& identities, const ScanOptions& options) {
  if (options.referencer == nullptr) {
    return absl::InvalidArgumentError(
        "residue check: no subject referencer given");
  }
  std::vector<Finding> findings;
  StringSink sink;
  ASSIGN_OR_RETURN(ConnectorResult found, connector.Export(identities, sink));
  if (found.record_count == 0) return findings;
  nlohmann::json document = nlohmann::json::parse(sink.text(), nullptr,
                                                  /*allow_exceptions=*/false);
  if (document.is_discarded() || !document.contains("records") ||
      !document["records"].is_array()) {
    return absl::InternalError(absl::StrCat(
        "store ", store.name, ": residue check: the export is not readable"));
  }
  IdentityMatcher matcher(identities, store.default_phone_region);
  std::map<std::string, int64_t> matches_in;  // Collection -> records seen.
  for (const nlohmann::json& entry : document["records"]) {
    const CollectionSpec* collection =
        FindCollection(store, entry.value("collection", ""));
    if (collection == nullptr || !entry.contains("data") ||
        !entry["data"].is_object()) {
      continue;
    }
    // The record's values, owned here; the ScannedRecord views them.
    std::vector<std::pair<std::string, std::optional<std::string>>> values;
    for (const auto& [name, value] : entry["data"].items()) {
      values.emplace_back(name, AsText(value));
    }
    ScannedRecord record;
    for (const auto& [name, value] : values) {
      record.fields.push_back(
          {name, value.has_value() ? std::optional<std::string_view>(*value)
                                   : std::nullopt});
    }
    int64_t position = ++matches_in[collection->name];
    record.key = absl::StrCat("match ", position);
    if (!collection->record_key.empty()) {
      const ScannedField* key = record.Find(collection->record_key);
      if (key != nullptr && key->value.has_value()) {
        record.key = std::string(*key->value);
      }
    }
    std::string reference =
        options.referencer->Reference(store, *collection, record);
    for (const auto& [key, field_name] : collection->identity_fields) {
      const ScannedField* field = record.Find(field_name);
      if (field == nullptr || !field->value.has_value() ||
          !matcher.Matches(key, *field->value)) {
        continue;
      }
      Finding finding;
      finding.signal = Signal::kErasureResidue;
      finding.severity = SeverityOf(finding.signal);
      finding.store = store.name;
      finding.collection = collection->name;
      finding.field = field_name;
      finding.record_key = record.key;
      finding.subject_reference = reference;
      findings.push_back(std::move(finding));
    }
  }
  return findings;
}

absl::StatusOr<std::vector<Finding>> CheckErasureResidue(
    const StoreSpec& store, const std::vector<Identity>& identities,
    const ScanOptions& options) {
  if (store.kind == "manual" || store.kind == "opendsr") {
    return absl::FailedPreconditionError(
        absl::StrCat("store ", store.name, ": a ", store.kind,
                     " store cannot be checked for residue here (no "
                     "connector reads its data)"));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Connector> connector,
                   CreateConnector(store, options.cancel));
  return CheckErasureResidueWith(*connector, store, identities, options);
}

}  // namespace dsar
