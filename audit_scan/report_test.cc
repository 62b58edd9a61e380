#include "audit_scan/report.h"

#include "audit_scan/audit_scan_testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dsar {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

Finding Make(Signal signal, std::string field, std::string key) {
  Finding finding;
  finding.signal = signal;
  finding.severity = SeverityOf(signal);
  finding.store = "crm";
  finding.collection = "users";
  finding.field = std::move(field);
  finding.record_key = std::move(key);
  finding.subject_reference = "sref:00112233445566778899aabbccddeeff";
  return finding;
}

StoreScanResult Result(std::vector<Finding> findings) {
  StoreScanResult result;
  result.store = "crm";
  result.collections = {{"users", 1500000}};
  result.findings = std::move(findings);
  return result;
}

absl::Time At() { return absl::FromUnixSeconds(1767661500); }  // 01:05 UTC.

TEST(ReportTest, SeedShape) {
  Finding rename = Make(Signal::kDataRenameDetection, "metadata", "u-456");
  rename.json_path = "backup_contact";
  rename.patterns = {"phone"};
  AuditReport report = BuildAuditReport(
      At(),
      {Result({Make(Signal::kOptOutViolation, "email", "u-987"), rename})}, {});
  nlohmann::ordered_json json = AuditReportToJson(report);
  EXPECT_EQ(json["audit_timestamp"], "2026-01-06T01:05:00Z");
  EXPECT_EQ(json["total_records_scanned"], 1500000);
  EXPECT_EQ(json["compliance_status"], "NON_COMPLIANT");
  ASSERT_EQ(json["privacy_signals_detected"].size(), 2u);
  EXPECT_EQ(json["privacy_signals_detected"][0].dump(),
            R"({"subject_reference":"sref:00112233445566778899aabbccddeeff",)"
            R"("signal":"OPT_OUT_VIOLATION","severity":"CRITICAL",)"
            R"("store":"crm","collection":"users","field":"email",)"
            R"("record_key":"u-987"})");
  EXPECT_EQ(json["privacy_signals_detected"][1]["json_path"], "backup_contact");
  EXPECT_EQ(json["privacy_signals_detected"][1]["severity"], "MEDIUM");
  EXPECT_EQ(json["records_scanned"][0]["records"], 1500000);
}

TEST(ReportTest, ComplianceStatus) {
  EXPECT_EQ(BuildAuditReport(At(), {Result({})}, {}).compliance_status,
            "COMPLIANT");
  Finding advice = Make(Signal::kUndeclaredPiiField, "notes", "");
  EXPECT_EQ(BuildAuditReport(At(), {Result({advice})}, {}).compliance_status,
            "COMPLIANT");
  AuditReport incomplete = BuildAuditReport(
      At(), {Result({})}, {{"orders", absl::UnavailableError("store orders")}});
  EXPECT_EQ(incomplete.compliance_status, "INCOMPLETE");
  EXPECT_EQ(AuditReportToJson(incomplete)["stores_not_scanned"][0]["store"],
            "orders");
  EXPECT_EQ(BuildAuditReport(
                At(), {Result({Make(Signal::kErasureResidue, "email", "1")})},
                {{"orders", absl::UnavailableError("x")}})
                .compliance_status,
            "NON_COMPLIANT");
}

TEST(ReportTest, RoundTripsThroughJson) {
  Finding undeclared = Make(Signal::kUndeclaredPiiField, "payload", "");
  undeclared.subject_reference.clear();
  undeclared.json_path = "contact";
  undeclared.patterns = {"email"};
  undeclared.matching_records = 7;
  undeclared.records_scanned = 10;
  AuditReport report = BuildAuditReport(
      At(),
      {Result({Make(Signal::kOptOutViolation, "email", "u-987"), undeclared})},
      {});
  absl::StatusOr<AuditReport> read = AuditReportFromJson(
      nlohmann::json::parse(AuditReportToJson(report).dump()));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->audit_timestamp, At());
  EXPECT_EQ(read->total_records_scanned, 1500000);
  EXPECT_EQ(read->compliance_status, "NON_COMPLIANT");
  EXPECT_EQ(AuditReportToJson(*read).dump(), AuditReportToJson(report).dump());

  EXPECT_EQ(AuditReportFromJson(
                nlohmann::json::parse(R"({"audit_timestamp": "yesterday"})"))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  absl::Status bad_signal =
      AuditReportFromJson(
          nlohmann::json::parse(
              R"({"audit_timestamp": "2026-01-06T01:05:00Z",)"
              R"( "privacy_signals_detected": [{"signal": "NOPE"}]})"))
          .status();
  EXPECT_THAT(bad_signal.message(),
              ::testing::HasSubstr("privacy_signals_detected[0].signal"));
}

TEST(ReportTest, DiffNamesNewAndResolvedFindings) {
  Finding kept = Make(Signal::kOptOutViolation, "email", "u-1");
  Finding fixed = Make(Signal::kOptOutViolation, "email", "u-2");
  Finding added = Make(Signal::kDataRenameDetection, "metadata", "u-1");
  added.json_path = "backup_contact";
  // Same place, other JSON path: another finding.
  Finding other_path = added;
  other_path.json_path = "other";
  AuditReport previous =
      BuildAuditReport(At(), {Result({kept, fixed, other_path})}, {});
  AuditReport current =
      BuildAuditReport(At() + absl::Hours(24), {Result({kept, added})}, {});
  AuditReportDiff diff = DiffAuditReports(previous, current);
  EXPECT_THAT(audit_testing::Summaries(diff.new_findings),
              ElementsAre("DATA_RENAME_DETECTION "
                          "users.metadata/backup_contact @u-1"));
  EXPECT_THAT(audit_testing::Summaries(diff.resolved_findings),
              ElementsAre("OPT_OUT_VIOLATION users.email @u-2",
                          "DATA_RENAME_DETECTION users.metadata/other @u-1"));
  EXPECT_THAT(DiffAuditReports(current, current).new_findings, IsEmpty());
}

}  // namespace
}  // namespace dsar
