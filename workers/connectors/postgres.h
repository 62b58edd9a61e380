#ifndef DSAR_WORKERS_CONNECTORS_POSTGRES_H_
#define DSAR_WORKERS_CONNECTORS_POSTGRES_H_

// Connector for a PostgreSQL database, through libpq: one collection per
// table of the store's schema. docs/connectors/postgres.md explains the
// decisions below.
//
// Connections: each call opens its own connection with the inventory's
// `connection` parameters (passed to libpq one by one, never as a
// connection string), reading the password from password_file or
// password_env just then; it is not kept in memory afterwards and never
// appears in an error message. sslmode is the inventory's (verify-full
// unless it says otherwise).
//
// Transactions: every operation is one transaction. Export and Discover
// read in one REPEATABLE READ READ ONLY transaction (one snapshot across
// tables). Erase, Rectify and SetProcessingFlag first lock the subject's
// rows of every table (SELECT ... FOR UPDATE), check them for identity
// conflicts, then change them and COMMIT; a failure, a cancellation or a
// worker that dies before COMMIT leaves the database as it was.
//
// Matching: identities are compared in canonical form (model/identity.h).
// The subject's rows are found through the table's indexes with
// parameterised statements (identities are never spliced into SQL; table,
// column and schema names are quoted with PQescapeIdentifier):
//   - email: `lower(col) IN (lower($1), ...)`, served by an index on
//     lower(col); or `col IN ($1, ...)` when email is in the collection's
//     canonical_identities (a plain index).
//   - phone: `translate(col, ' -.()/', '') IN (written forms)`, served by
//     an index on that expression; or `col IN ($1)` when declared canonical.
//   - other keys: `col IN ($1::int8, ...)` for an integer column (only
//     canonical integers: "42" matches 42, "042" nothing), `::numeric` for
//     other numeric columns, `$1::text` for a text column; a column of
//     another type (uuid ...) is compared as `col::text`, which only an
//     expression index on (col::text) serves.
// Every candidate row is then confirmed with the normaliser
// (IdentityMatcher) before it is exported, counted or changed. A value
// holding a NUL byte matches nothing (PostgreSQL text cannot hold one).
// A table or identity column the inventory names but the schema lacks is
// NOT_FOUND.
//
// Cancellation: statements are sent asynchronously and the connector looks
// at the cancel flag every kCancelPollMs while it waits for the server
// (also while it waits for a lock); once set it sends PQcancel, the
// statement ends with query_canceled, the transaction is rolled back and
// the operation returns CANCELLED.
//
// Errors map SQLSTATE classes to the names of model/connector_errors.h:
//   08 (connection), 40 (serialization failure, deadlock), 53300, 55P03,
//   57P0x (server shutting down)            UNAVAILABLE (transient)
//   53 (insufficient resources)             RESOURCE_EXHAUSTED
//   28 (authentication), 42501, 25006       PERMISSION_DENIED
//   23 (integrity constraint)               Connector.ConstraintViolation
//   42P01, 42703, 3F000 (undefined table, column, schema)   NOT_FOUND
//   22 (data exception)                     INVALID_ARGUMENT
//   XX001, XX002 (data corrupted)           DATA_LOSS
// Messages of classes 22 and 23 name the condition, column and constraint
// but never the values the server quotes in its own message.

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "workers/connectors/connector.h"
#include "workers/connectors/record_scan.h"
#include "workers/connectors/store_probe.h"

namespace dsar {

// One query of PostgresConnector::ScanRecords: the rows of `collection`
// that `where` selects, with the `columns` asked for.
struct PostgresRowScan {
  // Quotes a table or column name as an SQL identifier.
  using Quote = std::function<std::string(const std::string& name)>;

  const CollectionSpec* collection = nullptr;
  // Builds the condition of the WHERE clause with the connector's `quote`;
  // it appends literal values to `params` and writes them $1, $2 ... in
  // the condition. Never splice a value into the SQL. Null: every row.
  std::function<std::string(const Quote& quote,
                            std::vector<std::string>* params)>
      where;
  // Columns handed to `visit`, as text, in this order; empty: every
  // column of the table. NOT_FOUND for a column the table lacks.
  std::vector<std::string> columns;
  // Receives each selected row.
  RecordVisitor visit;
};

class PostgresConnector : public Connector {
 public:
  // `store.kind` must be "postgres" (CreateConnector checks).
  // `cancel` (may be null) cancels running operations once set (see
  // Connector, "Cancellation"); it must outlive the connector.
  explicit PostgresConnector(StoreSpec store,
                             const std::atomic<bool>* cancel = nullptr)
      : store_(std::move(store)), cancel_(cancel) {}

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

  // The plans PostgreSQL chooses to find `identities` in each table, one
  // line per plan line ("users: Index Scan using users_email_lower on
  // users"), so tests and operators can check that indexes serve every
  // lookup ("Seq Scan" means they do not). With `avoid_scans`, sequential
  // scans are priced out (enable_seqscan off, in this transaction only):
  // the plan then shows whether any index can serve the lookup, whatever
  // the table's size and statistics. Read-only.
  absl::StatusOr<std::vector<std::string>> ExplainLookup(
      const std::vector<Identity>& identities, bool avoid_scans = false);

  // For dsarctl inventory check (store_probe.h): each table's columns and
  // up to `sample_rows` of each column's non-null values as text
  // (SELECT col::text ... LIMIT n, never the whole table). Read-only. A
  // table the schema lacks has exists = false.
  absl::StatusOr<std::map<std::string, CollectionShape>> Probe(int sample_rows);

  // For the audit scans (record_scan.h): runs `scans` in order in one
  // REPEATABLE READ READ ONLY transaction (one snapshot for all of them),
  // handing each selected row to the scan's `visit`. Rows are read through a
  // server-side cursor, kScanFetchRows at a time, so a table is never held
  // in memory. When `table_rows` is given, it receives for each scan the
  // number of rows of its table in the same snapshot. Returns `visit`'s
  // first error; errors as the connector's (NOT_FOUND for a missing table
  // or column); CANCELLED once the cancel flag is set.
  absl::Status ScanRecords(const std::vector<PostgresRowScan>& scans,
                           std::vector<int64_t>* table_rows = nullptr);

  // Rows per FETCH of ScanRecords' cursor.
  static constexpr int kScanFetchRows = 1000;

 private:
  const StoreSpec store_;
  const std::atomic<bool>* const cancel_;
};

}  // namespace dsar

#endif  // DSAR_WORKERS_CONNECTORS_POSTGRES_H_
