#include "audit_scan/store_scan.h"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "audit_scan/opt_out_sql.h"
#include "audit_scan/record_audit.h"
#include "common/status_macros.h"
#include "workers/connectors/jsonl.h"
#include "workers/connectors/postgres.h"
#include "workers/connectors/sqlite.h"

namespace dsar {
namespace {

// One CollectionAudit per collection of the store, in inventory order.
class StoreAudits {
 public:
  StoreAudits(const StoreSpec& store, const ScanOptions& options,
              StoreScanResult* result) {
    for (const CollectionSpec& collection : store.collections) {
      audits_.push_back(std::make_unique<CollectionAudit>(store, collection,
                                                          options, result));
      by_name_[collection.name] = audits_.back().get();
    }
  }

  // The audit of the collection named like `collection` (a connector hands
  // out its own copy of the store's collections; names are unique).
  CollectionAudit& Of(const CollectionSpec& collection) {
    return *by_name_.at(collection.name);
  }

  void Finish() {
    for (auto& audit : audits_) audit->Finish();
  }

 private:
  std::vector<std::unique_ptr<CollectionAudit>> audits_;
  std::map<std::string, CollectionAudit*> by_name_;
};

// SQLite and JSON lines: every check on every record, in this process.
template <typename Connector>
absl::Status ScanEveryRecord(const StoreSpec& store, const ScanOptions& options,
                             StoreScanResult* result) {
  Connector connector(store, options.cancel);
  StoreAudits audits(store, options, result);
  RETURN_IF_ERROR(
      connector.ScanRecords([&](const CollectionSpec& collection,
                                const ScannedRecord& record) -> absl::Status {
        CollectionAudit& audit = audits.Of(collection);
        audit.CheckOptOut(record);
        audit.CheckPatterns(record);
        return absl::OkStatus();
      }));
  audits.Finish();
  return absl::OkStatus();
}

// PostgreSQL: per table, the opt-out check as a query, then the pattern
// checks over a cursor, all in one snapshot.
absl::Status ScanPostgres(const StoreSpec& store, const ScanOptions& options,
                          StoreScanResult* result) {
  PostgresConnector connector(store, options.cancel);
  StoreAudits audits(store, options, result);
  std::vector<PostgresRowScan> scans;
  for (const CollectionSpec& collection : store.collections) {
    CollectionAudit* audit = &audits.Of(collection);
    if (collection.privacy_status.has_value()) {
      PostgresRowScan violations;
      violations.collection = &collection;
      violations.where = [&collection](const PostgresRowScan::Quote& quote,
                                       std::vector<std::string>* params) {
        // No field to check: no row can violate.
        return OptOutViolationSql(collection, quote, params).value_or("false");
      };
      violations.visit = [audit](const CollectionSpec&,
                                 const ScannedRecord& record) {
        audit->CheckOptOut(record);  // Confirms the row, then reports it.
        return absl::OkStatus();
      };
      scans.push_back(std::move(violations));
    }
    PostgresRowScan every_row;
    every_row.collection = &collection;
    every_row.visit = [audit](const CollectionSpec&,
                              const ScannedRecord& record) {
      audit->CheckPatterns(record);
      return absl::OkStatus();
    };
    scans.push_back(std::move(every_row));
  }
  RETURN_IF_ERROR(connector.ScanRecords(scans));
  audits.Finish();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<StoreScanResult> ScanStore(const StoreSpec& store,
                                          const ScanOptions& options) {
  if (options.referencer == nullptr) {
    return absl::InvalidArgumentError(
        "audit scan: no subject referencer given");
  }
  StoreScanResult result;
  result.store = store.name;
  if (store.kind == "sqlite") {
    RETURN_IF_ERROR(ScanEveryRecord<SqliteConnector>(store, options, &result));
  } else if (store.kind == "jsonl") {
    RETURN_IF_ERROR(ScanEveryRecord<JsonlConnector>(store, options, &result));
  } else if (store.kind == "postgres") {
    RETURN_IF_ERROR(ScanPostgres(store, options, &result));
  } else {
    return absl::FailedPreconditionError(
        absl::StrCat("store ", store.name, ": a ", store.kind,
                     " store is not scanned (no connector reads its data)"));
  }
  return result;
}

}  // namespace dsar
