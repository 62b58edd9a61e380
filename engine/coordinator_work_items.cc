// Manual stores' work items (docs/manual-stores.md): a READY step of a store
// no connector reaches is work for the store's owner. The owner answers it
// through CompleteWorkItem / FailWorkItem; dsard leases the step to
// "work-item:<actor>" and finishes it through CompleteTask / FailTask, so a
// manual step is recorded, audited, retried and caught exactly like a
// worker's. Part of Coordinator; see engine/coordinator.h.

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "engine/coordinator.h"
#include "engine/coordinator_internal.h"
#include "engine/request_validation.h"
#include "model/connector_errors.h"
#include "model/event_kinds.h"
#include "model/task_operation.h"
#include "nlohmann/json.hpp"
#include "storage/artifact_writer.h"
#include "storage/encrypted_file.h"

namespace dsar {
namespace {

// The prefix of the lease holder of an answered work item.
constexpr char kWorkItemHolder[] = "work-item:";
// Longest evidence or failure reason accepted (it is typed by a person).
constexpr size_t kMaxEvidenceBytes = 4096;

// INVALID_ARGUMENT unless `export_json` is the connector's export document
// for `store` (connector.h: {"store","records":[{"collection","data"}]}).
// Returns the number of records.
absl::StatusOr<int64_t> CheckExportDocument(const std::string& export_json,
                                            const std::string& store) {
  nlohmann::json document =
      nlohmann::json::parse(export_json, nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded() || !document.is_object()) {
    return absl::InvalidArgumentError("export: not a JSON object");
  }
  auto named = document.find("store");
  if (named == document.end() || !named->is_string() ||
      named->get<std::string>() != store) {
    return absl::InvalidArgumentError(
        absl::StrCat("export.store: must be \"", store, "\""));
  }
  auto records = document.find("records");
  if (records == document.end() || !records->is_array()) {
    return absl::InvalidArgumentError("export.records: must be a list");
  }
  for (size_t i = 0; i < records->size(); ++i) {
    const nlohmann::json& record = (*records)[i];
    if (!record.is_object() || !record.contains("collection") ||
        !record["collection"].is_string() || !record.contains("data") ||
        !record["data"].is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat("export.records[", i,
                       "]: must be {\"collection\": <name>, \"data\": {...}}"));
    }
  }
  return static_cast<int64_t>(records->size());
}

absl::Status CheckTypedText(const std::string& text, const char* field) {
  if (text.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": required"));
  }
  if (text.size() > kMaxEvidenceBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": longer than ", kMaxEvidenceBytes,
                     " bytes (point at the evidence instead of pasting it)"));
  }
  return absl::OkStatus();
}

}  // namespace

using coordinator_internal::TaskId;

int64_t Coordinator::WorkItemDueMs(const LiveRequest& live,
                                   const internal::MapItem& item,
                                   const StoreSpec& spec) const {
  const v1::Request& request = live.record.request();
  int64_t deadline =
      request.has_deadline() ? TimestampMillis(request.deadline()) : 0;
  if (spec.due_within <= absl::ZeroDuration()) {
    return deadline != 0
               ? deadline
               : item.ready_since_ms() +
                     absl::ToInt64Milliseconds(options_.unserved_alert_after);
  }
  int64_t due =
      item.ready_since_ms() + absl::ToInt64Milliseconds(spec.due_within);
  return deadline != 0 ? std::min(due, deadline) : due;
}

int64_t Coordinator::AlertDueMs(const LiveRequest& live,
                                const internal::MapItem& item) const {
  const StoreSpec* spec = options_.inventory->Find(item.store());
  if (spec != nullptr && IsManualStore(*spec)) {
    return WorkItemDueMs(live, item, *spec);
  }
  return item.ready_since_ms() +
         absl::ToInt64Milliseconds(options_.unserved_alert_after);
}

void Coordinator::CheckWorkItemDue(Txn& txn, LiveRequest& live, int map,
                                   int item_index, const StoreSpec& spec) {
  internal::MapItem* item =
      live.record.mutable_maps(map)->mutable_items(item_index);
  const int64_t due = WorkItemDueMs(live, *item, spec);
  if (txn.now_ms < due) {
    PushTimer({due, TimerKind::kUnserved, live.record.request().id(), map,
               item_index});
    return;
  }
  const std::string due_text = Rfc3339Millis(due);
  item->set_alert(absl::StrCat("work item of manual store ", item->store(),
                               " (owner ", spec.owner, ") overdue since ",
                               due_text));
  EventDraft overdue;
  overdue.kind = kEventWorkItemOverdue;
  overdue.state = item->state();
  overdue.store = item->store();
  overdue.detail = absl::StrCat("owner=", spec.owner, " due=", due_text);
  AppendEvents(txn, live, {overdue});
  QueueNotification(txn, live, kNotificationWorkItemOverdue,
                    {{"audience", "owner"},
                     {"store", item->store()},
                     {"owner", spec.owner},
                     {"operation", item->state()},
                     {"due", due_text},
                     {"ready_since", Rfc3339Millis(item->ready_since_ms())}});
  Log(LogLevel::kAlert,
      absl::StrCat("request ", live.record.request().id(), ": ", item->alert()),
      ForRequest(live.record.request().id()));
}

void Coordinator::AppendWorkItemEvidence(Txn& txn, LiveRequest& live,
                                         int item_index,
                                         const std::string& actor,
                                         const std::string& outcome,
                                         const std::string& evidence) {
  if (evidence.empty()) return;
  const internal::MapItem& item =
      live.record.maps(live.record.maps_size() - 1).items(item_index);
  EventDraft answered;
  answered.kind = kEventWorkItemAnswered;
  answered.state = item.state();
  answered.store = item.store();
  answered.attempt = item.attempt();
  answered.actor = actor;
  answered.detail = absl::StrCat("outcome=", outcome);
  answered.note = evidence;
  AppendEvents(txn, live, {answered});
}

std::optional<TaskOperation> Coordinator::OperationOfItem(
    const LiveRequest& live, int map, int item_index) const {
  const internal::MapRun& run = live.record.maps(map);
  const State* map_state = live.definition->root().Find(run.state());
  if (map_state == nullptr || map_state->iterator == nullptr) {
    return std::nullopt;
  }
  const State* task_state =
      map_state->iterator->Find(run.items(item_index).state());
  if (task_state == nullptr) return std::nullopt;
  return TaskOperationOfResource(task_state->resource);
}

absl::StatusOr<std::string> Coordinator::StoreWorkItemExport(
    const v1::Task& task, const std::string& holder,
    const std::string& export_json) {
  v1::ArtifactHeader header;
  header.set_worker_id(holder);
  header.set_task_id(task.task_id());
  header.set_attempt(task.attempt());
  ASSIGN_OR_RETURN(ArtifactUpload upload, ArtifactPathForUpload(header));
  ASSIGN_OR_RETURN(std::string key, RequestDataKey(upload.request_id));
  ASSIGN_OR_RETURN(
      std::unique_ptr<ArtifactWriter> writer,
      ArtifactWriter::Create(upload.path, std::move(key),
                             ExportFileContext(upload.request_id)));
  RETURN_IF_ERROR(writer->Append(export_json));
  ASSIGN_OR_RETURN(ArtifactInfo info, writer->Commit());
  return info.sha256;
}

absl::StatusOr<v1::ListWorkItemsResponse> Coordinator::ListWorkItems(
    const v1::ListWorkItemsRequest& request) {
  if (!request.store().empty()) {
    const StoreSpec* spec = options_.inventory->Find(request.store());
    if (spec == nullptr || !IsManualStore(*spec)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "store: \"", request.store(), "\" is not a manual store"));
    }
  }
  return RunInLoop<v1::ListWorkItemsResponse>(
      [this, request](Txn& txn) -> absl::StatusOr<v1::ListWorkItemsResponse> {
        std::vector<v1::WorkItem> items;
        for (const auto& [id, live] : live_) {
          const internal::RequestRecord& record = live.record;
          if (record.maps().empty() ||
              record.request().status() == v1::PAUSED ||
              IsTerminalStatus(record.request().status())) {
            continue;
          }
          const internal::MapRun& run = record.maps(record.maps_size() - 1);
          if (run.state() != record.request().current_state()) continue;
          for (int i = 0; i < run.items_size(); ++i) {
            const internal::MapItem& item = run.items(i);
            if (item.phase() != internal::ITEM_READY) continue;
            const StoreSpec* spec = options_.inventory->Find(item.store());
            if (spec == nullptr || !IsManualStore(*spec)) continue;
            if (!request.store().empty() && item.store() != request.store())
              continue;
            if (!request.owner().empty() && spec->owner != request.owner())
              continue;
            std::optional<TaskOperation> operation =
                OperationOfItem(live, record.maps_size() - 1, i);
            v1::WorkItem work;
            work.set_request_id(id);
            work.set_store(item.store());
            work.set_operation(operation
                                   ? std::string(TaskOperationName(*operation))
                                   : item.state());
            work.set_request_type(record.request().type());
            work.set_owner(spec->owner);
            work.set_instructions(spec->instructions);
            SetTimestampMillis(item.ready_since_ms(),
                               work.mutable_ready_since());
            SetTimestampMillis(WorkItemDueMs(live, item, *spec),
                               work.mutable_due());
            work.set_alert(item.alert());
            items.push_back(std::move(work));
          }
        }
        std::sort(items.begin(), items.end(),
                  [](const v1::WorkItem& a, const v1::WorkItem& b) {
                    return std::make_pair(TimestampMillis(a.ready_since()),
                                          a.request_id()) <
                           std::make_pair(TimestampMillis(b.ready_since()),
                                          b.request_id());
                  });
        v1::ListWorkItemsResponse response;
        for (v1::WorkItem& item : items)
          *response.add_items() = std::move(item);
        (void)txn;
        return response;
      });
}

absl::StatusOr<v1::Task> Coordinator::LeaseWorkItem(
    const std::string& request_id, const std::string& store,
    const std::string& worker_id, std::optional<bool> with_export) {
  const StoreSpec* spec = options_.inventory->Find(store);
  if (spec == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("store: unknown store \"", store, "\""));
  }
  if (!IsManualStore(*spec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("store: \"", store,
                     "\" is not a manual store; its workers answer its steps"));
  }
  return RunInLoop<v1::Task>([this, request_id, store, worker_id, with_export](
                                 Txn& txn) -> absl::StatusOr<v1::Task> {
    ASSIGN_OR_RETURN(LiveRequest * live, FindUnfinished(request_id));
    const internal::RequestRecord& record = live->record;
    if (record.request().status() == v1::PAUSED) {
      return absl::FailedPreconditionError(
          absl::StrCat("request ", request_id, " is paused"));
    }
    if (!record.maps().empty()) {
      int map = record.maps_size() - 1;
      const internal::MapRun& run = record.maps(map);
      for (int i = 0; i < run.items_size(); ++i) {
        const internal::MapItem& item = run.items(i);
        if (item.store() != store) continue;
        if (item.phase() == internal::ITEM_READY &&
            run.state() == record.request().current_state()) {
          const bool exports =
              OperationOfItem(*live, map, i) == TaskOperation::kExport;
          if (with_export.has_value() && *with_export != exports) {
            return absl::InvalidArgumentError(
                exports ? "export: required: this work item is an "
                          "export (give the records found, as the "
                          "connector's JSON document)"
                        : "export: only an export work item takes "
                          "records");
          }
          return LeaseItem(txn, *live, map, i, worker_id);
        }
        return absl::FailedPreconditionError(
            absl::StrCat("request ", request_id, ": the work item of store ",
                         store, " is not open (its step is ",
                         internal::ItemPhase_Name(item.phase()), ")"));
      }
    }
    return absl::FailedPreconditionError(
        absl::StrCat("request ", request_id, ": no open work item for ",
                     "store ", store, " (not in its current step)"));
  });
}

absl::StatusOr<v1::Request> Coordinator::CompleteWorkItem(
    const v1::CompleteWorkItemRequest& request, const std::string& actor) {
  RETURN_IF_ERROR(ValidateRequestId("request_id", request.request_id()));
  RETURN_IF_ERROR(CheckTypedText(request.evidence(), "evidence"));
  if (request.record_count() < 0) {
    return absl::InvalidArgumentError("record_count: must not be negative");
  }
  int64_t record_count = request.record_count();
  if (!request.export_().empty()) {
    ASSIGN_OR_RETURN(int64_t exported,
                     CheckExportDocument(request.export_(), request.store()));
    if (record_count != 0 && record_count != exported) {
      return absl::InvalidArgumentError(
          absl::StrCat("record_count: ", record_count, " but the export holds ",
                       exported, " records"));
    }
    record_count = exported;
  }
  const std::string holder = absl::StrCat(kWorkItemHolder, actor);
  ASSIGN_OR_RETURN(v1::Task task,
                   LeaseWorkItem(request.request_id(), request.store(), holder,
                                 !request.export_().empty()));
  v1::CompleteTaskRequest completion;
  completion.set_worker_id(holder);
  completion.set_task_id(task.task_id());
  completion.set_attempt(task.attempt());
  completion.set_record_count(record_count);
  completion.set_evidence(request.evidence());
  if (task.operation() == TaskOperationName(TaskOperation::kExport)) {
    absl::StatusOr<std::string> sha =
        StoreWorkItemExport(task, holder, request.export_());
    if (!sha.ok()) {
      // Reopen the item (a transient failure is retried after a back-off)
      // instead of leaving it leased until the lease expires.
      v1::FailTaskRequest failure;
      failure.set_worker_id(holder);
      failure.set_task_id(task.task_id());
      failure.set_attempt(task.attempt());
      failure.set_error(std::string(kErrorUnavailable));
      failure.set_cause(absl::StrCat("storing the owner's export failed: ",
                                     sha.status().message()));
      FailTask(failure).IgnoreError();
      return sha.status();
    }
    completion.set_artifact_sha256(*sha);
  }
  RETURN_IF_ERROR(CompleteTask(completion));
  return GetRequest(request.request_id());
}

absl::StatusOr<v1::Request> Coordinator::FailWorkItem(
    const v1::FailWorkItemRequest& request, const std::string& actor) {
  RETURN_IF_ERROR(ValidateRequestId("request_id", request.request_id()));
  RETURN_IF_ERROR(CheckTypedText(request.reason(), "reason"));
  const std::string holder = absl::StrCat(kWorkItemHolder, actor);
  ASSIGN_OR_RETURN(v1::Task task,
                   LeaseWorkItem(request.request_id(), request.store(), holder,
                                 std::nullopt));
  v1::FailTaskRequest failure;
  failure.set_worker_id(holder);
  failure.set_task_id(task.task_id());
  failure.set_attempt(task.attempt());
  failure.set_error(kErrorOperatorFailed);
  failure.set_cause(request.reason());
  failure.set_evidence(request.reason());
  RETURN_IF_ERROR(FailTask(failure));
  return GetRequest(request.request_id());
}

}  // namespace dsar
