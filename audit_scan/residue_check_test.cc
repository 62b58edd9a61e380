#include "audit_scan/residue_check.h"

#include "absl/strings/str_cat.h"
#include "audit_scan/audit_scan_testing.h"
#include "audit_scan/report.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "workers/connectors/jsonl.h"
#include "workers/connectors/sqlite.h"

namespace dsar {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
namespace t = audit_testing;

using ResidueCheckTest = t::AuditScanTest;

TEST_F(ResidueCheckTest, SqliteFindsALeftoverAndNothingAfterACleanErase) {
  CollectionSpec newsletter;
  newsletter.name = "newsletter";
  newsletter.identity_fields = {{"email", "address"}};
  StoreSpec store =
      SqliteStore(t::PlantedSql("users") +
                      "CREATE TABLE newsletter (address text);"
                      "CREATE INDEX users_email ON users (lower(email));"
                      "CREATE INDEX newsletter_address ON newsletter "
                      "(lower(address));"
                      "INSERT INTO newsletter VALUES ('ALICE@example.com');",
                  {t::PlantedCollection("users"), newsletter});
  const std::vector<Identity> alice = {{"email", "alice@example.com"},
                                       {"user_id", "u-987"}};

  // Before the erasure the subject is everywhere.
  absl::StatusOr<std::vector<Finding>> before =
      CheckErasureResidue(store, alice, options_);
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_THAT(t::Summaries(*before),
              ElementsAre("ERASURE_RESIDUE users.email @u-987",
                          "ERASURE_RESIDUE users.user_id @u-987",
                          "ERASURE_RESIDUE newsletter.address @match 1"));
  for (const Finding& finding : *before) {
    EXPECT_EQ(finding.severity, Severity::kCritical);
    EXPECT_EQ(finding.store, "crm");
  }

  SqliteConnector connector(store);
  ASSERT_TRUE(connector.Erase(alice).ok());
  absl::StatusOr<std::vector<Finding>> after =
      CheckErasureResidue(store, alice, options_);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_THAT(*after, IsEmpty());

  // A writer puts the subject back (a sync job, a trigger): found.
  t::ExecSqlite(store.path,
                "INSERT INTO newsletter VALUES ('alice@EXAMPLE.com');");
  absl::StatusOr<std::vector<Finding>> leftover =
      CheckErasureResidue(store, alice, options_);
  ASSERT_TRUE(leftover.ok()) << leftover.status();
  EXPECT_THAT(t::Summaries(*leftover),
              ElementsAre("ERASURE_RESIDUE newsletter.address @match 1"));
  StoreScanResult result;
  result.store = "crm";
  result.findings = *leftover;
  std::string report =
      AuditReportToJson(BuildAuditReport(absl::Now(), {result}, {})).dump();
  EXPECT_THAT(report, Not(HasSubstr("alice")));
  EXPECT_THAT(report, HasSubstr("ERASURE_RESIDUE"));
}

TEST_F(ResidueCheckTest, JsonlFindsALeftoverLine) {
  StoreSpec store = JsonlStore(t::PlantedJsonLines());
  const std::vector<Identity> phone = {{"phone", "+447700900123"}};
  absl::StatusOr<std::vector<Finding>> before =
      CheckErasureResidue(store, phone, options_);
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_THAT(t::Summaries(*before),
              ElementsAre("ERASURE_RESIDUE activity.phone @u-800"));
  JsonlConnector connector(store);
  ASSERT_TRUE(connector.Erase(phone).ok());
  absl::StatusOr<std::vector<Finding>> after =
      CheckErasureResidue(store, phone, options_);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_THAT(*after, IsEmpty());
}

TEST_F(ResidueCheckTest, ManualStoreCannotBeChecked) {
  StoreSpec store;
  store.name = "paper";
  store.kind = "manual";
  EXPECT_EQ(CheckErasureResidue(store, {{"email", "a@example.com"}}, options_)
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace dsar
