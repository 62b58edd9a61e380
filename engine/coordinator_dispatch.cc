// Task hand-out and leases: long polls, leasing with fencing tokens,
// heartbeats, completions and failures from workers, and which stores have
// a live worker. Part of Coordinator; see engine/coordinator.h.

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "engine/coordinator.h"
#include "engine/coordinator_internal.h"
#include "engine/identity.h"
#include "model/event_kinds.h"
#include "model/task_operation.h"
#include "model/worker_protocol.h"
#include "storage/artifact_writer.h"
#include "storage/encrypted_file.h"

namespace dsar {
namespace {

constexpr int kDefaultPollWaitMs = 20000;
constexpr int kMaxPollWaitMs = 60000;

// The operation a Map iterator's Task state runs. Always set for a loaded
// definition: ParseStateMachine admits only worker resources there.
std::optional<TaskOperation> OperationOf(const State& task) {
  return TaskOperationOfResource(task.resource);
}

}  // namespace

using coordinator_internal::ParsedTaskId;
using coordinator_internal::ParseTaskId;
using coordinator_internal::TaskId;

std::optional<v1::Task> Coordinator::TryLease(
    Txn& txn, const std::vector<std::string>& stores,
    const std::string& worker_id) {
  // Start at a rotating store so one busy store does not starve the others.
  size_t offset =
      stores.empty() ? 0 : absl::Uniform<size_t>(random_, 0, stores.size());
  for (size_t n = 0; n < stores.size(); ++n) {
    auto queue = ready_.find(stores[(offset + n) % stores.size()]);
    if (queue == ready_.end()) continue;
    while (!queue->second.empty()) {
      TaskRef ref = std::move(queue->second.front());
      queue->second.pop_front();
      std::string task_id = TaskId(ref.request_id, ref.map, ref.item);
      queued_.erase(task_id);
      auto it = live_.find(ref.request_id);
      if (it == live_.end()) continue;
      LiveRequest& live = it->second;
      internal::RequestRecord& record = live.record;
      // On hold: dropped from the queue; ResumeRequest queues it again.
      if (record.request().status() == v1::PAUSED) continue;
      if (ref.map != record.maps_size() - 1 ||
          ref.item >= record.maps(ref.map).items_size()) {
        continue;
      }
      if (record.maps(ref.map).items(ref.item).phase() !=
          internal::ITEM_READY) {
        continue;
      }
      return LeaseItem(txn, live, ref.map, ref.item, worker_id);
    }
  }
  return std::nullopt;
}

v1::Task Coordinator::LeaseItem(Txn& txn, LiveRequest& live, int map,
                                int item_index, const std::string& worker_id) {
  const std::string& id = live.record.request().id();
  internal::MapItem* item =
      live.record.mutable_maps(map)->mutable_items(item_index);
  item->set_phase(internal::ITEM_LEASED);
  item->set_attempt(item->attempt() + 1);
  item->set_worker_id(worker_id);
  item->clear_alert();
  int64_t expiry =
      txn.now_ms + absl::ToInt64Milliseconds(options_.lease_duration);
  lease_expiry_ms_[TaskId(id, map, item_index)] = expiry;
  PushTimer({expiry, TimerKind::kLease, id, map, item_index});
  EventDraft leased;
  leased.kind = kEventTaskLeased;
  leased.state = item->state();
  leased.store = item->store();
  leased.attempt = item->attempt();
  leased.worker_id = worker_id;
  AppendEvents(txn, live, {leased});
  return BuildTask(live, map, item_index);
}

void Coordinator::DispatchToPollers(Txn& txn) {
  // One task to each poll first. Then, while tasks are left over (more
  // ready than polls wait for), one more in turns to each poll served that
  // asked for more: a backlog goes out in fewer messages, and no poll is
  // left waiting while another takes several.
  struct Served {
    std::list<Poller>::iterator poller;
    LeasedTasks tasks;
  };
  std::vector<Served> served;
  const int64_t real_now = RealClock()->NowMillis();
  for (auto it = pollers_.begin(); it != pollers_.end();) {
    if (it->slot->Abandoned()) {
      it = pollers_.erase(it);
      continue;
    }
    std::optional<v1::Task> task = TryLease(txn, it->stores, it->worker_id);
    if (task.has_value()) {
      served.push_back({it, {}});
      served.back().tasks.push_back(*std::move(task));
    } else if (it->deadline_ms <= real_now) {
      txn.replies.push_back([slot = it->slot] { slot->Fulfil(LeasedTasks()); });
      it = pollers_.erase(it);
      continue;
    }
    ++it;
  }
  for (bool leased_more = true; leased_more;) {
    leased_more = false;
    for (Served& poll : served) {
      if (static_cast<int>(poll.tasks.size()) >= poll.poller->max_tasks) {
        continue;
      }
      std::optional<v1::Task> task =
          TryLease(txn, poll.poller->stores, poll.poller->worker_id);
      if (!task.has_value()) continue;
      poll.tasks.push_back(*std::move(task));
      leased_more = true;
    }
  }
  for (Served& poll : served) {
    txn.replies.push_back(
        [slot = poll.poller->slot, tasks = std::move(poll.tasks)]() mutable {
          slot->Fulfil(std::move(tasks));
        });
    pollers_.erase(poll.poller);
  }
}

v1::Task Coordinator::BuildTask(const LiveRequest& live, int map,
                                int item_index) const {
  const internal::RequestRecord& record = live.record;
  const internal::MapItem& item = record.maps(map).items(item_index);
  const State* map_state =
      live.definition->root().Find(record.maps(map).state());
  const State* task_state = map_state->iterator->Find(item.state());
  v1::Task task;
  task.set_task_id(TaskId(record.request().id(), map, item_index));
  task.set_request_id(record.request().id());
  task.set_store(item.store());
  std::optional<TaskOperation> operation = OperationOf(*task_state);
  // Without an operation (which a validated definition rules out) the
  // resource goes out as it is: the worker refuses it as a permanent error
  // and the store fails, instead of dsard stopping for every request.
  task.set_operation(operation.has_value()
                         ? std::string(TaskOperationName(*operation))
                         : task_state->resource);
  task.set_attempt(item.attempt());
  task.set_request_type(record.request().type());
  task.set_regulation(record.request().regulation());
  task.set_submitted_unix_ms(TimestampMillis(record.request().created_at()));
  *task.mutable_identities() = record.request().identities();
  MergeIdentities(record.discovered(), task.mutable_identities());
  auto expiry = lease_expiry_ms_.find(task.task_id());
  if (expiry != lease_expiry_ms_.end())
    task.set_lease_expires_unix_ms(expiry->second);
  task.set_lease_duration_ms(
      absl::ToInt64Milliseconds(options_.lease_duration));
  if (operation == TaskOperation::kRectify) {
    for (const v1::FieldCorrection& correction :
         record.request().corrections()) {
      if (correction.store().empty() || correction.store() == item.store()) {
        *task.add_corrections() = correction;
      }
    }
  }
  return task;
}

bool Coordinator::StoreServed(const std::string& store, int64_t now_ms) const {
  int64_t live_since =
      now_ms - absl::ToInt64Milliseconds(options_.worker_silence_after);
  for (const auto& [id, seen] : workers_) {
    if (seen.last_seen_ms >= live_since &&
        std::find(seen.stores.begin(), seen.stores.end(), store) !=
            seen.stores.end()) {
      return true;
    }
  }
  return false;
}

void Coordinator::CheckUnserved(Txn& txn, LiveRequest& live, int map,
                                int item_index) {
  internal::MapItem* item =
      live.record.mutable_maps(map)->mutable_items(item_index);
  if (item->phase() != internal::ITEM_READY || !item->alert().empty()) return;
  const StoreSpec* spec = options_.inventory->Find(item->store());
  if (spec != nullptr && IsManualStore(*spec)) {
    CheckWorkItemDue(txn, live, map, item_index, *spec);
    return;
  }
  int64_t alert_after =
      absl::ToInt64Milliseconds(options_.unserved_alert_after);
  if (txn.now_ms < item->ready_since_ms() + alert_after) return;
  // Workers reconnect after a restart of dsard: give them time to be seen.
  int64_t settled =
      started_ms_ + absl::ToInt64Milliseconds(options_.worker_silence_after);
  if (txn.now_ms < settled) {
    PushTimer({settled, TimerKind::kUnserved, live.record.request().id(), map,
               item_index});
    return;
  }
  if (StoreServed(item->store(), txn.now_ms)) {
    // A backlog, not an outage: look again later.
    PushTimer({txn.now_ms + alert_after, TimerKind::kUnserved,
               live.record.request().id(), map, item_index});
    return;
  }
  std::string since = Rfc3339Millis(item->ready_since_ms());
  item->set_alert(absl::StrCat("no live worker serves store ", item->store(),
                               "; ready since ", since));
  EventDraft unserved;
  unserved.kind = kEventStoreUnserved;
  unserved.state = item->state();
  unserved.store = item->store();
  unserved.detail = item->alert();
  AppendEvents(txn, live, {unserved});
  QueueNotification(txn, live, kNotificationStoreUnserved,
                    {{"audience", "operator"},
                     {"store", item->store()},
                     {"ready_since", since}});
  Log(LogLevel::kAlert,
      absl::StrCat("request ", live.record.request().id(), ": ", item->alert()),
      ForRequest(live.record.request().id()));
}

void Coordinator::SawWorker(const std::string& worker_id, int64_t now_ms,
                            const std::vector<std::string>* stores) {
  WorkerSeen& seen = workers_[worker_id];
  seen.last_seen_ms = now_ms;
  if (stores != nullptr) seen.stores = *stores;
}

absl::StatusOr<v1::ListWorkersResponse> Coordinator::ListWorkers() {
  return RunInLoop<v1::ListWorkersResponse>(
      [this](Txn& txn) -> absl::StatusOr<v1::ListWorkersResponse> {
        absl::flat_hash_map<std::string, std::vector<std::string>> leases;
        for (const auto& [task_id, expiry] : lease_expiry_ms_) {
          absl::StatusOr<ParsedTaskId> parsed = ParseTaskId(task_id);
          if (!parsed.ok()) continue;
          auto it = live_.find(parsed->request_id);
          if (it == live_.end() || parsed->map >= it->second.record.maps_size())
            continue;
          const internal::MapRun& run = it->second.record.maps(parsed->map);
          if (parsed->item >= run.items_size()) continue;
          leases[run.items(parsed->item).worker_id()].push_back(task_id);
        }
        std::vector<std::pair<std::string, const WorkerSeen*>> order;
        for (const auto& [id, seen] : workers_) order.emplace_back(id, &seen);
        std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
          return a.second->last_seen_ms > b.second->last_seen_ms;
        });
        v1::ListWorkersResponse response;
        for (const auto& [id, seen] : order) {
          v1::WorkerInfo* info = response.add_workers();
          info->set_worker_id(id);
          for (const std::string& store : seen->stores) info->add_stores(store);
          SetTimestampMillis(seen->last_seen_ms, info->mutable_last_seen());
          std::vector<std::string>& held = leases[id];
          std::sort(held.begin(), held.end());
          for (const std::string& task : held) info->add_leased_tasks(task);
        }
        for (const StoreSpec& spec : options_.inventory->stores()) {
          if (!StoreServed(spec.name, txn.now_ms)) {
            response.add_unserved_stores(spec.name);
          }
        }
        return response;
      });
}

absl::Status Coordinator::ValidatePoll(
    const v1::PollTaskRequest& request) const {
  if (request.worker_id().empty())
    return absl::InvalidArgumentError("worker_id: required");
  if (request.stores().empty()) {
    return absl::InvalidArgumentError(
        "stores: name at least one store this worker serves");
  }
  if (request.max_tasks() < 0 || request.max_tasks() > kMaxTasksPerPoll) {
    return absl::InvalidArgumentError(absl::StrCat("max_tasks: must be 0 to ",
                                                   kMaxTasksPerPoll, ", not ",
                                                   request.max_tasks()));
  }
  for (int i = 0; i < request.stores_size(); ++i) {
    const StoreSpec* spec = options_.inventory->Find(request.stores(i));
    if (spec == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("stores[", i, "]: unknown store \"", request.stores(i),
                       "\" (not in the data inventory)"));
    }
    if (IsManualStore(*spec)) {
      return absl::InvalidArgumentError(
          absl::StrCat("stores[", i, "]: \"", request.stores(i),
                       "\" is a manual store: its owner answers its work items "
                       "(dsarctl work), no worker serves it"));
    }
  }
  return absl::OkStatus();
}

void Coordinator::AddPoller(Txn& txn, const v1::PollTaskRequest& request,
                            std::shared_ptr<PollSlot> slot) {
  int wait_ms = request.wait_ms() <= 0
                    ? kDefaultPollWaitMs
                    : std::min(request.wait_ms(), kMaxPollWaitMs);
  std::vector<std::string> stores(request.stores().begin(),
                                  request.stores().end());
  SawWorker(request.worker_id(), txn.now_ms, &stores);
  pollers_.push_back({request.worker_id(), std::move(stores),
                      RealClock()->NowMillis() + wait_ms, std::move(slot),
                      std::max(1, request.max_tasks())});
}

absl::StatusOr<Coordinator::LeasedTasks> Coordinator::WaitForPoll(
    PollSlot& slot, const std::function<bool()>& cancelled) {
  std::unique_lock<std::mutex> lock(slot.mu);
  while (!slot.done) {
    slot.done_cv.wait_for(lock, std::chrono::milliseconds(500));
    if (!slot.done && cancelled()) {
      slot.abandoned = true;
      return absl::CancelledError("poll cancelled by the worker");
    }
  }
  return std::move(slot.result);
}

absl::StatusOr<Coordinator::LeasedTasks> Coordinator::PollTask(
    const v1::PollTaskRequest& request,
    const std::function<bool()>& cancelled) {
  RETURN_IF_ERROR(ValidatePoll(request));
  auto slot = std::make_shared<PollSlot>();
  bool queued = Enqueue(
      [this, slot, request](Txn& txn) { AddPoller(txn, request, slot); });
  if (!queued) return absl::UnavailableError("coordinator is shutting down");
  return WaitForPoll(*slot, cancelled);
}

absl::StatusOr<std::pair<Coordinator::LiveRequest*, int>>
Coordinator::FindLeasedItem(const std::string& task_id, uint32_t attempt,
                            const std::string& worker_id) {
  ASSIGN_OR_RETURN(ParsedTaskId parsed, ParseTaskId(task_id));
  auto it = live_.find(parsed.request_id);
  if (it == live_.end()) {
    absl::StatusOr<internal::RequestRecord> stored =
        store_->GetRequest(parsed.request_id);
    if (!stored.ok())
      return absl::NotFoundError(absl::StrCat("task ", task_id, " not found"));
    absl::Status ended = absl::FailedPreconditionError(
        absl::StrCat("task ", task_id, " is not leased: its request is ",
                     v1::RequestStatus_Name(stored->request().status())));
    ended.SetPayload(
        kRequestEndedPayload,
        absl::Cord(v1::RequestStatus_Name(stored->request().status())));
    return ended;
  }
  LiveRequest& live = it->second;
  const internal::RequestRecord& record = live.record;
  if (parsed.map >= record.maps_size() ||
      parsed.item >= record.maps(parsed.map).items_size()) {
    return absl::NotFoundError(absl::StrCat("task ", task_id, " not found"));
  }
  const internal::MapItem& item = record.maps(parsed.map).items(parsed.item);
  if (parsed.map != record.maps_size() - 1 ||
      item.phase() != internal::ITEM_LEASED || item.attempt() != attempt ||
      item.worker_id() != worker_id) {
    return absl::FailedPreconditionError(absl::StrCat(
        "task ", task_id, " attempt ", attempt, " is not leased to worker \"",
        worker_id, "\" (current attempt ", item.attempt(), ")"));
  }
  return std::make_pair(&live, parsed.item);
}

absl::StatusOr<int64_t> Coordinator::Heartbeat(
    const v1::HeartbeatRequest& request) {
  return RunInLoop<int64_t>(
      [this, request](Txn& txn) -> absl::StatusOr<int64_t> {
        ASSIGN_OR_RETURN(auto found,
                         FindLeasedItem(request.task_id(), request.attempt(),
                                        request.worker_id()));
        (void)found;
        int64_t expiry =
            txn.now_ms + absl::ToInt64Milliseconds(options_.lease_duration);
        lease_expiry_ms_[request.task_id()] = expiry;
        SawWorker(request.worker_id(), txn.now_ms, nullptr);
        return expiry;
      });
}

absl::StatusOr<Coordinator::ArtifactUpload> Coordinator::ArtifactPathForUpload(
    const v1::ArtifactHeader& header) {
  // Exports are what fills a disk: none is taken in below the reserve (the
  // worker's task fails as transient and is retried later).
  RETURN_IF_ERROR(CheckRoomForNewWork("export upload refused"));
  return RunInLoop<ArtifactUpload>(
      [this, header](Txn& txn) -> absl::StatusOr<ArtifactUpload> {
        ASSIGN_OR_RETURN(auto found,
                         FindLeasedItem(header.task_id(), header.attempt(),
                                        header.worker_id()));
        ASSIGN_OR_RETURN(ParsedTaskId parsed, ParseTaskId(header.task_id()));
        (void)found;
        ArtifactUpload upload;
        upload.path = ArtifactPath(parsed.request_id, parsed.map, parsed.item,
                                   header.attempt());
        upload.request_id = std::move(parsed.request_id);
        return upload;
      });
}

absl::Status Coordinator::CheckCompletion(
    const v1::CompleteTaskRequest& request) {
  if (request.record_count() < 0) {
    return absl::InvalidArgumentError("record_count: must not be negative");
  }
  for (int i = 0; i < request.erasures_size(); ++i) {
    const v1::CollectionErasure& erasure = request.erasures(i);
    if (erasure.rows_deleted() < 0 || erasure.rows_masked() < 0 ||
        erasure.fields_masked() < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("erasures[", i, "]: counts must not be negative"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> Coordinator::CompleteInLoop(
    Txn& txn, const v1::CompleteTaskRequest& request) {
  ASSIGN_OR_RETURN(auto found,
                   FindLeasedItem(request.task_id(), request.attempt(),
                                  request.worker_id()));
  auto [live, item_index] = found;
  SawWorker(request.worker_id(), txn.now_ms, nullptr);
  int map = live->record.maps_size() - 1;
  const internal::MapItem& item = live->record.maps(map).items(item_index);
  const State* map_state =
      live->definition->root().Find(live->record.maps(map).state());
  const State* task_state = map_state->iterator->Find(item.state());
  std::string artifact_path;
  int64_t artifact_size = 0;
  // An export's records, or a scan's findings: an artifact.
  const std::optional<TaskOperation> operation = OperationOf(*task_state);
  if (operation == TaskOperation::kExport ||
      operation == TaskOperation::kScan) {
    if (request.artifact_sha256().empty()) {
      return absl::InvalidArgumentError(
          "artifact_sha256: required for an export or a scan "
          "(upload it first)");
    }
    artifact_path = ArtifactPath(live->record.request().id(), map, item_index,
                                 request.attempt());
    struct stat info;
    if (::stat(artifact_path.c_str(), &info) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("artifact_sha256: no export was uploaded for task ",
                       request.task_id(), " attempt ", request.attempt()));
    }
    // The export's own size, not its encrypted file's.
    ASSIGN_OR_RETURN(std::string key,
                     RequestDataKey(live->record.request().id()));
    ASSIGN_OR_RETURN(std::unique_ptr<EncryptedFileReader> export_file,
                     EncryptedFileReader::Open(
                         artifact_path, std::move(key),
                         ExportFileContext(live->record.request().id())));
    artifact_size = export_file->size();
    absl::StatusOr<std::string> uploaded_sha =
        ReadFile(ArtifactDigestPath(artifact_path));
    if (!uploaded_sha.ok() || *uploaded_sha != request.artifact_sha256()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "artifact_sha256: does not match the export uploaded for "
          "task ",
          request.task_id(), " attempt ", request.attempt()));
    }
  }
  for (int i = 0; i < request.discovered_identities_size(); ++i) {
    const v1::SubjectIdentity& identity = request.discovered_identities(i);
    if (identity.value().empty() || IdentityKey(identity).empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "discovered_identities[", i, "]: needs a type and a value"));
    }
  }
  lease_expiry_ms_.erase(request.task_id());
  AppendWorkItemEvidence(txn, *live, item_index, request.worker_id(),
                         "completed", request.evidence());
  Mutate(txn, *live,
         [&](Interpreter& interpreter, internal::RequestRecord* record) {
           interpreter.CompleteItemTask(
               record, item_index, request.record_count(),
               request.discovered_identities(), request.artifact_sha256(),
               artifact_path, artifact_size, request.erasures());
         });
  return true;
}

absl::Status Coordinator::CompleteTask(const v1::CompleteTaskRequest& request) {
  RETURN_IF_ERROR(CheckCompletion(request));
  return RunInLoop<bool>(
             [this, request](Txn& txn) { return CompleteInLoop(txn, request); })
      .status();
}

absl::StatusOr<Coordinator::LeasedTasks> Coordinator::CompleteTaskAndPoll(
    const v1::CompleteTaskRequest& request, const v1::PollTaskRequest& next,
    const std::function<bool()>& cancelled) {
  // The asynchronous path, waited for. A worker that hangs up abandons the
  // poll too, so no task is leased to it.
  std::vector<v1::TaskReport> reports(1);
  *reports[0].mutable_complete() = request;
  auto answer = std::make_shared<PollSlot>();
  std::shared_ptr<PollSlot> poll =
      StartReports(std::move(reports), &next, [answer](ReportsAnswer reported) {
        if (!reported.statuses[0].ok()) {
          answer->Fulfil(reported.statuses[0]);
        } else {
          answer->Fulfil(std::move(reported.next_tasks));
        }
      });
  absl::StatusOr<LeasedTasks> result = WaitForPoll(*answer, cancelled);
  if (answer->Abandoned()) {
    if (poll != nullptr) poll->Abandon();
    return LeasedTasks();
  }
  return result;
}

absl::StatusOr<bool> Coordinator::FailInLoop(
    Txn& txn, const v1::FailTaskRequest& request) {
  ASSIGN_OR_RETURN(auto found,
                   FindLeasedItem(request.task_id(), request.attempt(),
                                  request.worker_id()));
  auto [live, item_index] = found;
  SawWorker(request.worker_id(), txn.now_ms, nullptr);
  lease_expiry_ms_.erase(request.task_id());
  std::string error =
      request.error().empty() ? "Worker.Failed" : request.error();
  AppendWorkItemEvidence(txn, *live, item_index, request.worker_id(), "failed",
                         request.evidence());
  Mutate(txn, *live,
         [&](Interpreter& interpreter, internal::RequestRecord* record) {
           interpreter.FailItemTask(record, item_index, error, request.cause());
         });
  return true;
}

absl::Status Coordinator::FailTask(const v1::FailTaskRequest& request) {
  return RunInLoop<bool>(
             [this, request](Txn& txn) { return FailInLoop(txn, request); })
      .status();
}

absl::Status Coordinator::CheckReport(const v1::TaskReport& report) {
  if (report.more_size() > 0) {
    return absl::InvalidArgumentError(
        "more: only the first report of a message carries more");
  }
  switch (report.report_case()) {
    case v1::TaskReport::kComplete:
      return CheckCompletion(report.complete());
    case v1::TaskReport::kFail:
      return absl::OkStatus();
    case v1::TaskReport::REPORT_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("report: set complete or fail");
}

absl::Status Coordinator::ReportInLoop(Txn& txn, const v1::TaskReport& report) {
  if (report.has_complete())
    return CompleteInLoop(txn, report.complete()).status();
  return FailInLoop(txn, report.fail()).status();
}

std::function<void()> Coordinator::ReportTasksAsync(
    std::vector<v1::TaskReport> reports, const v1::PollTaskRequest* next,
    std::function<void(ReportsAnswer)> done) {
  std::shared_ptr<PollSlot> slot =
      StartReports(std::move(reports), next, std::move(done));
  return [slot] {
    if (slot != nullptr) slot->Abandon();
  };
}

std::shared_ptr<Coordinator::PollSlot> Coordinator::StartReports(
    std::vector<v1::TaskReport> reports, const v1::PollTaskRequest* next,
    std::function<void(ReportsAnswer)> done) {
  const size_t count = reports.size();
  // Every report answered with `status`: a refusal of the whole call.
  auto refuse_all = [count](const absl::Status& status) {
    ReportsAnswer answer;
    answer.statuses.assign(std::max<size_t>(count, 1), status);
    return answer;
  };
  if (reports.empty() || count > kMaxReportsPerBatch) {
    done(refuse_all(absl::InvalidArgumentError(
        absl::StrCat("more: a message carries 1 to ", kMaxReportsPerBatch,
                     " reports, not ", count))));
    return nullptr;
  }
  // Checked here, off the loop; a report refused is answered with its
  // refusal and left out of the command.
  std::vector<absl::Status> checked(count);
  bool any_valid = false;
  for (size_t i = 0; i < count; ++i) {
    checked[i] = CheckReport(reports[i]);
    any_valid = any_valid || checked[i].ok();
  }
  if (!any_valid) {
    done({std::move(checked), {}});
    return nullptr;
  }
  // A poll that cannot be served is left out, and what happens to the poll
  // never fails the reports.
  std::shared_ptr<PollSlot> slot;
  std::optional<v1::PollTaskRequest> poll;
  auto statuses = std::make_shared<std::vector<absl::Status>>();
  if (next != nullptr && reports[0].has_complete() && checked[0].ok() &&
      ValidatePoll(*next).ok()) {
    poll = *next;
    slot = std::make_shared<PollSlot>();
    slot->on_done = [done, statuses](absl::StatusOr<LeasedTasks> tasks) {
      done({*statuses, tasks.ok() ? *std::move(tasks) : LeasedTasks()});
    };
  }
  // A command the stopping loop drops answers UNAVAILABLE for every
  // report: none was recorded.
  auto answer =
      std::make_shared<coordinator_internal::AnswerOnce<ReportsAnswer>>(
          [done, refuse_all](absl::StatusOr<ReportsAnswer> answered) {
            done(answered.ok() ? *std::move(answered)
                               : refuse_all(answered.status()));
          });
  bool queued =
      Enqueue([this, reports = std::move(reports), checked = std::move(checked),
               poll = std::move(poll), slot, statuses, answer](Txn& txn) {
        *statuses = checked;
        for (size_t i = 0; i < reports.size(); ++i) {
          if ((*statuses)[i].ok())
            (*statuses)[i] = ReportInLoop(txn, reports[i]);
        }
        if (slot == nullptr || !(*statuses)[0].ok()) {
          txn.replies.push_back([answer, statuses] {
            answer->Give(ReportsAnswer{*statuses, {}});
          });
          return;
        }
        // This group's dispatch may already lease it tasks the reports made
        // ready; Fulfil runs after the group's commit either way.
        answer->HandOver();
        AddPoller(txn, *poll, slot);
      });
  if (!queued) {
    answer->Give(absl::UnavailableError("coordinator is shutting down"));
    return nullptr;
  }
  return slot;
}

}  // namespace dsar
