// The audit scans against a throw-away PostgreSQL server
// (tests/testing/postgres_server.h): one server for the binary, a database
// per test. Label "postgres", like workers/postgres_test.

#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "audit_scan/audit_scan_testing.h"
#include "audit_scan/opt_out_sql.h"
#include "audit_scan/report.h"
#include "audit_scan/residue_check.h"
#include "audit_scan/store_scan.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/postgres_server.h"
#include "workers/connectors/postgres.h"

namespace dsar {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using testing::PostgresServer;
using ::testing::UnorderedElementsAreArray;
namespace t = audit_testing;

constexpr char kPassword[] = "audit-scan-Pa55word";

class PostgresScanTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (server_ != nullptr) return;
    absl::StatusOr<std::unique_ptr<PostgresServer>> started =
        PostgresServer::Start();
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = std::move(*started).release();
    absl::Status role = server_->Exec(
        absl::StrCat("CREATE ROLE auditor LOGIN PASSWORD '", kPassword, "'"));
    ASSERT_TRUE(role.ok()) << role;
  }

  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    dbname_ = absl::StrCat("audit_", ++databases_);
    ASSERT_TRUE(server_->Exec("CREATE DATABASE " + dbname_).ok());
    std::string password_file = server_->scratch_dir() + "/auditor-password";
    {
      std::ofstream out(password_file, std::ios::trunc);
      out << kPassword << "\n";
    }
    store_.name = "crm";
    store_.kind = "postgres";
    store_.schema = "public";
    store_.default_phone_region = "GB";
    store_.connection.host = "127.0.0.1";
    store_.connection.port = absl::StrCat(server_->port());
    store_.connection.dbname = dbname_;
    store_.connection.user = "auditor";
    store_.connection.password_file = password_file;
    store_.connection.sslmode = "disable";
    store_.collections = {t::PlantedCollection("users")};
    Exec(t::PlantedSql("users") +
         "CREATE INDEX users_email_lower ON users (lower(email));"
         "CREATE INDEX users_phone_digits ON users "
         "(translate(phone, ' -.()/', ''));"
         "GRANT SELECT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "
         "auditor;");
    referencer_ = t::TestReferencer();
    options_.referencer = referencer_.get();
  }

  void Exec(const std::string& sql) {
    absl::Status status = server_->Exec(sql, dbname_);
    ASSERT_TRUE(status.ok()) << status;
  }

  static PostgresServer* server_;
  static int databases_;
  std::string dbname_;
  StoreSpec store_;
  std::unique_ptr<SubjectReferencer> referencer_;
  ScanOptions options_;
};

PostgresServer* PostgresScanTest::server_ = nullptr;
int PostgresScanTest::databases_ = 0;

TEST_F(PostgresScanTest, FindsEveryPlantedSignal) {
  absl::StatusOr<StoreScanResult> result = ScanStore(store_, options_);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(t::Summaries(result->findings),
              UnorderedElementsAreArray(t::ExpectedPlantedFindings("users")));
  EXPECT_EQ(result->records_scanned(), 10);
  std::string report =
      AuditReportToJson(BuildAuditReport(absl::Now(), {*result}, {})).dump();
  for (const std::string& value : t::PlantedPersonalValues()) {
    EXPECT_THAT(report, Not(HasSubstr(value)));
  }
}

TEST_F(PostgresScanTest, OptOutCheckRunsInTheServer) {
  // The pushed-down query alone returns only the violating rows.
  PostgresConnector connector(store_);
  std::vector<std::string> keys;
  PostgresRowScan scan;
  scan.collection = &store_.collections[0];
  scan.where = [&](const PostgresRowScan::Quote& quote,
                   std::vector<std::string>* params) {
    return *OptOutViolationSql(store_.collections[0], quote, params);
  };
  scan.columns = {"user_id"};
  scan.visit = [&](const CollectionSpec&, const ScannedRecord& record) {
    keys.push_back(record.key);
    return absl::OkStatus();
  };
  std::vector<int64_t> table_rows;
  absl::Status status = connector.ScanRecords({scan}, &table_rows);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_THAT(keys, ::testing::UnorderedElementsAre("u-987", "u-800"));
  EXPECT_THAT(table_rows, ElementsAre(10));
}

TEST_F(PostgresScanTest, StreamsMoreRowsThanOneFetch) {
  Exec(absl::StrCat(
      "INSERT INTO users (user_id, privacy_status, notes) SELECT 'g-' || i, "
      "'active', 'nothing here' FROM generate_series(1, ",
      PostgresConnector::kScanFetchRows * 2 + 5, ") AS i;"));
  absl::StatusOr<StoreScanResult> result = ScanStore(store_, options_);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->records_scanned(),
            10 + PostgresConnector::kScanFetchRows * 2 + 5);
  EXPECT_THAT(t::Summaries(result->findings),
              UnorderedElementsAreArray(t::ExpectedPlantedFindings("users")));
}

TEST_F(PostgresScanTest, CleanDataGivesNoFinding) {
  Exec(
      "DELETE FROM users WHERE user_id IN ('u-987', 'u-600', 'u-800', "
      "'u-950');");
  absl::StatusOr<StoreScanResult> result = ScanStore(store_, options_);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->findings, IsEmpty());
  EXPECT_EQ(result->records_scanned(), 6);
}

TEST_F(PostgresScanTest, MissingColumnIsNotFound) {
  store_.collections[0].pii_fields["full_name"] = "identity";
  absl::StatusOr<StoreScanResult> result = ScanStore(store_, options_);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound)
      << result.status();
}

TEST_F(PostgresScanTest, ResidueFoundThroughTheIndexAndGoneAfterErase) {
  const std::vector<Identity> alice = {{"email", "Alice@Example.com"}};
  absl::StatusOr<std::vector<Finding>> before =
      CheckErasureResidue(store_, alice, options_);
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_THAT(t::Summaries(*before),
              ElementsAre("ERASURE_RESIDUE users.email @u-987"));
  PostgresConnector connector(store_);
  absl::StatusOr<EraseResult> erased = connector.Erase(alice);
  ASSERT_TRUE(erased.ok()) << erased.status();
  EXPECT_EQ(erased->record_count(), 1);
  absl::StatusOr<std::vector<Finding>> after =
      CheckErasureResidue(store_, alice, options_);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_THAT(*after, IsEmpty());
}

}  // namespace
}  // namespace dsar
