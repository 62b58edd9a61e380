// Inventory::Parse over arbitrary YAML: the coordinator and every worker load
// the inventory file at start-up, and an operator edits it by hand.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "inventory/inventory.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view yaml(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<dsar::Inventory> inventory =
      dsar::Inventory::Parse(yaml, "/srv/dsar");
  if (!inventory.ok()) {
    FUZZ_CHECK(inventory.status().code() == absl::StatusCode::kInvalidArgument,
               inventory.status().ToString());
    return 0;
  }
  // What the engine and the connectors rely on once the file loaded.
  FUZZ_CHECK(!inventory->stores().empty(), "no stores");
  for (const dsar::StoreSpec& store : inventory->stores()) {
    FUZZ_CHECK(inventory->Find(store.name) == &store, store.name);
    FUZZ_CHECK(store.kind == "sqlite" || store.kind == "jsonl" ||
                   store.kind == "postgres" || store.kind == "opendsr" ||
                   store.kind == "manual" || store.kind == "null",
               store.kind);
    FUZZ_CHECK(store.kind != "null" ||
                   (store.path.empty() && store.collections.size() == 1),
               store.name);
    if (store.kind == "sqlite" || store.kind == "jsonl") {
      FUZZ_CHECK(!store.path.empty() && store.path[0] == '/', store.path);
    }
    FUZZ_CHECK(!store.collections.empty(), store.name);
    FUZZ_CHECK(store.kind != "jsonl" || store.collections.size() == 1,
               store.name);
    for (const dsar::CollectionSpec& collection : store.collections) {
      FUZZ_CHECK(!collection.name.empty(), store.name);
      FUZZ_CHECK(!collection.identity_fields.empty(), collection.name);
      for (const auto& [field, category] : collection.pii_fields) {
        (void)dsar::FieldTypeOf(collection, field);
      }
      // What the audit scans rely on (docs/audit-scan.md): statuses stored
      // lowercase, none both opted out and restricted, a status field of
      // its own.
      if (collection.privacy_status.has_value()) {
        const dsar::PrivacyStatusSpec& status = *collection.privacy_status;
        FUZZ_CHECK(!status.field.empty() && !status.opted_out.empty(),
                   collection.name);
        FUZZ_CHECK(collection.pii_fields.count(status.field) == 0,
                   status.field);
        for (const std::string& value : status.opted_out) {
          FUZZ_CHECK(status.restricted.count(value) == 0, value);
          for (char c : value) FUZZ_CHECK(c < 'A' || c > 'Z', value);
        }
      }
      FUZZ_CHECK(collection.pii_fields.count(collection.record_key) == 0,
                 collection.record_key);
    }
    for (const std::string& other : store.identities_from) {
      FUZZ_CHECK(inventory->Find(other) != nullptr, other);
    }
    for (const std::string& other : store.erase_after) {
      FUZZ_CHECK(inventory->Find(other) != nullptr, other);
    }
  }
  return 0;
}
