// Audit scan runs on the coordinator's side (docs/audit-scan-runs.md): a
// run is a request of type AUDIT_SCAN whose Map scans every store a scan
// reaches; each store's findings are its task's artifact (encrypted under
// the run's data key); the report is assembled from them when asked, and
// checked against the digest the run's completion recorded.

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "audit_scan/report.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "engine/coordinator.h"
#include "engine/coordinator_internal.h"
#include "engine/cron_schedule.h"
#include "engine/interpreter.h"
#include "model/event_kinds.h"
#include "nlohmann/json.hpp"
#include "storage/encrypted_file.h"

namespace dsar {
namespace {

// The stores an audit scan reaches: those whose data dsar reads itself.
bool Scannable(const StoreSpec& store) {
  return store.kind == "sqlite" || store.kind == "jsonl" ||
         store.kind == "postgres";
}

bool Finished(v1::RequestStatus status) {
  return status == v1::COMPLETED || status == v1::FAILED ||
         status == v1::CANCELLED || status == v1::NEEDS_ATTENTION;
}

// The plaintext of an encrypted artifact (a store's findings: small).
absl::StatusOr<std::string> ReadArtifact(const std::string& path,
                                         std::string key,
                                         const std::string& request_id) {
  ASSIGN_OR_RETURN(std::unique_ptr<EncryptedFileReader> reader,
                   EncryptedFileReader::Open(path, std::move(key),
                                             ExportFileContext(request_id)));
  std::string text(static_cast<size_t>(reader->size()), '\0');
  ASSIGN_OR_RETURN(size_t read, reader->ReadAt(0, text.data(), text.size()));
  text.resize(read);
  return text;
}

// SHA-256 over the sorted "<store>:<findings sha256>" lines of the stores
// the run's last Map scanned: the run's report digest.
std::string AuditScanDigest(const internal::RequestRecord& record) {
  std::vector<std::string> parts;
  if (!record.maps().empty()) {
    for (const internal::MapItem& item :
         record.maps(record.maps_size() - 1).items()) {
      if (item.phase() != internal::ITEM_SUCCEEDED) continue;
      parts.push_back(absl::StrCat(item.store(), ":", item.artifact_sha256()));
    }
  }
  std::sort(parts.begin(), parts.end());
  std::string text;
  for (const std::string& part : parts) absl::StrAppend(&text, part, "\n");
  return Sha256Hex(text);
}

}  // namespace

void Coordinator::RecordAuditReport(Txn& txn, LiveRequest& live,
                                    v1::RequestStatus before) {
  const v1::Request& run = live.record.request();
  if (run.type() != v1::AUDIT_SCAN || run.status() == before ||
      (run.status() != v1::COMPLETED && run.status() != v1::NEEDS_ATTENTION)) {
    return;
  }
  // The audit log commits to every finding: the digest covers each store's
  // findings digest, which its task_completed event holds too.
  int64_t records = 0;
  int scanned = 0;
  if (!live.record.maps().empty()) {
    for (const internal::MapItem& item :
         live.record.maps(live.record.maps_size() - 1).items()) {
      if (item.phase() != internal::ITEM_SUCCEEDED) continue;
      ++scanned;
      records += item.record_count();
    }
  }
  EventDraft report;
  report.kind = kEventAuditReport;
  report.detail =
      absl::StrCat("digest=", AuditScanDigest(live.record),
                   " stores_scanned=", scanned, " records_scanned=", records);
  AppendEvents(txn, live, {report});
}

absl::StatusOr<v1::CreateRequestRequest> Coordinator::AuditScanRequest() const {
  v1::CreateRequestRequest create;
  create.set_type(v1::AUDIT_SCAN);
  for (const StoreSpec& store : options_.inventory->stores()) {
    if (Scannable(store)) create.add_stores(store.name);
  }
  if (create.stores().empty()) {
    return absl::FailedPreconditionError(
        "no store an audit scan reaches (sqlite, jsonl or postgres) is in "
        "the inventory");
  }
  // Findings name subjects by a keyed hash; the workers derive its key from
  // the inventory's masking key.
  if (options_.inventory->Find(create.stores(0))->masking_key_file.empty()) {
    return absl::FailedPreconditionError(
        "inventory: masking_key_file is needed for audit scans (findings "
        "reference subjects by a hash keyed with it)");
  }
  // Not a subject's request: nothing to verify.
  create.mutable_verified()->set_method("not_a_subject_request");
  return create;
}

absl::Status Coordinator::CheckNoAuditScanRunning() const {
  for (const auto& [id, live] : live_) {
    const v1::Request& request = live.record.request();
    if (request.type() == v1::AUDIT_SCAN && !Finished(request.status())) {
      return absl::FailedPreconditionError(
          absl::StrCat("audit scan ", id, " is still running (",
                       v1::RequestStatus_Name(request.status()), ")"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<internal::RequestRecord>>
Coordinator::AuditScanRuns() const {
  std::vector<internal::RequestRecord> runs;
  RequestFilter filter;
  filter.type = v1::AUDIT_SCAN;
  std::string token;
  do {
    std::vector<internal::RequestRecord> page;
    std::string next;
    RETURN_IF_ERROR(store_->ListRequests(filter, 1000, token, &page, &next));
    for (internal::RequestRecord& record : page) {
      runs.push_back(std::move(record));
    }
    token = next;
  } while (!token.empty());
  return runs;
}

absl::StatusOr<v1::Request> Coordinator::RunAuditScan(
    const std::string& actor) {
  ASSIGN_OR_RETURN(v1::CreateRequestRequest create, AuditScanRequest());
  RETURN_IF_ERROR(CheckRoomForNewWork("audit scan refused"));
  return RunInLoop<v1::Request>(
      [this, create, actor](Txn& txn) -> absl::StatusOr<v1::Request> {
        RETURN_IF_ERROR(CheckNoAuditScanRunning());
        return CreateInLoop(txn, create, actor, /*origin=*/nullptr,
                            /*created=*/nullptr);
      });
}

absl::Status Coordinator::ScheduleAuditScans() {
  if (options_.audit_scan_schedule.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(CronSchedule schedule,
                   CronSchedule::Parse(options_.audit_scan_schedule));
  audit_schedule_.emplace(std::move(schedule));
  // A run the schedule called for while dsard was down runs once, now.
  ASSIGN_OR_RETURN(std::vector<internal::RequestRecord> runs, AuditScanRuns());
  const int64_t newest_ms =
      runs.empty() ? -1 : TimestampMillis(runs.back().request().created_at());
  absl::Time last_due =
      audit_schedule_->LastAtOrBefore(absl::FromUnixMillis(started_ms_));
  // (A first start waits for the first due time: nothing was missed.)
  if (newest_ms >= 0 && last_due != absl::InfinitePast() &&
      absl::ToUnixMillis(last_due) > newest_ms) {
    PushTimer({started_ms_, TimerKind::kAuditScan, "", 0, 0});
    LogInfo(absl::StrCat(
        "audit scan: the run due at ",
        absl::FormatTime(absl::RFC3339_sec, last_due, absl::UTCTimeZone()),
        " did not happen; running it now"));
    return absl::OkStatus();
  }
  ScheduleNextAuditScan(started_ms_);
  return absl::OkStatus();
}

void Coordinator::ScheduleNextAuditScan(int64_t after_ms) {
  if (!audit_schedule_) return;
  absl::Time next = audit_schedule_->NextAfter(absl::FromUnixMillis(after_ms));
  if (next == absl::InfiniteFuture()) return;
  PushTimer({absl::ToUnixMillis(next), TimerKind::kAuditScan, "", 0, 0});
}

void Coordinator::StartScheduledAuditScan(Txn& txn) {
  ScheduleNextAuditScan(txn.now_ms);
  absl::StatusOr<v1::CreateRequestRequest> create = AuditScanRequest();
  absl::Status status = create.status();
  if (status.ok()) status = CheckNoAuditScanRunning();
  if (status.ok()) {
    status = CreateInLoop(txn, *create, "dsard:schedule", /*origin=*/nullptr,
                          /*created=*/nullptr)
                 .status();
  }
  if (!status.ok()) {
    LogWarning(absl::StrCat("audit scan: the scheduled run did not start: ",
                            status.message()));
  }
}

absl::StatusOr<AuditReport> Coordinator::AssembleAuditReport(
    const internal::RequestRecord& record) const {
  const v1::Request& run = record.request();
  if (run.has_personal_data_destroyed_at()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the report of audit scan ", run.id(),
                     " was purged (audit report "
                     "retention; the purge is an event on the run)"));
  }
  if (record.maps().empty()) return BuildAuditReport(absl::Now(), {}, {});
  ASSIGN_OR_RETURN(std::string key, RequestDataKey(run.id()));
  std::vector<StoreScanResult> results;
  std::vector<std::pair<std::string, absl::Status>> failures;
  // The last run of the Map (a retry runs it again).
  {
    const internal::MapRun& map = record.maps(record.maps_size() - 1);
    for (const internal::MapItem& item : map.items()) {
      if (item.phase() != internal::ITEM_SUCCEEDED ||
          item.artifact_path().empty()) {
        failures.emplace_back(
            item.store(),
            absl::UnavailableError(
                item.error().empty()
                    ? std::string("not scanned")
                    : absl::StrCat(item.error(), ": ", item.cause())));
        continue;
      }
      ASSIGN_OR_RETURN(std::string text,
                       ReadArtifact(item.artifact_path(), key, run.id()));
      if (Sha256Hex(text) != item.artifact_sha256()) {
        return absl::DataLossError(
            absl::StrCat("audit scan ", run.id(), ": the findings of store ",
                         item.store(), " are not the ones its scan reported"));
      }
      nlohmann::json json = nlohmann::json::parse(text, nullptr, false);
      if (json.is_discarded()) {
        return absl::DataLossError(absl::StrCat("audit scan ", run.id(),
                                                ": the findings of store ",
                                                item.store(), " are not JSON"));
      }
      ASSIGN_OR_RETURN(AuditReport part, AuditReportFromJson(json));
      StoreScanResult result;
      result.store = item.store();
      for (const StoreCollectionCount& count : part.records_scanned) {
        result.collections.push_back({count.collection, count.records});
      }
      result.findings = std::move(part.findings);
      result.findings_not_listed = part.findings_not_listed;
      results.push_back(std::move(result));
    }
  }
  absl::Time at = absl::FromUnixSeconds(run.completed_at().seconds() != 0
                                            ? run.completed_at().seconds()
                                            : run.updated_at().seconds());
  return BuildAuditReport(at, results, failures);
}

absl::StatusOr<v1::GetAuditReportResponse> Coordinator::GetAuditReport(
    const v1::GetAuditReportRequest& request) const {
  ASSIGN_OR_RETURN(std::vector<internal::RequestRecord> runs, AuditScanRuns());
  int chosen = -1;
  for (int i = static_cast<int>(runs.size()) - 1; i >= 0; --i) {
    const v1::Request& run = runs[i].request();
    if (request.id().empty() ? run.status() == v1::COMPLETED
                             : run.id() == request.id()) {
      chosen = i;
      break;
    }
  }
  if (chosen < 0) {
    return absl::NotFoundError(
        request.id().empty() ? std::string("no audit scan has completed yet")
                             : absl::StrCat("no audit scan ", request.id()));
  }
  const internal::RequestRecord& record = runs[chosen];
  if (!Finished(record.request().status())) {
    return absl::FailedPreconditionError(
        absl::StrCat("audit scan ", record.request().id(), " is ",
                     v1::RequestStatus_Name(record.request().status())));
  }
  ASSIGN_OR_RETURN(AuditReport report, AssembleAuditReport(record));
  v1::GetAuditReportResponse response;
  response.set_run_id(record.request().id());
  response.set_report_json(AuditReportToJson(report).dump());
  response.set_digest(AuditScanDigest(record));
  if (request.diff_previous()) {
    for (int i = chosen - 1; i >= 0; --i) {
      const v1::Request& before = runs[i].request();
      if (before.status() != v1::COMPLETED ||
          before.has_personal_data_destroyed_at()) {
        continue;
      }
      ASSIGN_OR_RETURN(AuditReport previous, AssembleAuditReport(runs[i]));
      AuditReportDiff diff = DiffAuditReports(previous, report);
      AuditReport added;
      added.findings = std::move(diff.new_findings);
      AuditReport resolved;
      resolved.findings = std::move(diff.resolved_findings);
      nlohmann::ordered_json out;
      out["new"] = AuditReportToJson(added)["privacy_signals_detected"];
      out["resolved"] = AuditReportToJson(resolved)["privacy_signals_detected"];
      response.set_previous_run_id(before.id());
      response.set_diff_json(out.dump());
      break;
    }
  }
  return response;
}

}  // namespace dsar
