#ifndef DSAR_WORKERS_CONNECTORS_SQLITE_H_
#define DSAR_WORKERS_CONNECTORS_SQLITE_H_

// Connector for a SQLite database file: one collection per table.
//
// Each call opens its own connection (read-write, never creating the file,
// 5 s busy timeout), so calls may run concurrently from several threads.
// Export and Discover run with `PRAGMA query_only` inside one read
// transaction (a consistent snapshot across tables); Erase deletes from every
// table in one IMMEDIATE transaction.
//
// Matching: `"col" IN (?, ...)` with bound parameters. Columns mapped from
// the "email" key compare with COLLATE NOCASE. A value that is a canonical
// integer ("42") is bound both as text and as an integer, so it matches an
// INTEGER column, a TEXT column holding "42", and an untyped column holding
// either.

#include <memory>

#include "workers/connectors/connector.h"

namespace dsar {

class SqliteConnector : public Connector {
 public:
  // `store.kind` must be "sqlite" (CreateConnector checks).
  explicit SqliteConnector(StoreSpec store) : store_(std::move(store)) {}

  absl::StatusOr<ConnectorResult> Export(
      const std::vector<Identity>& identities, ByteSink& sink) override;
  absl::StatusOr<ConnectorResult> Discover(
      const std::vector<Identity>& identities) override;
  absl::StatusOr<int64_t> Erase(
      const std::vector<Identity>& identities) override;

 private:
  const StoreSpec store_;
};

}  // namespace dsar

#endif  // DSAR_WORKERS_CONNECTORS_SQLITE_H_
