#include "workers/connectors/connector.h"

#include "absl/strings/str_cat.h"
#include "workers/connectors/jsonl.h"
#include "workers/connectors/null_store.h"
#include "workers/connectors/opendsr.h"
#include "workers/connectors/postgres.h"
#include "workers/connectors/sqlite.h"

namespace dsar {

absl::StatusOr<std::unique_ptr<Connector>> CreateConnector(
    const StoreSpec& store, const std::atomic<bool>* cancel) {
  if (IsManualStore(store)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "store ", store.name,
        ": a manual store is worked by its owner through dsarctl work, not "
        "by a worker"));
  }
  if (store.collections.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("store ", store.name, ": no collections"));
  }
  if (store.kind == "sqlite") {
    return std::make_unique<SqliteConnector>(store, cancel);
  }
  if (store.kind == "opendsr") return OpenDsrConnector::Create(store, cancel);
  if (store.kind == "jsonl") {
    if (store.collections.size() != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "store ", store.name, ": a jsonl store has exactly one collection"));
    }
    return std::make_unique<JsonlConnector>(store, cancel);
  }
  if (store.kind == "postgres") {
    return std::make_unique<PostgresConnector>(store, cancel);
  }
  if (IsNullStore(store)) {
    return std::make_unique<NullStoreConnector>(store, cancel);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("store ", store.name, ": unknown kind \"", store.kind,
                   "\" (known: sqlite, jsonl, postgres, opendsr, null)"));
}

namespace internal {

absl::Status CancelledError(std::string_view store) {
  return absl::CancelledError(
      absl::StrCat("store ", absl::string_view(store.data(), store.size()),
                   ": operation cancelled"));
}

}  // namespace internal

}  // namespace dsar
