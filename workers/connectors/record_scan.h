#ifndef DSAR_WORKERS_CONNECTORS_RECORD_SCAN_H_
#define DSAR_WORKERS_CONNECTORS_RECORD_SCAN_H_

// What a connector's full-store scan hands out, one record at a time: the
// read-only, streaming access the audit scans (audit_scan/,
// docs/audit-scan.md) use, beside the per-subject operations of
// connector.h. SqliteConnector::ScanRecords, JsonlConnector::ScanRecords
// and PostgresConnector::ScanRecords produce it; each reads a point-in-time
// view of the store and never holds more than one record (a PostgreSQL
// fetch batch) in memory.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "inventory/inventory.h"

namespace dsar {

// One field of a scanned record, as text: a SQL value cast to text, a JSON
// string's content, or the JSON text of any other JSON value (numbers,
// booleans, objects, arrays). nullopt for SQL NULL and JSON null.
struct ScannedField {
  std::string_view name;
  std::optional<std::string_view> value;
};

// One record. Views are valid during the visitor's call only.
struct ScannedRecord {
  // The value of the collection's record_key field, when it declares one
  // and the record has it; else the SQLite rowid, the PostgreSQL ctid, or
  // the JSON line's number (from 1).
  std::string key;
  std::vector<ScannedField> fields;

  // The field named `name`; nullptr when the record has no such field.
  const ScannedField* Find(std::string_view name) const {
    for (const ScannedField& field : fields) {
      if (field.name == name) return &field;
    }
    return nullptr;
  }
};

// Called once per record; a non-OK status stops the scan and is returned.
using RecordVisitor = std::function<absl::Status(
    const CollectionSpec& collection, const ScannedRecord& record)>;

}  // namespace dsar

#endif  // DSAR_WORKERS_CONNECTORS_RECORD_SCAN_H_
