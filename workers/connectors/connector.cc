#include "workers/connectors/connector.h"

#include "absl/strings/str_cat.h"
#include "workers/connectors/jsonl.h"
#include "workers/connectors/sqlite.h"

namespace dsar {

absl::StatusOr<std::unique_ptr<Connector>> CreateConnector(
    const StoreSpec& store) {
  if (store.collections.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("store ", store.name, ": no collections"));
  }
  if (store.kind == "sqlite") {
    return std::make_unique<SqliteConnector>(store);
  }
  if (store.kind == "jsonl") {
    if (store.collections.size() != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "store ", store.name, ": a jsonl store has exactly one collection"));
    }
    return std::make_unique<JsonlConnector>(store);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("store ", store.name, ": unknown kind \"", store.kind,
                   "\" (known: sqlite, jsonl)"));
}

}  // namespace dsar
