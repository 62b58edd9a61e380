#include "audit_scan/store_scan.h"

#include <atomic>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "audit_scan/audit_scan_testing.h"
#include "audit_scan/report.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "workers/connectors/jsonl.h"

namespace dsar {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::UnorderedElementsAreArray;
namespace t = audit_testing;

class StoreScanTest : public t::AuditScanTest {
 protected:
  // The serialized report of `result` holds none of the planted values.
  void ExpectNoPersonalValueIn(const StoreScanResult& result) {
    std::string text =
        AuditReportToJson(BuildAuditReport(absl::Now(), {result}, {})).dump();
    for (const std::string& value : t::PlantedPersonalValues()) {
      EXPECT_THAT(text, Not(HasSubstr(value)));
    }
  }
};

TEST_F(StoreScanTest, SqliteFindsEveryPlantedSignalAndNothingElse) {
  StoreSpec store =
      SqliteStore(t::PlantedSql("users"), {t::PlantedCollection("users")});
  absl::StatusOr<StoreScanResult> result = ScanStore(store, options_);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->store, "crm");
  EXPECT_THAT(t::Summaries(result->findings),
              UnorderedElementsAreArray(t::ExpectedPlantedFindings("users")));
  ASSERT_EQ(result->collections.size(), 1u);
  EXPECT_EQ(result->collections[0].records_scanned, 10);
  for (const Finding& finding : result->findings) {
    EXPECT_EQ(finding.store, "crm");
    EXPECT_THAT(finding.subject_reference, ::testing::StartsWith("sref:"));
    if (finding.signal == Signal::kOptOutViolation) {
      EXPECT_EQ(finding.severity, Severity::kCritical);
    } else {
      EXPECT_EQ(finding.severity, Severity::kMedium);
    }
    if (finding.record_key == "u-987" &&
        finding.signal == Signal::kDataRenameDetection) {
      EXPECT_THAT(finding.patterns, ElementsAre("phone"));
    }
    if (finding.record_key == "u-600") {
      EXPECT_THAT(finding.patterns, ElementsAre("payment_card"));
    }
  }
  ExpectNoPersonalValueIn(*result);
}

TEST_F(StoreScanTest, SqliteRecordKeyIsTheRowidWithoutADeclaredKey) {
  CollectionSpec users = t::PlantedCollection("users");
  users.record_key.clear();
  StoreSpec store = SqliteStore(t::PlantedSql("users"), {users});
  absl::StatusOr<StoreScanResult> result = ScanStore(store, options_);
  ASSERT_TRUE(result.ok()) << result.status();
  // u-987 is the second row inserted.
  EXPECT_THAT(t::Summaries(result->findings),
              ::testing::Contains("OPT_OUT_VIOLATION users.email @2"));
}

TEST_F(StoreScanTest, CleanDataGivesNoFinding) {
  StoreSpec store = SqliteStore(
      "CREATE TABLE users (user_id text, email text, phone text, "
      "privacy_status text, restricted integer, metadata text, notes text);"
      "INSERT INTO users VALUES ('u-1', 'a@example.com', NULL, 'active', 0, "
      "'{\"theme\": \"dark\", \"visits\": 12}', 'order 4111111111111112'),"
      "('u-2', NULL, NULL, 'OPT_OUT', 0, '{\"at\": "
      "\"2026-01-06T11:00:00Z\"}', NULL),"
      "('u-3', 'REDACTED', '', 'opt_out', 0, NULL, 'part 555-0199');",
      {t::PlantedCollection("users")});
  absl::StatusOr<StoreScanResult> result = ScanStore(store, options_);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->findings, IsEmpty());
  EXPECT_EQ(result->records_scanned(), 3);
  EXPECT_EQ(BuildAuditReport(absl::Now(), {*result}, {}).compliance_status,
            "COMPLIANT");
}

TEST_F(StoreScanTest, UndeclaredFieldWhenMoreThanTheShareOfRecordsMatch) {
  CollectionSpec events;
  events.name = "events";
  events.identity_fields = {{"user_id", "id"}};
  std::string sql =
      "CREATE TABLE events (id integer PRIMARY KEY, payload "
      "text, kind text); INSERT INTO events VALUES ";
  for (int i = 1; i <= 10; ++i) {
    // Seven of ten payloads hold an email under "contact"; all kinds are
    // clean.
    std::string payload =
        i <= 7 ? absl::StrCat("{\"contact\": \"user", i, "@example.com\"}")
               : "{\"contact\": null}";
    absl::StrAppend(&sql, i == 1 ? "" : ", ", "(", i, ", '", payload,
                    "', 'click')");
  }
  StoreSpec store = SqliteStore(sql, {events});
  options_.undeclared_share = 0.5;
  absl::StatusOr<StoreScanResult> result = ScanStore(store, options_);
  ASSERT_TRUE(result.ok()) << result.status();
  std::vector<Finding> undeclared;
  for (const Finding& finding : result->findings) {
    if (finding.signal == Signal::kUndeclaredPiiField) {
      undeclared.push_back(finding);
    }
  }
  ASSERT_EQ(undeclared.size(), 1u);
  EXPECT_EQ(t::Summary(undeclared[0]),
            "UNDECLARED_PII_FIELD events.payload/contact");
  EXPECT_EQ(undeclared[0].severity, Severity::kLow);
  EXPECT_EQ(undeclared[0].matching_records, 7);
  EXPECT_EQ(undeclared[0].records_scanned, 10);
  EXPECT_THAT(undeclared[0].patterns, ElementsAre("email"));
  EXPECT_EQ(result->findings.size(), 8u);  // 7 DATA_RENAME + 1 UNDECLARED.

  // Above the share: no UNDECLARED_PII_FIELD.
  options_.undeclared_share = 0.7;
  result = ScanStore(store, options_);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->findings.size(), 7u);
}

TEST_F(StoreScanTest, FindingsBeyondTheCapAreCounted) {
  StoreSpec store =
      SqliteStore(t::PlantedSql("users"), {t::PlantedCollection("users")});
  options_.max_findings_per_collection = 2;
  absl::StatusOr<StoreScanResult> result = ScanStore(store, options_);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->findings.size(), 2u);
  EXPECT_EQ(result->findings_not_listed, 3);
}

TEST_F(StoreScanTest, MissingTableIsNotFoundWithoutValues) {
  StoreSpec store =
      SqliteStore(t::PlantedSql("users"), {t::PlantedCollection("people")});
  absl::StatusOr<StoreScanResult> result = ScanStore(store, options_);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(StoreScanTest, JsonlFindsEveryPlantedSignal) {
  StoreSpec store =
      JsonlStore(absl::StrCat("not json\n", t::PlantedJsonLines()));
  absl::StatusOr<StoreScanResult> result = ScanStore(store, options_);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(
      t::Summaries(result->findings),
      UnorderedElementsAreArray(t::ExpectedPlantedFindings("activity")));
  EXPECT_EQ(result->records_scanned(), 10);
  ExpectNoPersonalValueIn(*result);
}

TEST_F(StoreScanTest, JsonlCleanDataGivesNoFinding) {
  StoreSpec store = JsonlStore(
      R"({"user_id": "u-1", "email": "a@example.com", "privacy_status": )"
      R"("active", "metadata": "{\"theme\": \"dark\"}"})"
      "\n"
      R"({"user_id": "u-2", "email": "", "privacy_status": "Opt_Out", )"
      R"("notes": "order 4111111111111112", "seen": 1767697200003})"
      "\n"
      R"({"user_id": "u-3", "email": "carol@example.com", )"
      R"("privacy_status": "RESTRICTED"})"
      "\n");
  absl::StatusOr<StoreScanResult> result = ScanStore(store, options_);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->findings, IsEmpty());
  EXPECT_EQ(result->records_scanned(), 3);
}

TEST_F(StoreScanTest, JsonlRecordKeyIsTheLineNumberWithoutADeclaredKey) {
  StoreSpec store = JsonlStore(t::PlantedJsonLines());
  store.collections[0].record_key.clear();
  absl::StatusOr<StoreScanResult> result = ScanStore(store, options_);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(t::Summaries(result->findings),
              ::testing::Contains(
                  "DATA_RENAME_DETECTION activity.metadata/backup_contact @2"));
}

TEST_F(StoreScanTest, JsonlNestedObjectsAreSearchedToo) {
  StoreSpec store =
      JsonlStore(R"({"user_id": "u-1", "privacy_status": "active", "payload": )"
                 R"({"shipping": {"contact": {"mobile": "+44 7700 900777"}}}})"
                 "\n");
  absl::StatusOr<StoreScanResult> result = ScanStore(store, options_);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(t::Summaries(result->findings),
              ElementsAre("DATA_RENAME_DETECTION "
                          "activity.payload/shipping.contact.mobile @u-1"));
}

TEST_F(StoreScanTest, JsonlScanReadsOnlyTheLengthSeenAtTheStart) {
  StoreSpec store = JsonlStore(t::PlantedJsonLines());
  JsonlConnector connector(store);
  int records = 0;
  absl::Status status = connector.ScanRecords(
      [&](const CollectionSpec&, const ScannedRecord&) -> absl::Status {
        if (records++ == 0) {
          // A writer ignoring the lock appends meanwhile.
          std::ofstream out(store.path, std::ios::app);
          out << R"({"user_id": "late", "email": "late@example.com"})"
              << "\n";
        }
        return absl::OkStatus();
      });
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(records, 10);
}

TEST_F(StoreScanTest, SeedRecordThroughAnInventoryFile) {
  // Seed 002's record, its store declared as docs/inventory.md says.
  t::WriteFile(dir_ + "/users.jsonl",
               R"({"user_id": "u-987", "email": "alice@example.com", )"
               R"("privacy_status": "opt_out", "metadata": )"
               R"("{\"backup_contact\": \"555-0199\"}", )"
               R"("timestamp": "2026-01-06T11:00:00Z"})"
               "\n");
  absl::StatusOr<Inventory> inventory = Inventory::Parse(
      R"yaml(
stores:
  - name: users
    kind: jsonl
    path: users.jsonl
    identity_fields: {email: email, user_id: user_id}
    pii_fields: {email: contact}
    privacy_status: {field: privacy_status, opted_out: [opt_out]}
    record_key: user_id
)yaml",
      dir_);
  ASSERT_TRUE(inventory.ok()) << inventory.status();
  absl::StatusOr<StoreScanResult> result =
      ScanStore(inventory->stores()[0], options_);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(t::Summaries(result->findings),
              ElementsAre("OPT_OUT_VIOLATION users.email @u-987",
                          "DATA_RENAME_DETECTION "
                          "users.metadata/backup_contact @u-987"));
  nlohmann::ordered_json report =
      AuditReportToJson(BuildAuditReport(absl::Now(), {*result}, {}));
  EXPECT_EQ(report["total_records_scanned"], 1);
  EXPECT_EQ(report["compliance_status"], "NON_COMPLIANT");
  EXPECT_THAT(report.dump(), Not(HasSubstr("alice")));
  EXPECT_THAT(report.dump(), Not(HasSubstr("555-0199")));
}

TEST_F(StoreScanTest, CancelledScanStops) {
  std::atomic<bool> cancel(true);
  options_.cancel = &cancel;
  StoreSpec log = JsonlStore(t::PlantedJsonLines());
  EXPECT_EQ(ScanStore(log, options_).status().code(),
            absl::StatusCode::kCancelled);
  StoreSpec db =
      SqliteStore(t::PlantedSql("users"), {t::PlantedCollection("users")});
  EXPECT_EQ(ScanStore(db, options_).status().code(),
            absl::StatusCode::kCancelled);
}

TEST_F(StoreScanTest, ManualStoreIsNotScanned) {
  StoreSpec store;
  store.name = "paper";
  store.kind = "manual";
  EXPECT_EQ(ScanStore(store, options_).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(StoreScanTest, NeedsAReferencer) {
  StoreSpec store = JsonlStore(t::PlantedJsonLines());
  EXPECT_EQ(ScanStore(store, ScanOptions()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dsar
