#ifndef DSAR_WORKERS_CONNECTORS_MASKING_H_
#define DSAR_WORKERS_CONNECTORS_MASKING_H_

// What an erasure writes into a field it masks instead of deleting its
// record (CollectionSpec::mask_on_erase; docs/inventory.md, "Masking").
// Shared by the connectors of tables (SQLite, PostgreSQL), which read the
// matching rows' current values, ask MaskValue for each masked field and
// write the fields that change.

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "inventory/inventory.h"

namespace dsar {

// The key of the `hash` strategy: the bytes of `store.masking_key_file`.
// FAILED_PRECONDITION naming the file (never its content) when it cannot
// be read or holds fewer than 32 bytes.
absl::StatusOr<std::string> ReadMaskingKey(const StoreSpec& store);

// The masked value of a field.
struct MaskedValue {
  bool changes = false;              // False: leave the field as it is.
  std::optional<std::string> value;  // What to write; nullopt is NULL.
};

// What `mask` makes of a field holding `current` (its text form; nullopt
// for NULL). NULL stays NULL for every strategy (it holds nothing to hide);
// `null` and `fixed` change only a value that differs from theirs, so
// running them again changes nothing; `random` and `hash` change every
// other value (the inventory allows them only where a masked row no longer
// matches the subject, so they do not run twice on one value); `keep`
// changes nothing. `key` is ReadMaskingKey's, needed by `hash` only.
MaskedValue MaskValue(const FieldMask& mask,
                      const std::optional<std::string>& current,
                      const std::string& key);

// True when some field of some collection of `store` is masked with `hash`.
bool UsesHashMask(const StoreSpec& store);

}  // namespace dsar

#endif  // DSAR_WORKERS_CONNECTORS_MASKING_H_
