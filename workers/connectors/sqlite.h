#ifndef DSAR_WORKERS_CONNECTORS_SQLITE_H_
#define DSAR_WORKERS_CONNECTORS_SQLITE_H_

// Connector for a SQLite database file: one collection per table.
//
// Each call takes a connection of its own (read-write, never creating the
// file, 5 s busy timeout), so calls may run concurrently from several
// threads. Connections are kept for the next call, with their prepared
// statements: one whose file was replaced or removed (another inode at the
// path) is closed instead of reused, and so is one a call left inside a
// transaction.
// Export and Discover run with `PRAGMA query_only` inside one read
// transaction (a consistent snapshot across tables); Erase deletes from every
// table in one IMMEDIATE transaction, and so do Rectify and
// SetProcessingFlag, which UPDATE matching rows.
//
// Matching: identities are compared in canonical form (model/identity.h),
// and every lookup is written so that an index can serve it; the connector
// never reads a whole table to find a subject unless the store lacks the
// index (docs/inventory.md, "Lookups and indexes"):
//   - email: `lower("email") IN (?, ...)`, served by an index on
//     lower(email); or, when the collection declares email in
//     canonical_identities, `"email" IN (?, ...)`, served by a plain index.
//   - phone: `<digits>("phone") IN (<written forms>)` where <digits> strips
//     spaces, dashes, dots, brackets and slashes, served by an index on that
//     expression, AND `dsar_phone("phone") IN (<E.164>)`, a function this
//     connector registers that confirms each candidate with the normaliser;
//     or `"phone" IN (?)` when phone is declared canonical.
//   - other keys: `"col" IN (?, ...)`, values bound by the column's declared
//     type so that SQLite converts none of them: an INTEGER, REAL or NUMERIC
//     column is compared only with canonical integers ("42" as 42; "007",
//     "+8", "9.0" or "1e1" match nothing there rather than 7, 8, 9, 10), a
//     TEXT column with the text, an untyped column with the text and, for a
//     canonical integer, the integer too.
// A table or identity column the inventory names but the database lacks is
// NOT_FOUND.
//
// Rectify: a correction applies to the tables whose pii_fields list its
// field; naming a column of a table that is not a PII field is
// INVALID_ARGUMENT, and a table without such a column is skipped. Values are
// bound as text and stored with the column's type affinity: "43" is stored as
// the integer 43 in an INTEGER column (and "0043" too), as text in a TEXT or
// untyped column. Only rows whose value differs (byte for byte, as stored)
// are updated and counted, so a second call returns 0.
//
// SetProcessingFlag sets the flag column to 1 on matching rows where it is
// not 1 yet, counting those rows.

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "workers/connectors/connector.h"
#include "workers/connectors/record_scan.h"
#include "workers/connectors/store_probe.h"

namespace dsar {

class SqliteSessionPool;

class SqliteConnector : public Connector {
 public:
  // `store.kind` must be "sqlite" (CreateConnector checks).
  // `cancel` (may be null) cancels running operations once set (see
  // Connector, "Cancellation"); it must outlive the connector.
  explicit SqliteConnector(StoreSpec store,
                           const std::atomic<bool>* cancel = nullptr);
  ~SqliteConnector() override;

  SqliteConnector(const SqliteConnector&) = delete;
  SqliteConnector& operator=(const SqliteConnector&) = delete;

  absl::StatusOr<ConnectorResult> Export(
      const std::vector<Identity>& identities, ByteSink& sink) override;
  absl::StatusOr<ConnectorResult> Discover(
      const std::vector<Identity>& identities) override;
  absl::StatusOr<EraseResult> Erase(
      const std::vector<Identity>& identities) override;
  absl::StatusOr<int64_t> Rectify(
      const std::vector<Identity>& identities,
      const std::vector<FieldCorrection>& corrections) override;
  absl::StatusOr<int64_t> SetProcessingFlag(
      const std::vector<Identity>& identities,
      const std::string& flag) override;

  // The plan SQLite chooses to find `identities` in each table, one entry
  // per plan step ("users: SEARCH users USING INDEX users_email (email=?)"),
  // so tests and operators can check that the store's indexes serve every
  // lookup ("SCAN users" means they do not). Read-only.
  absl::StatusOr<std::vector<std::string>> ExplainLookup(
      const std::vector<Identity>& identities);

  // For dsarctl inventory check (store_probe.h): each table's columns
  // (PRAGMA table_info) and up to `sample_rows` of each column's non-null
  // values as text (SELECT ... LIMIT n, never the whole table). Read-only;
  // a missing database is UNAVAILABLE, never created. A table the database
  // lacks has exists = false.
  absl::StatusOr<std::map<std::string, CollectionShape>> Probe(int sample_rows);

  // For the audit scans (record_scan.h): hands every row of every table,
  // in inventory order, to `visit`, stepping row by row (sqlite3_step;
  // never a table in memory) inside one read transaction, so every table
  // is read from one snapshot (WAL), or writers wait until the scan ends
  // (rollback journal). Values as text (sqlite3_column_text), NULL as
  // nullopt. Read-only. Returns `visit`'s first error; a missing table is
  // NOT_FOUND (a WITHOUT ROWID table needs a record_key). CANCELLED once
  // the cancel flag is set.
  absl::Status ScanRecords(const RecordVisitor& visit);

 private:
  const StoreSpec store_;
  const std::atomic<bool>* const cancel_;
  // Connections kept between calls.
  std::unique_ptr<SqliteSessionPool> sessions_;
};

}  // namespace dsar

#endif  // DSAR_WORKERS_CONNECTORS_SQLITE_H_
