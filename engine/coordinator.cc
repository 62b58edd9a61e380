// The commit loop: start-up and recovery, one synced batch per group of
// commands, timers, and the scheduling of what a transition made ready
// (docs/commit-loop.md). Part of Coordinator; see engine/coordinator.h.

#include "engine/coordinator.h"

#include <openssl/rand.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/disk_space.h"
#include "common/files.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "engine/coordinator_internal.h"
#include "engine/deadlines.h"
#include "engine/notifier.h"
#include "engine/request_validation.h"
#include "model/event_kinds.h"
#include "storage/request_status.h"
#include "storage/sealed_box.h"

namespace dsar {
namespace coordinator_internal {

std::string TaskId(const std::string& request_id, int map, int item) {
  return absl::StrCat(request_id, "/", map, "/", item);
}

absl::StatusOr<ParsedTaskId> ParseTaskId(const std::string& task_id) {
  std::vector<std::string> parts = absl::StrSplit(task_id, '/');
  ParsedTaskId parsed;
  if (parts.size() != 3 || parts[0].empty() ||
      !absl::SimpleAtoi(parts[1], &parsed.map) ||
      !absl::SimpleAtoi(parts[2], &parsed.item) || parsed.map < 0 ||
      parsed.item < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("task_id: ", QuotedPrefix(task_id), " is not a task id"));
  }
  parsed.request_id = parts[0];
  return parsed;
}

}  // namespace coordinator_internal

using coordinator_internal::ParsedTaskId;
using coordinator_internal::ParseTaskId;
using coordinator_internal::TaskId;

Coordinator::Coordinator(Options options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::Create(
    Options options) {
  if (options.definition == nullptr || options.inventory == nullptr) {
    return absl::InvalidArgumentError(
        "a workflow definition and an inventory are required");
  }
  if (options.clock == nullptr) options.clock = RealClock();
  ::umask(077);
  RETURN_IF_ERROR(MakeDirectories(options.data_dir));
  if (::chmod(options.data_dir.c_str(), 0700) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("data_dir: cannot make ", options.data_dir, " private (",
                     std::strerror(errno), ")"));
  }
  std::unique_ptr<Coordinator> coordinator(new Coordinator(std::move(options)));
  coordinator->started_ms_ = coordinator->options_.clock->NowMillis();
  Options& opened = coordinator->options_;
  if (opened.keys_dir.empty()) opened.keys_dir = opened.data_dir + "/keys";
  if (opened.files_dir.empty()) opened.files_dir = opened.data_dir;
  // RocksDB needs room to open (a new WAL, MANIFEST, a flush): on a full
  // disk, say so and stop here rather than fail inside it.
  RETURN_IF_ERROR(CheckDiskReserve(
      opened.data_dir, kMinFreeBytesToStart, "cannot start",
      "free some space (requests already accepted are safe) and start "
      "again"));
  if (opened.key_ring == nullptr) {
    ASSIGN_OR_RETURN(coordinator->owned_key_ring_,
                     FileKeyRing::Open(opened.keys_dir + "/kek"));
    opened.key_ring = coordinator->owned_key_ring_.get();
  }
  ASSIGN_OR_RETURN(
      coordinator->store_,
      StateStore::Open(opened.data_dir + "/state", opened.key_ring));
  RETURN_IF_ERROR(MakeDirectories(opened.files_dir + "/bundles"));
  RETURN_IF_ERROR(MakeDirectories(opened.files_dir + "/artifacts"));
  if (::chmod(opened.files_dir.c_str(), 0700) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("files_dir: cannot make ", opened.files_dir, " private (",
                     std::strerror(errno), ")"));
  }
  RETURN_IF_ERROR(coordinator->OpenAuditLog());
  ASSIGN_OR_RETURN(coordinator->zone_,
                   LoadDeadlineTimeZone(coordinator->options_.time_zone));
  RETURN_IF_ERROR(coordinator->Recover());
  RETURN_IF_ERROR(coordinator->StartNotifier());
  coordinator->SchedulePurge(coordinator->started_ms_);
  RETURN_IF_ERROR(coordinator->ScheduleAuditScans());
  coordinator->checkpointed_size_ = coordinator->audit_->AppendedSize();
  coordinator->last_checkpoint_ms_ = coordinator->started_ms_;
  coordinator->PublishSnapshot();
  coordinator->loop_running_ = true;
  coordinator->loop_thread_ =
      std::thread([c = coordinator.get()] { c->RunCommitLoop(); });
  coordinator->bundler_thread_ =
      std::thread([c = coordinator.get()] { c->RunBundler(); });
  return coordinator;
}

Coordinator::~Coordinator() {
  // A bundle being written is abandoned, not awaited: its builtin task runs
  // again after the next start (the result would not be committed anyway).
  bundler_cancel_ = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (loop_thread_.joinable()) loop_thread_.join();
  // Only after the loop stopped: CommitGroup hands notifications to the
  // notifier. Undelivered notifications stay in the outbox; one delivered
  // from now on cannot leave it and goes out again after a restart (same id).
  notifier_.reset();
  {
    std::lock_guard<std::mutex> lock(bundler_mu_);
    bundler_stopping_ = true;
  }
  bundler_wake_.notify_all();
  if (bundler_thread_.joinable()) bundler_thread_.join();
  for (Poller& poller : pollers_) {
    poller.slot->Fulfil(absl::UnavailableError("coordinator is shutting down"));
  }
}

absl::StatusOr<std::shared_ptr<const WorkflowDefinition>>
Coordinator::DefinitionFor(const std::string& version) {
  auto it = definitions_.find(version);
  if (it != definitions_.end()) return it->second;
  ASSIGN_OR_RETURN(std::optional<internal::DefinitionRecord> stored,
                   store_->GetDefinition(version));
  if (!stored) {
    return absl::DataLossError(
        absl::StrCat("workflow definition ", version, " is not stored"));
  }
  ASSIGN_OR_RETURN(std::shared_ptr<const WorkflowDefinition> definition,
                   WorkflowDefinition::Parse(stored->json()));
  definitions_[version] = definition;
  return definition;
}

absl::Status Coordinator::CheckRoomForNewWork(absl::string_view what) const {
  RETURN_IF_ERROR(CheckDiskReserve(
      options_.data_dir, options_.disk_reserve_bytes, what,
      "new work is refused until space is freed; requests in progress go "
      "on"));
  if (options_.files_dir != options_.data_dir) {
    RETURN_IF_ERROR(CheckDiskReserve(
        options_.files_dir, options_.disk_reserve_bytes, what,
        "new work is refused until space is freed; requests in progress go "
        "on"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Coordinator::RequestDataKey(
    const std::string& request_id) const {
  return store_->DataKey(request_id);
}

std::string Coordinator::public_key_path() const {
  return absl::StrCat(options_.keys_dir, "/checkpoint.key.pub");
}

absl::Status Coordinator::OpenAuditLog() {
  RETURN_IF_ERROR(MakeDirectories(options_.keys_dir));
  AuditLog::Options audit;
  audit.origin = options_.audit_origin;
  ASSIGN_OR_RETURN(audit.signer,
                   audit::CheckpointSigner::LoadOrCreate(
                       absl::StrCat(options_.keys_dir, "/checkpoint.key"),
                       options_.audit_origin));
  std::string hmac_path = absl::StrCat(options_.keys_dir, "/audit-hmac.key");
  absl::StatusOr<std::string> hmac_hex = ReadFile(hmac_path);
  if (!hmac_hex.ok()) {
    unsigned char secret[32];
    if (RAND_bytes(secret, sizeof(secret)) != 1) {
      return absl::InternalError("cannot generate the audit HMAC key");
    }
    hmac_hex = absl::BytesToHexString(absl::string_view(
        reinterpret_cast<const char*>(secret), sizeof(secret)));
    RETURN_IF_ERROR(WriteFileAtomically(hmac_path, *hmac_hex));
  }
  audit.hmac_key =
      absl::HexStringToBytes(absl::StripAsciiWhitespace(*hmac_hex));
  audit.witness_path = options_.checkpoint_witness;
  ASSIGN_OR_RETURN(audit_, AuditLog::Open(store_.get(), std::move(audit)));
  return absl::OkStatus();
}

absl::Status Coordinator::Recover() {
  // The definition new requests pin is stored once, so requests keep their
  // version across upgrades.
  const std::string& version = options_.definition->version();
  definitions_[version] = options_.definition;
  ASSIGN_OR_RETURN(std::optional<internal::DefinitionRecord> stored,
                   store_->GetDefinition(version));
  if (!stored) {
    StateBatch batch = store_->NewBatch();
    internal::DefinitionRecord record;
    record.set_version(version);
    record.set_json(options_.definition->json());
    batch.PutDefinition(record);
    RETURN_IF_ERROR(store_->Commit(batch));
  }

  int64_t now = options_.clock->NowMillis();
  Txn txn(store_->NewBatch(), now);
  RETURN_IF_ERROR(store_->ForEachLiveRequest(
      [&](internal::RequestRecord record) -> absl::Status {
        std::string id = record.request().id();
        LiveRequest live;
        live.persisted_status = record.request().status();
        ASSIGN_OR_RETURN(live.definition,
                         DefinitionFor(record.request().definition_version()));
        live.record = std::move(record);
        auto [it, inserted] = live_.emplace(id, std::move(live));
        LiveRequest& entry = it->second;
        // Leases survive a restart with a fresh expiry: the worker that holds
        // one may still complete it with the same fencing token.
        if (!entry.record.maps().empty()) {
          int map = entry.record.maps_size() - 1;
          const internal::MapRun& run = entry.record.maps(map);
          for (int i = 0; i < run.items_size(); ++i) {
            if (run.items(i).phase() != internal::ITEM_LEASED) continue;
            std::string task_id = TaskId(id, map, i);
            int64_t expiry =
                now + absl::ToInt64Milliseconds(options_.lease_duration);
            lease_expiry_ms_[task_id] = expiry;
            PushTimer({expiry, TimerKind::kLease, id, map, i});
          }
        }
        IndexOpenRequest(entry.record);
        // The inventory may have changed while dsard was down: a store no
        // longer in it can never be served. Fail those steps, loudly. Only
        // such requests are touched: a restart rewrites nothing else.
        const auto& scope = entry.record.request().stores();
        bool uses_removed_store =
            std::any_of(scope.begin(), scope.end(), [&](const auto& store) {
              return options_.inventory->Find(store) == nullptr;
            });
        if (!uses_removed_store) {
          Schedule(txn, entry);
          return absl::OkStatus();
        }
        std::vector<std::string> missing;
        Mutate(txn, entry,
               [&](Interpreter& interpreter, internal::RequestRecord* r) {
                 missing = interpreter.FailStoresNotInInventory(r);
               });
        if (!missing.empty()) {
          LogWarning(absl::StrCat("request ", id,
                                  " uses stores no longer in the inventory (",
                                  absl::StrJoin(missing, ", "),
                                  "): those steps failed; restore the stores "
                                  "and retry the request"),
                     ForRequest(id));
        }
        return absl::OkStatus();
      }));
  // A request linked to one that is no longer live missed its outcome
  // (cannot happen while both change in one batch; kept for old data).
  std::vector<std::string> orphans;
  for (const auto& [original_id, ids] : linked_waiting_) {
    if (!live_.contains(original_id)) orphans.push_back(original_id);
  }
  for (const std::string& original_id : orphans) {
    ASSIGN_OR_RETURN(internal::RequestRecord original,
                     store_->GetRequest(original_id));
    ResolveLinked(txn, original.request());
  }
  CommitGroup(txn);
  SweepBundledExports();
  return absl::OkStatus();
}

void Coordinator::SweepBundledExports() {
  std::error_code error;
  std::filesystem::directory_iterator dir(options_.files_dir + "/artifacts",
                                          error);
  if (error) return;
  for (const std::filesystem::directory_entry& entry : dir) {
    std::string id = entry.path().filename().string();
    if (live_.contains(id)) continue;
    absl::StatusOr<internal::RequestRecord> stored = store_->GetRequest(id);
    // Exports of a failed bundle stay for its retry.
    if (stored.ok() && stored->request().status() != v1::COMPLETED) continue;
    absl::Status removed = RemoveTree(entry.path().string());
    if (!removed.ok()) {
      LogError(removed.ToString(), ForRequest(id));
    }
  }
}

bool Coordinator::Enqueue(Command command) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return false;
    queue_.push_back(std::move(command));
  }
  wake_.notify_one();
  return true;
}

void Coordinator::RunCommitLoop() {
  while (true) {
    std::deque<Command> group;
    bool publish_snapshot = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      // Timers run on the engine's clock; a long poll's wait is transport
      // time, on the system clock.
      int64_t wait_ms = INT64_MAX;
      if (!timers_.empty()) {
        wait_ms = timers_.top().due_ms - options_.clock->NowMillis();
      }
      int64_t real_now = RealClock()->NowMillis();
      for (const Poller& poller : pollers_) {
        wait_ms = std::min(wait_ms, poller.deadline_ms - real_now);
      }
      auto has_work = [&] {
        return stopping_ || !queue_.empty() || snapshot_wanted_;
      };
      if (wait_ms == INT64_MAX) {
        wake_.wait(lock, has_work);
      } else {
        if (wait_ms > 0) {
          wake_.wait_for(lock, std::chrono::milliseconds(wait_ms), has_work);
        }
      }
      if (stopping_) break;
      size_t take =
          std::min<size_t>(queue_.size(), options_.max_commands_per_group);
      for (size_t i = 0; i < take; ++i) {
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      publish_snapshot = std::exchange(snapshot_wanted_, false);
    }
    loop_busy_since_ms_ = std::max<int64_t>(1, SteadyNowMillis());
    Txn txn(store_->NewBatch(), options_.clock->NowMillis());
    FireDueTimers(txn);
    for (Command& command : group) command(txn);
    DispatchToPollers(txn);
    CommitGroup(txn);
    metrics_.GroupRun(group.size());
    if (publish_snapshot) PublishSnapshot();
    loop_busy_since_ms_ = 0;
  }
  loop_running_ = false;
  // Fail whatever is still queued: those callers were never answered.
  std::deque<Command> rest;
  {
    std::lock_guard<std::mutex> lock(mu_);
    rest.swap(queue_);
  }
  (void)rest;  // Dropping the commands breaks their promises.
}

void Coordinator::CommitGroup(Txn& txn) {
  for (const std::string& erasure : txn.completed_erasures)
    DestroyEarlierCopies(txn, erasure);
  for (const std::string& id : txn.dirty) {
    auto it = live_.find(id);
    if (it == live_.end()) continue;
    LiveRequest& live = it->second;
    SetTimestampMillis(txn.now_ms,
                       live.record.mutable_request()->mutable_updated_at());
    txn.batch.PutRequest(&live.record, live.persisted_status,
                         &live.last_sealed);
  }
  if (txn.batch.Count() > 0) {
    const auto write_start = std::chrono::steady_clock::now();
    absl::Status status = audit_->SealGroup(txn.batch);
    if (status.ok()) status = store_->Commit(txn.batch);
    if (status.ok()) {
      metrics_.GroupWritten(std::chrono::duration<double>(
                                std::chrono::steady_clock::now() - write_start)
                                .count());
    }
    if (!status.ok()) {
      // The in-memory state is ahead of the disk. Stopping here is the only
      // safe move: a restart recovers exactly what was acknowledged.
      Log(LogLevel::kFatal,
          absl::StrCat("commit failed, stopping: ", status.ToString()));
      std::abort();
    }
  }
  for (const std::string& id : txn.dirty) {
    auto it = live_.find(id);
    if (it == live_.end()) continue;
    const v1::Request& request = it->second.record.request();
    const v1::RequestStatus before = it->second.persisted_status;
    if (before == v1::REQUEST_STATUS_UNSPECIFIED) {
      metrics_.RequestCreated(v1::RequestType_Name(request.type()));
    }
    if (!IsTerminalStatus(before) && IsTerminalStatus(request.status())) {
      metrics_.RequestFinished(v1::RequestType_Name(request.type()),
                               v1::RequestStatus_Name(request.status()));
    }
    it->second.persisted_status = it->second.record.request().status();
    if (IsTerminalStatus(it->second.record.request().status())) {
      UnindexOpenRequest(it->second.record.request());
      live_.erase(it);
    }
  }
  if (audit_->AppendedSize() != checkpointed_size_) {
    checkpointed_size_ = audit_->AppendedSize();  // SealGroup signed one.
    last_checkpoint_ms_ = txn.now_ms;
  }
  if (txn.scrub) {
    // Destroyed data keys leave the WAL and the SST files now, not at
    // RocksDB's leisure.
    absl::Status scrubbed = store_->Scrub();
    if (!scrubbed.ok()) {
      LogError(absl::StrCat("scrub after destroying data keys: ",
                            scrubbed.ToString()));
    }
  }
  for (auto& reply : txn.replies) reply();
  if (notifier_ != nullptr) {
    for (internal::Notification& notification : txn.notifications) {
      notifier_->Submit(std::move(notification));
    }
  }
  if (!txn.builtin_jobs.empty()) {
    {
      std::lock_guard<std::mutex> lock(bundler_mu_);
      for (BuiltinJob& job : txn.builtin_jobs)
        bundler_queue_.push_back(std::move(job));
    }
    bundler_wake_.notify_all();
  }
}

void Coordinator::PushTimer(Timer timer) {
  std::string key =
      absl::StrCat(static_cast<int>(timer.kind), "/", timer.request_id, "/",
                   timer.map, "/", timer.item, "/", timer.due_ms);
  if (!timer_keys_.insert(key).second) return;
  timers_.push(std::move(timer));
}

void Coordinator::AppendEvents(Txn& txn, LiveRequest& live,
                               std::vector<EventDraft> drafts) {
  for (EventDraft& draft : drafts) {
    uint64_t sequence = live.record.next_event_sequence() + 1;
    live.record.set_next_event_sequence(sequence);
    v1::Event event;
    event.set_sequence(sequence);
    SetTimestampMillis(txn.now_ms, event.mutable_time());
    event.set_request_id(live.record.request().id());
    event.set_kind(std::move(draft.kind));
    event.set_state(std::move(draft.state));
    event.set_store(std::move(draft.store));
    event.set_attempt(draft.attempt);
    event.set_worker_id(std::move(draft.worker_id));
    event.set_detail(std::move(draft.detail));
    for (std::string& hmac : draft.subject_hmacs)
      event.add_subject_hmacs(std::move(hmac));
    event.set_actor(std::move(draft.actor));
    if (!draft.note.empty()) {
      // Erasable text stays beside the request; the leaf commits to it.
      event.set_detail(absl::StrCat(
          event.detail(), event.detail().empty() ? "" : " ", "note_hmac=",
          audit_->SubjectHmac(absl::StrCat("note:", live.record.request().id()),
                              draft.note)));
      (*live.record.mutable_notes())[sequence] = std::move(draft.note);
    }
    event.set_previous_leaf_hash(live.record.last_audit_leaf_hash());
    live.record.set_last_audit_leaf_hash(audit_->Append(txn.batch, &event));
    txn.batch.PutEvent(event);
  }
  metrics_.EventsAppended(drafts.size());
  txn.dirty.insert(live.record.request().id());
}

void Coordinator::Mutate(
    Txn& txn, LiveRequest& live,
    const std::function<void(Interpreter&, internal::RequestRecord*)>& fn) {
  std::vector<EventDraft> drafts;
  Interpreter interpreter(
      *live.definition, *options_.inventory, txn.now_ms,
      [this] { return UnitRandom(); }, &drafts);
  v1::RequestStatus before = live.record.request().status();
  fn(interpreter, &live.record);
  AppendEvents(txn, live, std::move(drafts));
  RecordAuditReport(txn, live, before);
  NotifyStatusChange(txn, live, before);
  if (before != v1::COMPLETED &&
      live.record.request().status() == v1::COMPLETED) {
    v1::Request* request = live.record.mutable_request();
    if (request->has_bundle()) {
      SetTimestampMillis(
          txn.now_ms + absl::ToInt64Milliseconds(options_.bundle_retention),
          request->mutable_bundle()->mutable_expires_at());
    }
    if (request->type() == v1::ERASURE)
      txn.completed_erasures.push_back(request->id());
  }
  Schedule(txn, live);
  if (!IsTerminalStatus(before) &&
      IsTerminalStatus(live.record.request().status())) {
    ResolveLinked(txn, live.record.request());
  }
}

void Coordinator::Schedule(Txn& txn, LiveRequest& live) {
  const internal::RequestRecord& record = live.record;
  const std::string& id = record.request().id();
  if (IsTerminalStatus(record.request().status())) {
    if (!record.maps().empty()) {
      int map = record.maps_size() - 1;
      for (int i = 0; i < record.maps(map).items_size(); ++i) {
        lease_expiry_ms_.erase(TaskId(id, map, i));
      }
    }
    return;
  }
  const State* state =
      live.definition->root().Find(record.request().current_state());
  if (state == nullptr) return;
  ScheduleDeadlineNotices(live);
  if (state->type == StateType::kMap && !record.maps().empty() &&
      record.maps().rbegin()->state() == state->name) {
    int map = record.maps_size() - 1;
    const internal::MapRun& run = record.maps(map);
    for (int i = 0; i < run.items_size(); ++i) {
      const internal::MapItem& item = run.items(i);
      if (item.phase() == internal::ITEM_READY) {
        std::string task_id = TaskId(id, map, i);
        if (queued_.insert(task_id).second)
          ready_[item.store()].push_back({id, map, i});
        if (item.alert().empty()) {
          PushTimer({AlertDueMs(live, item), TimerKind::kUnserved, id, map, i});
        }
      } else if (item.phase() == internal::ITEM_RETRY_WAIT) {
        PushTimer({item.not_before_ms(), TimerKind::kRetry, id, map, i});
      }
    }
  } else if (state->type == StateType::kWait && !state->signal.empty()) {
    if (record.verification_code_hmac().empty())
      IssueVerificationCode(txn, live);
    if (live.record.timer_due_ms() != 0) {
      PushTimer({live.record.timer_due_ms(), TimerKind::kRequest, id, 0, 0});
    }
  } else if (state->type == StateType::kWait) {
    PushTimer({record.timer_due_ms(), TimerKind::kRequest, id, 0, 0});
  } else if (state->type == StateType::kTask) {
    if (record.timer_due_ms() > txn.now_ms) {
      PushTimer({record.timer_due_ms(), TimerKind::kRequest, id, 0, 0});
    } else if (!live.builtin_in_flight &&
               record.request().status() != v1::PAUSED) {
      live.builtin_in_flight = true;
      live.record.set_builtin_attempt(live.record.builtin_attempt() + 1);
      EventDraft started;
      started.kind = kEventTaskStarted;
      started.state = state->name;
      started.attempt = live.record.builtin_attempt();
      AppendEvents(txn, live, {started});
      txn.builtin_jobs.push_back(BuildBundleJob(live));
    }
  }
}

void Coordinator::FireDueTimers(Txn& txn) {
  while (!timers_.empty() && timers_.top().due_ms <= txn.now_ms) {
    Timer timer = timers_.top();
    timers_.pop();
    timer_keys_.erase(absl::StrCat(static_cast<int>(timer.kind), "/",
                                   timer.request_id, "/", timer.map, "/",
                                   timer.item, "/", timer.due_ms));
    if (timer.kind == TimerKind::kAuditScan) {
      StartScheduledAuditScan(txn);
      continue;
    }
    if (timer.kind == TimerKind::kPurge) {
      v1::PurgeResponse purged = PurgeInLoop(txn, false, "dsard:purge");
      LogInfo(absl::StrCat("purge: ", purged.items_size(), " removed of ",
                           purged.examined(), " examined",
                           purged.more() ? " (more next run)" : ""));
      SchedulePurge(txn.now_ms);
      continue;
    }
    auto it = live_.find(timer.request_id);
    if (it == live_.end()) continue;
    LiveRequest& live = it->second;
    internal::RequestRecord& record = live.record;
    bool current_map = !record.maps().empty() &&
                       timer.map == record.maps_size() - 1 &&
                       timer.item < record.maps(timer.map).items_size();
    switch (timer.kind) {
      case TimerKind::kLease: {
        if (!current_map) break;
        const internal::MapItem& item =
            record.maps(timer.map).items(timer.item);
        std::string task_id = TaskId(timer.request_id, timer.map, timer.item);
        auto lease = lease_expiry_ms_.find(task_id);
        if (item.phase() != internal::ITEM_LEASED ||
            lease == lease_expiry_ms_.end())
          break;
        if (lease->second > txn.now_ms) {
          // Extended by heartbeats since this timer was set.
          PushTimer({lease->second, TimerKind::kLease, timer.request_id,
                     timer.map, timer.item});
          break;
        }
        lease_expiry_ms_.erase(lease);
        metrics_.LeaseExpired();
        std::string worker = item.worker_id();
        EventDraft expired;
        expired.kind = kEventLeaseExpired;
        expired.state = item.state();
        expired.store = item.store();
        expired.attempt = item.attempt();
        expired.worker_id = worker;
        AppendEvents(txn, live, {expired});
        Mutate(txn, live,
               [&](Interpreter& interpreter, internal::RequestRecord* r) {
                 interpreter.FailItemTask(
                     r, timer.item, kErrorHeartbeatTimeout,
                     absl::StrCat("lease of worker ", worker, " expired"));
               });
        break;
      }
      case TimerKind::kRetry: {
        if (!current_map) break;
        const internal::MapItem& item =
            record.maps(timer.map).items(timer.item);
        if (item.phase() != internal::ITEM_RETRY_WAIT ||
            item.not_before_ms() > txn.now_ms) {
          break;
        }
        Mutate(txn, live,
               [&](Interpreter& interpreter, internal::RequestRecord* r) {
                 interpreter.RetryDue(r, timer.item);
               });
        break;
      }
      case TimerKind::kRequest:
        if (record.timer_due_ms() == 0 || record.timer_due_ms() > txn.now_ms)
          break;
        Mutate(
            txn, live,
            [&](Interpreter& interpreter, internal::RequestRecord* r) {
              const State* state = interpreter.CurrentState(*r);
              if (state != nullptr && state->type == StateType::kTask) {
                r->set_timer_due_ms(0);  // Back-off over: Schedule starts it.
              } else {
                interpreter.Advance(r);
              }
            });
        break;
      case TimerKind::kDeadline:
        FireDeadlineNotice(txn, live);
        break;
      case TimerKind::kUnserved:
        if (current_map) CheckUnserved(txn, live, timer.map, timer.item);
        break;
      case TimerKind::kPurge:
      case TimerKind::kAuditScan:
        break;  // Fired above: it belongs to no request.
    }
  }
}

}  // namespace dsar
