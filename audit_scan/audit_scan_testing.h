#ifndef DSAR_AUDIT_SCAN_AUDIT_SCAN_TESTING_H_
#define DSAR_AUDIT_SCAN_AUDIT_SCAN_TESTING_H_

// Planted data shared by the audit scan tests: the same ten records, with
// known signals, written into each store kind, and what a scan must find
// in them.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "audit_scan/finding.h"
#include "audit_scan/scan_options.h"
#include "audit_scan/subject_reference.h"
#include "gtest/gtest.h"
#include "inventory/inventory.h"
#include "tests/testing/sqlite_exec.h"

namespace dsar::audit_testing {

struct PlantedRow {
  std::string user_id;
  std::optional<std::string> email;
  std::optional<std::string> phone;
  std::string privacy_status;
  int restricted = 0;
  std::optional<std::string> metadata;
  std::optional<std::string> notes;
};

const std::vector<PlantedRow>& PlantedRows();

// The collection the rows belong to (columns user_id, email, phone,
// privacy_status, restricted, metadata, notes), named `name`.
CollectionSpec PlantedCollection(const std::string& name);

// The rows as JSON lines (NULL columns left out), one per line.
std::string PlantedJsonLines();
// CREATE TABLE `table` and INSERT the rows; SQLite and PostgreSQL both read
// it.
std::string PlantedSql(const std::string& table);

// Every personal value planted; none may appear in a report.
std::vector<std::string> PlantedPersonalValues();

// What a scan of the rows must find, as Summary() strings, in
// `collection`.
std::vector<std::string> ExpectedPlantedFindings(const std::string& collection);

// "SIGNAL collection.field[/json path] @record_key".
std::string Summary(const Finding& finding);
std::vector<std::string> Summaries(const std::vector<Finding>& findings);

std::unique_ptr<SubjectReferencer> TestReferencer();

// Runs `sql` on the SQLite database at `path` (tests/testing/sqlite_exec.h).
using ::dsar::testing::ExecSqlite;

// Writes `text` to `path`, replacing it.
void WriteFile(const std::string& path, const std::string& text);

// A new empty directory under the test's temporary directory.
std::string NewTempDir();

// A fixture with a scratch directory and scan options holding a
// referencer.
class AuditScanTest : public ::testing::Test {
 protected:
  void SetUp() override;

  // A "sqlite" store "crm" at dir_/crm.db holding what `sql` makes.
  StoreSpec SqliteStore(const std::string& sql,
                        std::vector<CollectionSpec> collections);
  // A "jsonl" store "activity" of the planted collection, holding `lines`.
  StoreSpec JsonlStore(const std::string& lines);

  std::string dir_;
  std::unique_ptr<SubjectReferencer> referencer_;
  ScanOptions options_;
};

}  // namespace dsar::audit_testing

#endif  // DSAR_AUDIT_SCAN_AUDIT_SCAN_TESTING_H_
