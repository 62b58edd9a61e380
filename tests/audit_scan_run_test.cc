// Audit scan runs over the wire (docs/audit-scan-runs.md): dsard and a
// worker as processes, a SQLite store and a JSON-lines log with planted
// signals. A run started through AdminService scans both, its report names
// each signal's store, field and record without the personal values, the
// audit log's audit_report event holds the report's digest, a second run
// shows what was fixed and what is new, and a run cannot be started as a
// subject's request.

#include <sqlite3.h>

#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "dsar/v1/admin.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/dsar_cluster.h"
#include "tests/process_harness.h"
#include "tests/testing/sqlite_exec.h"

namespace dsar::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

class AuditScanRunTest : public ::testing::Test {
 protected:
  AuditScanRunTest() : dir_("dsar-audit-scan-run") {}

  void SetUp() override {
    users_db_ = dir_.Join("users.db");
    // Seed 002's shape: user 2 opted out but keeps an email; user 3 hides a
    // phone in a JSON string in metadata; user 1 is clean.
    ASSERT_NO_FATAL_FAILURE(ExecSqlite(
        users_db_,
        "CREATE TABLE users (user_id INTEGER PRIMARY KEY, email TEXT, "
        "full_name TEXT, privacy_status TEXT, metadata TEXT);"
        "CREATE INDEX users_email ON users (lower(email));"
        "INSERT INTO users VALUES (1, 'ann@example.com', 'Ann', 'active', "
        "'{}');"
        "INSERT INTO users VALUES (2, 'optout@example.com', 'Otto', "
        "'OPT_OUT', '{}');"
        "INSERT INTO users VALUES (3, 'cy@example.com', 'Cy', 'active', "
        "'{\"backup_contact\": \"+44 20 7946 0958\"}');"));
    std::ofstream(dir_.Join("events.jsonl"))
        << R"({"user_id": 1, "note": "write to kim.lee@example.org"})"
        << "\n"
        << R"({"user_id": 3, "note": "ok"})"
        << "\n";
    std::ofstream(dir_.Join("masking.key")) << std::string(40, 'k');
    inventory_ = dir_.Join("inventory.yaml");
    std::ofstream(inventory_) << R"yaml(controller: "Example Ltd"
masking_key_file: masking.key
stores:
  - name: users
    kind: sqlite
    path: users.db
    tables:
      - name: users
        identity_fields: {email: email, user_id: user_id}
        pii_fields: {email: contact, full_name: identity}
        privacy_status:
          field: privacy_status
          opted_out: [opt_out, erased]
        record_key: user_id
  - name: events
    kind: jsonl
    path: events.jsonl
    identity_fields: {user_id: user_id}
    pii_fields: {}
    identities_from: [users]
)yaml";
    DsardOptions options;
    options.data_dir = dir_.Join("data");
    options.inventory = inventory_;
    absl::StatusOr<RunningDsard> dsard = StartDsard(options, dir_.path());
    ASSERT_TRUE(dsard.ok()) << dsard.status();
    dsard_ = std::move(*dsard);
    channel_ = LoopbackChannel(dsard_.port);
    stub_ = v1::DsarService::NewStub(channel_);
    admin_ = v1::AdminService::NewStub(channel_);
    WorkerOptions worker;
    worker.coordinator_port = dsard_.port;
    worker.inventory = inventory_;
    worker.worker_id = "worker-1";
    worker.poll_wait_ms = 200;
    absl::StatusOr<std::unique_ptr<Process>> started =
        StartWorker(worker, dir_.path());
    ASSERT_TRUE(started.ok()) << started.status();
    worker_ = std::move(*started);
  }

  void TearDown() override {
    if (HasFailure()) {
      for (Process* process : {dsard_.process.get(), worker_.get()}) {
        if (process != nullptr) {
          std::cerr << "--- " << process->log_path() << "\n"
                    << ReadFileOrEmpty(process->log_path());
        }
      }
    }
  }

  // Starts a run and waits until it ends; its final state.
  v1::Request Run() {
    grpc::ClientContext context;
    v1::Request run;
    grpc::Status status =
        admin_->RunAuditScan(&context, v1::RunAuditScanRequest(), &run);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(run.type(), v1::AUDIT_SCAN);
    absl::StatusOr<v1::Request> done =
        WaitUntilTerminal(*stub_, run.id(), absl::Seconds(60));
    EXPECT_TRUE(done.ok()) << done.status();
    return done.ok() ? *done : v1::Request();
  }

  v1::GetAuditReportResponse Report(const std::string& id, bool diff) {
    grpc::ClientContext context;
    v1::GetAuditReportRequest request;
    request.set_id(id);
    request.set_diff_previous(diff);
    v1::GetAuditReportResponse response;
    grpc::Status status = admin_->GetAuditReport(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  TempDir dir_;
  std::string users_db_;
  std::string inventory_;
  RunningDsard dsard_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::DsarService::Stub> stub_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
  std::unique_ptr<Process> worker_;
};

// Finds the signal about `store` / `field` in the report.
const json* FindSignal(const json& report, const std::string& signal,
                       const std::string& store, const std::string& field) {
  for (const json& found : report["privacy_signals_detected"]) {
    if (found.value("signal", "") == signal &&
        found.value("store", "") == store &&
        found.value("field", "") == field) {
      return &found;
    }
  }
  return nullptr;
}

TEST_F(AuditScanRunTest, ARunReportsEverySignalWithoutTheValues) {
  v1::Request run = Run();
  ASSERT_EQ(run.status(), v1::COMPLETED) << run.ShortDebugString();
  ASSERT_EQ(run.steps_size(), 2);
  for (const v1::StoreStep& step : run.steps()) {
    EXPECT_EQ(step.map_state(), "ScanStores");
    EXPECT_GT(step.record_count(), 0) << step.store();  // Records scanned.
  }

  v1::GetAuditReportResponse response = Report("", /*diff=*/false);
  EXPECT_EQ(response.run_id(), run.id());
  json report = json::parse(response.report_json());
  EXPECT_EQ(report["total_records_scanned"], 5);
  EXPECT_EQ(report["compliance_status"], "NON_COMPLIANT");
  const json* opt_out =
      FindSignal(report, "OPT_OUT_VIOLATION", "users", "email");
  ASSERT_NE(opt_out, nullptr) << report.dump(2);
  EXPECT_EQ((*opt_out)["severity"], "CRITICAL");
  EXPECT_EQ((*opt_out)["record_key"], "2");
  const json* renamed =
      FindSignal(report, "DATA_RENAME_DETECTION", "users", "metadata");
  ASSERT_NE(renamed, nullptr) << report.dump(2);
  EXPECT_EQ((*renamed)["record_key"], "3");
  EXPECT_NE(FindSignal(report, "DATA_RENAME_DETECTION", "events", "note"),
            nullptr)
      << report.dump(2);
  // The clean user is not named; no personal value is anywhere.
  for (const json& found : report["privacy_signals_detected"]) {
    if (found.value("store", "") != "users") continue;
    EXPECT_NE(found.value("record_key", ""), "1") << found.dump();
  }
  for (const char* value : {"optout@example.com", "Otto", "7946", "kim.lee"}) {
    EXPECT_THAT(response.report_json(), Not(HasSubstr(value))) << value;
  }

  // The audit log commits to the report: its digest is in the run's
  // audit_report event.
  absl::StatusOr<std::vector<v1::Event>> events =
      ListAllEvents(*stub_, run.id());
  ASSERT_TRUE(events.ok()) << events.status();
  bool recorded = false;
  for (const v1::Event& event : *events) {
    if (event.kind() != "audit_report") continue;
    recorded = true;
    EXPECT_THAT(event.detail(), HasSubstr("digest=" + response.digest()));
    EXPECT_THAT(event.detail(), HasSubstr("records_scanned=5"));
  }
  EXPECT_TRUE(recorded);
}

TEST_F(AuditScanRunTest, ASecondRunShowsWhatWasFixedAndWhatIsNew) {
  v1::Request first = Run();
  ASSERT_EQ(first.status(), v1::COMPLETED);
  // The opted-out user is scrubbed; a new one opts out without it.
  ASSERT_NO_FATAL_FAILURE(ExecSqlite(
      users_db_,
      "UPDATE users SET email = NULL, full_name = NULL WHERE user_id = 2;"
      "UPDATE users SET privacy_status = 'erased' WHERE user_id = 1;"));
  v1::Request second = Run();
  ASSERT_EQ(second.status(), v1::COMPLETED);
  v1::GetAuditReportResponse response = Report(second.id(), /*diff=*/true);
  EXPECT_EQ(response.previous_run_id(), first.id());
  json diff = json::parse(response.diff_json());
  ASSERT_TRUE(diff["new"].is_array());
  bool new_violation = false;
  for (const json& found : diff["new"]) {
    new_violation |= found.value("signal", "") == "OPT_OUT_VIOLATION" &&
                     found.value("record_key", "") == "1";
  }
  EXPECT_TRUE(new_violation) << diff.dump(2);
  bool resolved = false;
  for (const json& found : diff["resolved"]) {
    resolved |= found.value("signal", "") == "OPT_OUT_VIOLATION" &&
                found.value("record_key", "") == "2";
  }
  EXPECT_TRUE(resolved) << diff.dump(2);
}

// The operator's way: dsarctl starts a run and prints its report.
TEST_F(AuditScanRunTest, DsarctlRunsAScanAndShowsItsReport) {
  const std::string addr = absl::StrCat("--addr=127.0.0.1:", dsard_.port);
  const std::string log = dir_.Join("dsarctl.log");
  absl::StatusOr<int> started = RunToExit(
      DsarctlPath(), {addr, "audit-scan", "run"}, log, absl::Seconds(30));
  ASSERT_TRUE(started.ok()) << started.status();
  ASSERT_EQ(*started, 0) << ReadFileOrEmpty(log);
  // The id is printed alone on its line (stdout); the hint goes to stderr.
  std::string id;
  for (absl::string_view line : absl::StrSplit(ReadFileOrEmpty(log), '\n')) {
    if (absl::StartsWith(line, "dsr_")) id = std::string(line);
  }
  ASSERT_FALSE(id.empty()) << ReadFileOrEmpty(log);
  absl::StatusOr<v1::Request> done =
      WaitUntilTerminal(*stub_, id, absl::Seconds(60));
  ASSERT_TRUE(done.ok()) << done.status();
  const std::string report_log = dir_.Join("report.log");
  absl::StatusOr<int> shown =
      RunToExit(DsarctlPath(), {addr, "audit-scan", "report", id}, report_log,
                absl::Seconds(30));
  ASSERT_TRUE(shown.ok()) << shown.status();
  EXPECT_EQ(*shown, 0);
  const std::string out = ReadFileOrEmpty(report_log);
  EXPECT_THAT(out, HasSubstr("NON_COMPLIANT"));
  EXPECT_THAT(out, HasSubstr("OPT_OUT_VIOLATION"));
  EXPECT_THAT(out, HasSubstr("metadata.backup_contact"));
  EXPECT_THAT(out, Not(HasSubstr("optout@example.com")));
}

TEST_F(AuditScanRunTest, ARunIsNotASubjectsRequest) {
  v1::CreateRequestRequest request;
  request.set_type(v1::AUDIT_SCAN);
  v1::SubjectIdentity* identity = request.add_identities();
  identity->set_type(v1::EMAIL);
  identity->set_value("ann@example.com");
  grpc::ClientContext context;
  v1::Request created;
  grpc::Status status = stub_->CreateRequest(&context, request, &created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("AUDIT_SCAN"));
  // No run has completed: the latest report is NOT_FOUND.
  grpc::ClientContext report_context;
  v1::GetAuditReportResponse response;
  EXPECT_EQ(admin_
                ->GetAuditReport(&report_context, v1::GetAuditReportRequest(),
                                 &response)
                .error_code(),
            grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace dsar::testing
