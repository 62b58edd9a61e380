#include "engine/coordinator.h"

#include <openssl/rand.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <future>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/files.h"
#include "common/status_macros.h"
#include "engine/deadlines.h"
#include "engine/identity.h"
#include "engine/identity_reach.h"
#include "engine/notifier.h"
#include "engine/request_validation.h"
#include "storage/artifact_writer.h"

namespace dsar {
namespace {

constexpr int kDefaultPollWaitMs = 20000;
constexpr int kMaxPollWaitMs = 60000;

std::string TaskId(const std::string& request_id, int map, int item) {
  return absl::StrCat(request_id, "/", map, "/", item);
}

struct ParsedTaskId {
  std::string request_id;
  int map = 0;
  int item = 0;
};

absl::StatusOr<ParsedTaskId> ParseTaskId(const std::string& task_id) {
  std::vector<std::string> parts = absl::StrSplit(task_id, '/');
  ParsedTaskId parsed;
  if (parts.size() != 3 || parts[0].empty() ||
      !absl::SimpleAtoi(parts[1], &parsed.map) ||
      !absl::SimpleAtoi(parts[2], &parsed.item) || parsed.map < 0 ||
      parsed.item < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("task_id: \"", task_id, "\" is not a task id"));
  }
  parsed.request_id = parts[0];
  return parsed;
}

std::string OperationOf(const State& task) {
  if (task.resource == kResourceWorkerExport) return "export";
  if (task.resource == kResourceWorkerDiscover) return "discover";
  if (task.resource == kResourceWorkerErase) return "erase";
  if (task.resource == kResourceWorkerRectify) return "rectify";
  if (task.resource == kResourceWorkerRestrict) return "restrict";
  if (task.resource == kResourceWorkerObject) return "object";
  return task.resource;
}

v1::StepStatus StepStatusOf(internal::ItemPhase phase) {
  switch (phase) {
    case internal::ITEM_WAITING:
      return v1::WAITING;
    case internal::ITEM_READY:
      return v1::READY;
    case internal::ITEM_LEASED:
      return v1::LEASED;
    case internal::ITEM_RETRY_WAIT:
      return v1::RETRY_WAIT;
    case internal::ITEM_SUCCEEDED:
      return v1::SUCCEEDED;
    case internal::ITEM_FAILED:
      return v1::STEP_FAILED;
    case internal::ITEM_SKIPPED:
      return v1::SKIPPED;
    case internal::ITEM_BLOCKED:
      return v1::BLOCKED;
    default:
      return v1::STEP_STATUS_UNSPECIFIED;
  }
}

bool SameRequest(const v1::Request& existing,
                 const v1::CreateRequestRequest& request) {
  std::string regulation =
      request.regulation().empty() ? "GDPR" : request.regulation();
  if (existing.type() != request.type() ||
      existing.regulation() != regulation ||
      existing.identities_size() != request.identities_size() ||
      (request.stores_size() > 0 &&
       !std::equal(existing.stores().begin(), existing.stores().end(),
                   request.stores().begin(), request.stores().end()))) {
    return false;
  }
  for (int i = 0; i < request.identities_size(); ++i) {
    v1::SubjectIdentity normalized = NormalizeIdentity(request.identities(i));
    if (IdentityKey(existing.identities(i)) != IdentityKey(normalized) ||
        existing.identities(i).value() != normalized.value()) {
      return false;
    }
  }
  return true;
}

}  // namespace

struct Coordinator::PollSlot {
  std::mutex mu;
  std::condition_variable done_cv;
  bool done = false;                               // GUARDED_BY(mu)
  bool abandoned = false;                          // GUARDED_BY(mu)
  absl::StatusOr<std::optional<v1::Task>> result;  // GUARDED_BY(mu)

  // Hands the result over; false when the poller already left.
  bool Fulfil(absl::StatusOr<std::optional<v1::Task>> value) {
    std::lock_guard<std::mutex> lock(mu);
    if (abandoned || done) return false;
    result = std::move(value);
    done = true;
    done_cv.notify_all();
    return true;
  }
  bool Abandoned() {
    std::lock_guard<std::mutex> lock(mu);
    return abandoned;
  }
};

v1::Request ToPublicRequest(const internal::RequestRecord& record) {
  v1::Request request = record.request();
  if (request.status() == v1::VERIFYING && record.timer_due_ms() != 0) {
    SetTimestampMillis(record.timer_due_ms(),
                       request.mutable_verification_expires_at());
  }
  request.clear_steps();
  for (int m = 0; m < record.maps_size(); ++m) {
    const internal::MapRun& run = record.maps(m);
    // A later run of the same Map state (a retry) replaces this one here;
    // the events keep the history.
    bool superseded =
        std::any_of(record.maps().begin() + m + 1, record.maps().end(),
                    [&](const internal::MapRun& later) {
                      return later.state() == run.state();
                    });
    if (superseded) continue;
    for (const internal::MapItem& item : run.items()) {
      v1::StoreStep* step = request.add_steps();
      step->set_store(item.store());
      step->set_map_state(run.state());
      step->set_task_state(item.state());
      step->set_status(StepStatusOf(item.phase()));
      step->set_attempts(item.attempt());
      step->set_error(item.error());
      step->set_cause(item.cause());
      step->set_record_count(item.record_count());
      step->set_artifact_sha256(item.artifact_sha256());
      step->set_worker_id(item.worker_id());
      step->set_alert(item.alert());
    }
  }
  return request;
}

Coordinator::Coordinator(Options options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::Create(
    Options options) {
  if (options.definition == nullptr || options.inventory == nullptr) {
    return absl::InvalidArgumentError(
        "a workflow definition and an inventory are required");
  }
  if (options.clock == nullptr) options.clock = RealClock();
  std::unique_ptr<Coordinator> coordinator(new Coordinator(std::move(options)));
  coordinator->started_ms_ = coordinator->options_.clock->NowMillis();
  ASSIGN_OR_RETURN(coordinator->store_,
                   StateStore::Open(coordinator->options_.data_dir + "/state"));
  RETURN_IF_ERROR(MakeDirectories(coordinator->options_.data_dir + "/bundles"));
  RETURN_IF_ERROR(
      MakeDirectories(coordinator->options_.data_dir + "/artifacts"));
  RETURN_IF_ERROR(coordinator->OpenAuditLog());
  ASSIGN_OR_RETURN(coordinator->zone_,
                   LoadDeadlineTimeZone(coordinator->options_.time_zone));
  RETURN_IF_ERROR(coordinator->Recover());
  RETURN_IF_ERROR(coordinator->StartNotifier());
  coordinator->loop_thread_ =
      std::thread([c = coordinator.get()] { c->RunCommitLoop(); });
  coordinator->bundler_thread_ =
      std::thread([c = coordinator.get()] { c->RunBundler(); });
  return coordinator;
}

Coordinator::~Coordinator() {
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

std::string Coordinator::public_key_path() const {
  return absl::StrCat(options_.keys_dir, "/checkpoint.key.pub");
}

absl::Status Coordinator::OpenAuditLog() {
  if (options_.keys_dir.empty())
    options_.keys_dir = options_.data_dir + "/keys";
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
        // longer in it can never be served. Fail those steps, loudly.
        std::vector<std::string> missing;
        Mutate(txn, entry,
               [&](Interpreter& interpreter, internal::RequestRecord* r) {
                 missing = interpreter.FailStoresNotInInventory(r);
               });
        if (!missing.empty()) {
          std::fprintf(stderr,
                       "dsard: WARNING: request %s uses stores no longer in "
                       "the inventory (%s): those steps failed; restore the "
                       "stores and retry the request\n",
                       id.c_str(), absl::StrJoin(missing, ", ").c_str());
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
  return absl::OkStatus();
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

template <typename T>
absl::StatusOr<T> Coordinator::RunInLoop(
    std::function<absl::StatusOr<T>(Txn&)> fn) {
  auto promise = std::make_shared<std::promise<absl::StatusOr<T>>>();
  std::future<absl::StatusOr<T>> future = promise->get_future();
  bool queued = Enqueue([fn = std::move(fn), promise](Txn& txn) {
    auto result = std::make_shared<absl::StatusOr<T>>(fn(txn));
    txn.replies.push_back(
        [promise, result] { promise->set_value(std::move(*result)); });
  });
  if (!queued) return absl::UnavailableError("coordinator is shutting down");
  try {
    return future.get();
  } catch (const std::future_error&) {
    // The loop stopped before running the command: nothing was changed.
    return absl::UnavailableError("coordinator is shutting down");
  }
}

void Coordinator::RunCommitLoop() {
  while (true) {
    std::deque<Command> group;
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
      auto has_work = [&] { return stopping_ || !queue_.empty(); };
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
    }
    Txn txn(store_->NewBatch(), options_.clock->NowMillis());
    FireDueTimers(txn);
    for (Command& command : group) command(txn);
    DispatchToPollers(txn);
    CommitGroup(txn);
  }
  // Fail whatever is still queued: those callers were never answered.
  std::deque<Command> rest;
  {
    std::lock_guard<std::mutex> lock(mu_);
    rest.swap(queue_);
  }
  (void)rest;  // Dropping the commands breaks their promises.
}

void Coordinator::CommitGroup(Txn& txn) {
  for (const std::string& id : txn.dirty) {
    auto it = live_.find(id);
    if (it == live_.end()) continue;
    LiveRequest& live = it->second;
    SetTimestampMillis(txn.now_ms,
                       live.record.mutable_request()->mutable_updated_at());
    txn.batch.PutRequest(live.record, live.persisted_status);
  }
  if (txn.batch.Count() > 0) {
    absl::Status status = audit_->SealGroup(txn.batch);
    if (status.ok()) status = store_->Commit(txn.batch);
    if (!status.ok()) {
      // The in-memory state is ahead of the disk. Stopping here is the only
      // safe move: a restart recovers exactly what was acknowledged.
      std::fprintf(stderr, "dsard: FATAL: commit failed, stopping: %s\n",
                   status.ToString().c_str());
      std::abort();
    }
  }
  for (const std::string& id : txn.dirty) {
    auto it = live_.find(id);
    if (it == live_.end()) continue;
    it->second.persisted_status = it->second.record.request().status();
    if (IsTerminalStatus(it->second.record.request().status())) {
      UnindexOpenRequest(it->second.record.request());
      live_.erase(it);
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
    event.set_previous_leaf_hash(live.record.last_audit_leaf_hash());
    live.record.set_last_audit_leaf_hash(audit_->Append(txn.batch, &event));
    txn.batch.PutEvent(event);
  }
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
  NotifyStatusChange(txn, live, before);
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
          PushTimer({item.ready_since_ms() + absl::ToInt64Milliseconds(
                                                 options_.unserved_alert_after),
                     TimerKind::kUnserved, id, map, i});
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
      started.kind = "task_started";
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
        std::string worker = item.worker_id();
        EventDraft expired;
        expired.kind = "lease_expired";
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
    }
  }
}

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
      internal::MapItem* item =
          record.mutable_maps(ref.map)->mutable_items(ref.item);
      if (item->phase() != internal::ITEM_READY) continue;
      item->set_phase(internal::ITEM_LEASED);
      item->set_attempt(item->attempt() + 1);
      item->set_worker_id(worker_id);
      item->clear_alert();
      int64_t expiry =
          txn.now_ms + absl::ToInt64Milliseconds(options_.lease_duration);
      lease_expiry_ms_[task_id] = expiry;
      PushTimer({expiry, TimerKind::kLease, ref.request_id, ref.map, ref.item});
      EventDraft leased;
      leased.kind = "task_leased";
      leased.state = item->state();
      leased.store = item->store();
      leased.attempt = item->attempt();
      leased.worker_id = worker_id;
      AppendEvents(txn, live, {leased});
      return BuildTask(live, ref.map, ref.item);
    }
  }
  return std::nullopt;
}

void Coordinator::DispatchToPollers(Txn& txn) {
  for (auto it = pollers_.begin(); it != pollers_.end();) {
    if (it->slot->Abandoned()) {
      it = pollers_.erase(it);
      continue;
    }
    std::optional<v1::Task> task = TryLease(txn, it->stores, it->worker_id);
    if (task || it->deadline_ms <= RealClock()->NowMillis()) {
      txn.replies.push_back(
          [slot = it->slot, task = std::move(task)]() mutable {
            slot->Fulfil(std::move(task));
          });
      it = pollers_.erase(it);
      continue;
    }
    ++it;
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
  task.set_operation(OperationOf(*task_state));
  task.set_attempt(item.attempt());
  task.set_request_type(record.request().type());
  *task.mutable_identities() = record.request().identities();
  MergeIdentities(record.discovered(), task.mutable_identities());
  auto expiry = lease_expiry_ms_.find(task.task_id());
  if (expiry != lease_expiry_ms_.end())
    task.set_lease_expires_unix_ms(expiry->second);
  task.set_lease_duration_ms(
      absl::ToInt64Milliseconds(options_.lease_duration));
  if (task_state->resource == kResourceWorkerRectify) {
    for (const v1::FieldCorrection& correction :
         record.request().corrections()) {
      if (correction.store().empty() || correction.store() == item.store()) {
        *task.add_corrections() = correction;
      }
    }
  }
  return task;
}

std::string Coordinator::ArtifactPath(const std::string& request_id, int map,
                                      int item, uint32_t attempt) const {
  return absl::StrCat(options_.data_dir, "/artifacts/", request_id, "/", map,
                      "-", item, "-a", attempt, ".json");
}

Coordinator::BuiltinJob Coordinator::BuildBundleJob(
    const LiveRequest& live) const {
  const internal::RequestRecord& record = live.record;
  BuiltinJob job;
  job.request_id = record.request().id();
  job.attempt = record.builtin_attempt();
  job.zip_path =
      absl::StrCat(options_.data_dir, "/bundles/", job.request_id, ".zip");
  job.input.request_id = job.request_id;
  job.input.request_type = v1::RequestType_Name(record.request().type());
  job.input.created_at = absl::FormatTime(
      absl::RFC3339_sec,
      absl::FromUnixSeconds(record.request().created_at().seconds()),
      absl::UTCTimeZone());
  job.input.templates_dir = options_.templates_dir;
  job.input.controller = options_.inventory->controller();
  job.input.regulation = record.request().regulation();
  auto display = [this](const google::protobuf::Timestamp& time) {
    return absl::FormatTime("%Y-%m-%d %H:%M %Z",
                            absl::FromUnixSeconds(time.seconds()), zone_);
  };
  job.input.received_at = display(record.request().created_at());
  job.input.deadline = display(record.request().deadline());
  // Which identity kinds each store was searched with: those given and
  // those discovered, as far as the store matches them.
  std::set<std::string> known_kinds;
  for (const v1::SubjectIdentity& identity : record.request().identities())
    known_kinds.insert(IdentityKey(identity));
  for (const v1::SubjectIdentity& identity : record.discovered())
    known_kinds.insert(IdentityKey(identity));
  std::vector<std::string> scope(record.request().stores().begin(),
                                 record.request().stores().end());
  std::map<std::string, std::set<std::string>> searched_with =
      SearchableIdentityKinds(*options_.inventory, scope, known_kinds);
  // The exports come from the most recent Map run whose tasks export.
  for (int m = record.maps_size() - 1; m >= 0; --m) {
    const State* map_state =
        live.definition->root().Find(record.maps(m).state());
    bool exports = false;
    if (map_state != nullptr && map_state->iterator != nullptr) {
      for (const auto& [name, state] : map_state->iterator->states) {
        if (state.resource == kResourceWorkerExport) exports = true;
      }
    }
    if (!exports) continue;
    for (const internal::MapItem& item : record.maps(m).items()) {
      BundleStoreEntry entry;
      entry.store = item.store();
      const std::set<std::string>& kinds = searched_with[item.store()];
      entry.identity_kinds.assign(kinds.begin(), kinds.end());
      if (const StoreSpec* spec = options_.inventory->Find(item.store())) {
        entry.kind = spec->kind;
        entry.purpose = spec->purpose;
        entry.legal_basis = spec->legal_basis;
        entry.recipients = spec->recipients;
        entry.retention = spec->retention;
        entry.source = spec->source;
        for (const CollectionSpec& collection : spec->collections) {
          entry.pii_categories[collection.name] = collection.pii_fields;
        }
      }
      bool ok = item.phase() == internal::ITEM_SUCCEEDED &&
                !item.artifact_path().empty();
      entry.status = ok ? "SUCCEEDED" : "FAILED";
      entry.record_count = item.record_count();
      if (ok) {
        entry.data_path = item.artifact_path();
        entry.data_sha256 = item.artifact_sha256();
      } else {
        // The subject's answer carries a neutral reason; the connector's
        // message (paths, SQL errors) stays in the steps and the events.
        entry.error = "this system could not be searched";
      }
      job.input.stores.push_back(std::move(entry));
    }
    break;
  }
  return job;
}

void Coordinator::RunBundler() {
  while (true) {
    BuiltinJob job;
    {
      std::unique_lock<std::mutex> lock(bundler_mu_);
      bundler_wake_.wait(
          lock, [&] { return bundler_stopping_ || !bundler_queue_.empty(); });
      if (bundler_stopping_) return;
      job = std::move(bundler_queue_.front());
      bundler_queue_.pop_front();
    }
    absl::StatusOr<BundleResult> result =
        WriteExportBundle(job.input, job.zip_path);
    Enqueue([this, job, result](Txn& txn) {
      auto it = live_.find(job.request_id);
      if (it == live_.end()) return;
      LiveRequest& live = it->second;
      if (!live.builtin_in_flight ||
          live.record.builtin_attempt() != job.attempt)
        return;
      live.builtin_in_flight = false;
      Mutate(
          txn, live,
          [&](Interpreter& interpreter, internal::RequestRecord* record) {
            const State* state = interpreter.CurrentState(*record);
            if (state == nullptr || state->type != StateType::kTask) return;
            if (result.ok()) {
              v1::Bundle* bundle = record->mutable_request()->mutable_bundle();
              bundle->set_path(job.zip_path);
              bundle->set_sha256(result->sha256);
              bundle->set_size_bytes(result->size_bytes);
              bundle->clear_files();
              for (const std::string& file : result->files)
                bundle->add_files(file);
              interpreter.CompleteBuiltin(
                  record, absl::StrCat("bundle sha256=", result->sha256,
                                       " bytes=", result->size_bytes));
            } else {
              interpreter.FailBuiltin(record, "Bundle.Failed",
                                      std::string(result.status().message()));
            }
          });
    });
  }
}

absl::StatusOr<v1::Request> Coordinator::CreateRequest(
    const v1::CreateRequestRequest& request, const std::string& actor) {
  RETURN_IF_ERROR(ValidateCreateRequest(request, *options_.inventory));
  // Scope is honest: every store in it must be searchable with the
  // identities given (directly, or through the stores that supply them).
  std::vector<std::string> scope(request.stores().begin(),
                                 request.stores().end());
  if (scope.empty()) {
    for (const StoreSpec& spec : options_.inventory->stores())
      scope.push_back(spec.name);
  }
  std::set<std::string> kinds;
  for (const v1::SubjectIdentity& identity : request.identities())
    kinds.insert(IdentityKey(identity));
  RETURN_IF_ERROR(CheckEveryStoreReachable(*options_.inventory, scope, kinds));
  return RunInLoop<v1::Request>([this, request, actor](Txn& txn) {
    return CreateInLoop(txn, request, actor);
  });
}

absl::StatusOr<v1::Request> Coordinator::CreateInLoop(
    Txn& txn, const v1::CreateRequestRequest& request,
    const std::string& actor) {
  const std::string& key = request.idempotency_key();
  if (!key.empty()) {
    std::optional<std::string> existing_id;
    auto pending = txn.new_idempotency_keys.find(key);
    if (pending != txn.new_idempotency_keys.end()) {
      existing_id = pending->second;
    } else {
      ASSIGN_OR_RETURN(existing_id, store_->GetIdempotencyKey(key));
    }
    if (existing_id) {
      v1::Request existing;
      auto live = live_.find(*existing_id);
      if (live != live_.end()) {
        existing = ToPublicRequest(live->second.record);
      } else {
        ASSIGN_OR_RETURN(internal::RequestRecord stored,
                         store_->GetRequest(*existing_id));
        existing = ToPublicRequest(stored);
      }
      if (!SameRequest(existing, request)) {
        return absl::AlreadyExistsError(
            "idempotency_key: already used for a different request");
      }
      return existing;
    }
  }
  char id_bytes[12];
  for (char& byte : id_bytes)
    byte = static_cast<char>(absl::Uniform<int>(random_, 0, 256));
  std::string id = absl::StrCat(
      "dsr_",
      absl::BytesToHexString(absl::string_view(id_bytes, sizeof(id_bytes))));

  // The statutory clock starts at receipt, now.
  ASSIGN_OR_RETURN(
      absl::Time deadline,
      StatutoryDeadline(
          request.regulation().empty() ? "GDPR" : request.regulation(),
          absl::FromUnixMillis(txn.now_ms), zone_));
  LiveRequest live;
  live.definition = options_.definition;
  v1::Request* stored = live.record.mutable_request();
  stored->set_id(id);
  stored->set_type(request.type());
  stored->set_regulation(request.regulation().empty() ? "GDPR"
                                                      : request.regulation());
  for (const v1::SubjectIdentity& identity : request.identities()) {
    *stored->add_identities() = NormalizeIdentity(identity);
  }
  stored->set_status(v1::RECEIVED);
  stored->set_definition_version(options_.definition->version());
  SetTimestampMillis(txn.now_ms, stored->mutable_created_at());
  stored->set_idempotency_key(key);
  SetTimestampMillis(absl::ToUnixMillis(deadline), stored->mutable_deadline());
  *stored->mutable_original_deadline() = stored->deadline();
  *stored->mutable_corrections() = request.corrections();
  if (request.stores().empty()) {
    for (const StoreSpec& spec : options_.inventory->stores())
      stored->add_stores(spec.name);
  } else {
    *stored->mutable_stores() = request.stores();
  }
  if (!key.empty()) {
    txn.batch.PutIdempotencyKey(key, id);
    txn.new_idempotency_keys[key] = id;
  }
  auto [it, inserted] = live_.emplace(id, std::move(live));
  LiveRequest& entry = it->second;
  EventDraft received;
  received.kind = "received";
  received.detail =
      absl::StrCat("type=", v1::RequestType_Name(request.type()),
                   " regulation=", entry.record.request().regulation(),
                   " identities=", request.identities_size(),
                   " stores=", entry.record.request().stores_size());
  for (const v1::SubjectIdentity& identity :
       entry.record.request().identities()) {
    received.subject_hmacs.push_back(
        audit_->SubjectHmac(IdentityKey(identity), identity.value()));
  }
  received.actor = actor;
  AppendEvents(txn, entry, {received});
  ReceiveRequest(txn, entry, request);
  std::optional<std::string> original = OpenDuplicateOf(entry.record);
  if (original) {
    LinkDuplicate(txn, entry, live_.at(*original));
    return ToPublicRequest(entry.record);
  }
  IndexOpenRequest(entry.record);
  Mutate(txn, entry,
         [](Interpreter& interpreter, internal::RequestRecord* record) {
           interpreter.Advance(record);
         });
  return ToPublicRequest(entry.record);
}

absl::StatusOr<Coordinator::LiveRequest*> Coordinator::FindUnfinished(
    const std::string& id) {
  auto it = live_.find(id);
  if (it != live_.end()) return &it->second;
  ASSIGN_OR_RETURN(internal::RequestRecord stored, store_->GetRequest(id));
  return absl::FailedPreconditionError(
      absl::StrCat("request ", id, " is already ",
                   v1::RequestStatus_Name(stored.request().status())));
}

absl::StatusOr<v1::Request> Coordinator::CancelRequest(
    const v1::CancelRequestRequest& request, const std::string& actor) {
  RETURN_IF_ERROR(ValidateIdAndReason(request.id(), request.reason(), ""));
  return RunInLoop<v1::Request>([this, request, actor](
                                    Txn& txn) -> absl::StatusOr<v1::Request> {
    ASSIGN_OR_RETURN(LiveRequest * unfinished, FindUnfinished(request.id()));
    LiveRequest& live = *unfinished;
    std::string reason =
        request.reason().empty() ? "cancelled by caller" : request.reason();
    Mutate(txn, live,
           [&](Interpreter& interpreter, internal::RequestRecord* record) {
             interpreter.set_actor(actor);
             interpreter.Cancel(record, reason);
           });
    return ToPublicRequest(live.record);
  });
}

absl::StatusOr<v1::Request> Coordinator::RetryRequest(
    const v1::RetryRequestRequest& request, const std::string& actor) {
  RETURN_IF_ERROR(ValidateIdAndReason(request.id(), request.reason(), ""));
  for (int i = 0; i < request.stores_size(); ++i) {
    if (options_.inventory->Find(request.stores(i)) == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("stores[", i, "]: unknown store \"", request.stores(i),
                       "\" (not in the data inventory)"));
    }
  }
  return RunInLoop<v1::Request>([this, request, actor](
                                    Txn& txn) -> absl::StatusOr<v1::Request> {
    // A request that needs attention is still live; a FAILED one is
    // read back from the archive.
    LiveRequest candidate;
    auto open = live_.find(request.id());
    if (open != live_.end()) {
      if (open->second.record.request().status() != v1::NEEDS_ATTENTION) {
        return absl::FailedPreconditionError(absl::StrCat(
            "request ", request.id(), " is still ",
            v1::RequestStatus_Name(open->second.record.request().status()),
            "; only requests that need attention or failed can be "
            "retried"));
      }
      candidate = open->second;
    } else {
      ASSIGN_OR_RETURN(internal::RequestRecord stored,
                       store_->GetRequest(request.id()));
      candidate.persisted_status = stored.request().status();
      ASSIGN_OR_RETURN(candidate.definition,
                       DefinitionFor(stored.request().definition_version()));
      candidate.record = std::move(stored);
    }
    // Try on a copy: a refused retry must leave nothing behind.
    std::vector<EventDraft> drafts;
    Interpreter interpreter(
        *candidate.definition, *options_.inventory, txn.now_ms,
        [this] { return UnitRandom(); }, &drafts);
    interpreter.set_actor(actor);
    std::vector<std::string> stores(request.stores().begin(),
                                    request.stores().end());
    v1::RequestStatus before = candidate.record.request().status();
    RETURN_IF_ERROR(
        interpreter.Retry(&candidate.record, stores, request.reason()));
    LiveRequest& entry = live_[request.id()];
    entry = std::move(candidate);
    AppendEvents(txn, entry, std::move(drafts));
    NotifyStatusChange(txn, entry, before);
    Schedule(txn, entry);
    return ToPublicRequest(entry.record);
  });
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
  int64_t alert_after =
      absl::ToInt64Milliseconds(options_.unserved_alert_after);
  if (item->phase() != internal::ITEM_READY || !item->alert().empty() ||
      txn.now_ms < item->ready_since_ms() + alert_after) {
    return;
  }
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
  std::string since = absl::FormatTime(
      absl::RFC3339_sec, absl::FromUnixMillis(item->ready_since_ms()),
      absl::UTCTimeZone());
  item->set_alert(absl::StrCat("no live worker serves store ", item->store(),
                               "; ready since ", since));
  EventDraft unserved;
  unserved.kind = "store_unserved";
  unserved.state = item->state();
  unserved.store = item->store();
  unserved.detail = item->alert();
  AppendEvents(txn, live, {unserved});
  QueueNotification(txn, live, "store_unserved",
                    {{"audience", "operator"},
                     {"store", item->store()},
                     {"ready_since", since}});
  std::fprintf(stderr, "dsard: ALERT: request %s: %s\n",
               live.record.request().id().c_str(), item->alert().c_str());
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

absl::StatusOr<v1::Request> Coordinator::GetRequest(
    const std::string& id) const {
  if (id.empty()) return absl::InvalidArgumentError("id: required");
  ASSIGN_OR_RETURN(internal::RequestRecord record, store_->GetRequest(id));
  return ToPublicRequest(record);
}

absl::StatusOr<v1::ListRequestsResponse> Coordinator::ListRequests(
    const v1::ListRequestsRequest& request) const {
  if (request.page_size() < 0 || request.page_size() > 1000) {
    return absl::InvalidArgumentError("page_size: must be between 0 and 1000");
  }
  if (!v1::RequestStatus_IsValid(request.status())) {
    return absl::InvalidArgumentError("status: unknown status");
  }
  if (!v1::RequestType_IsValid(request.type())) {
    return absl::InvalidArgumentError("type: unknown request type");
  }
  RequestFilter filter;
  filter.status = request.status();
  filter.type = request.type();
  if (request.has_created_after()) {
    if (request.created_after().seconds() < 0) {
      return absl::InvalidArgumentError(
          "created_after: must not be before 1970");
    }
    filter.created_after_ms =
        static_cast<uint64_t>(request.created_after().seconds()) * 1000 +
        static_cast<uint64_t>(request.created_after().nanos() / 1000000);
  }
  std::vector<internal::RequestRecord> records;
  v1::ListRequestsResponse response;
  if (request.has_due_before()) {
    // Deadlines matter only for unfinished requests: scan the live set, not
    // the archive. Earliest deadline first; one page (no token).
    if (!request.page_token().empty()) {
      return absl::InvalidArgumentError("page_token: not used with due_before");
    }
    int64_t due_before = request.due_before().seconds() * 1000 +
                         request.due_before().nanos() / 1000000;
    auto millis = [](const google::protobuf::Timestamp& t) {
      return t.seconds() * 1000 + t.nanos() / 1000000;
    };
    RETURN_IF_ERROR(
        store_->ForEachLiveRequest([&](internal::RequestRecord record) {
          const v1::Request& r = record.request();
          bool matches = millis(r.deadline()) < due_before &&
                         (filter.type == v1::REQUEST_TYPE_UNSPECIFIED ||
                          r.type() == filter.type) &&
                         (filter.status == v1::REQUEST_STATUS_UNSPECIFIED ||
                          r.status() == filter.status) &&
                         static_cast<uint64_t>(millis(r.created_at())) >=
                             filter.created_after_ms;
          if (matches) records.push_back(std::move(record));
          return absl::OkStatus();
        }));
    std::sort(records.begin(), records.end(),
              [&](const auto& a, const auto& b) {
                return millis(a.request().deadline()) <
                       millis(b.request().deadline());
              });
    size_t limit = request.page_size() == 0
                       ? 50
                       : static_cast<size_t>(request.page_size());
    if (records.size() > limit) records.resize(limit);
    for (const internal::RequestRecord& record : records) {
      *response.add_requests() = ToPublicRequest(record);
    }
    return response;
  }
  RETURN_IF_ERROR(store_->ListRequests(
      filter, request.page_size() == 0 ? 50 : request.page_size(),
      request.page_token(), &records, response.mutable_next_page_token()));
  for (const internal::RequestRecord& record : records) {
    *response.add_requests() = ToPublicRequest(record);
  }
  return response;
}

absl::StatusOr<v1::ListEventsResponse> Coordinator::ListEvents(
    const v1::ListEventsRequest& request) const {
  if (request.request_id().empty()) {
    return absl::InvalidArgumentError("request_id: required");
  }
  if (request.page_size() < 0 || request.page_size() > 1000) {
    return absl::InvalidArgumentError("page_size: must be between 0 and 1000");
  }
  uint64_t after = 0;
  if (!request.page_token().empty() &&
      !absl::SimpleAtoi(request.page_token(), &after)) {
    return absl::InvalidArgumentError(
        "page_token: not a token from this listing");
  }
  // Existence check, so an unknown id is NOT_FOUND rather than empty.
  RETURN_IF_ERROR(store_->GetRequest(request.request_id()).status());
  std::vector<v1::Event> events;
  bool more = false;
  RETURN_IF_ERROR(store_->ListEvents(
      request.request_id(), after,
      request.page_size() == 0 ? 100 : request.page_size(), &events, &more));
  v1::ListEventsResponse response;
  for (v1::Event& event : events) *response.add_events() = std::move(event);
  if (more && !events.empty()) {
    response.set_next_page_token(
        absl::StrCat(response.events().rbegin()->sequence()));
  }
  return response;
}

absl::StatusOr<std::optional<v1::Task>> Coordinator::PollTask(
    const v1::PollTaskRequest& request,
    const std::function<bool()>& cancelled) {
  if (request.worker_id().empty())
    return absl::InvalidArgumentError("worker_id: required");
  if (request.stores().empty()) {
    return absl::InvalidArgumentError(
        "stores: name at least one store this worker serves");
  }
  for (int i = 0; i < request.stores_size(); ++i) {
    if (options_.inventory->Find(request.stores(i)) == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("stores[", i, "]: unknown store \"", request.stores(i),
                       "\" (not in the data inventory)"));
    }
  }
  int wait_ms = request.wait_ms() <= 0
                    ? kDefaultPollWaitMs
                    : std::min(request.wait_ms(), kMaxPollWaitMs);
  auto slot = std::make_shared<PollSlot>();
  std::vector<std::string> stores(request.stores().begin(),
                                  request.stores().end());
  std::string worker_id = request.worker_id();
  bool queued = Enqueue([this, slot, stores, worker_id, wait_ms](Txn& txn) {
    SawWorker(worker_id, txn.now_ms, &stores);
    pollers_.push_back(
        {worker_id, stores, RealClock()->NowMillis() + wait_ms, slot});
  });
  if (!queued) return absl::UnavailableError("coordinator is shutting down");
  std::unique_lock<std::mutex> lock(slot->mu);
  while (!slot->done) {
    slot->done_cv.wait_for(lock, std::chrono::milliseconds(500));
    if (!slot->done && cancelled()) {
      slot->abandoned = true;
      return absl::CancelledError("poll cancelled by the worker");
    }
  }
  return std::move(slot->result);
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
    return absl::FailedPreconditionError(
        absl::StrCat("task ", task_id, " is not leased: its request is ",
                     v1::RequestStatus_Name(stored->request().status())));
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

absl::StatusOr<std::string> Coordinator::ArtifactPathForUpload(
    const v1::ArtifactHeader& header) {
  return RunInLoop<std::string>(
      [this, header](Txn& txn) -> absl::StatusOr<std::string> {
        ASSIGN_OR_RETURN(auto found,
                         FindLeasedItem(header.task_id(), header.attempt(),
                                        header.worker_id()));
        ASSIGN_OR_RETURN(ParsedTaskId parsed, ParseTaskId(header.task_id()));
        (void)found;
        return ArtifactPath(parsed.request_id, parsed.map, parsed.item,
                            header.attempt());
      });
}

absl::Status Coordinator::CompleteTask(const v1::CompleteTaskRequest& request) {
  if (request.record_count() < 0) {
    return absl::InvalidArgumentError("record_count: must not be negative");
  }
  return RunInLoop<bool>([this, request](Txn& txn) -> absl::StatusOr<bool> {
           ASSIGN_OR_RETURN(auto found,
                            FindLeasedItem(request.task_id(), request.attempt(),
                                           request.worker_id()));
           auto [live, item_index] = found;
           SawWorker(request.worker_id(), txn.now_ms, nullptr);
           int map = live->record.maps_size() - 1;
           const internal::MapItem& item =
               live->record.maps(map).items(item_index);
           const State* map_state =
               live->definition->root().Find(live->record.maps(map).state());
           const State* task_state = map_state->iterator->Find(item.state());
           std::string artifact_path;
           int64_t artifact_size = 0;
           if (task_state->resource == kResourceWorkerExport) {
             if (request.artifact_sha256().empty()) {
               return absl::InvalidArgumentError(
                   "artifact_sha256: required for an export (upload it first)");
             }
             artifact_path = ArtifactPath(live->record.request().id(), map,
                                          item_index, request.attempt());
             struct stat info;
             if (::stat(artifact_path.c_str(), &info) != 0) {
               return absl::FailedPreconditionError(absl::StrCat(
                   "artifact_sha256: no export was uploaded for task ",
                   request.task_id(), " attempt ", request.attempt()));
             }
             artifact_size = info.st_size;
             absl::StatusOr<std::string> uploaded_sha =
                 ReadFile(ArtifactDigestPath(artifact_path));
             if (!uploaded_sha.ok() ||
                 *uploaded_sha != request.artifact_sha256()) {
               return absl::InvalidArgumentError(absl::StrCat(
                   "artifact_sha256: does not match the export uploaded for "
                   "task ",
                   request.task_id(), " attempt ", request.attempt()));
             }
           }
           for (int i = 0; i < request.discovered_identities_size(); ++i) {
             const v1::SubjectIdentity& identity =
                 request.discovered_identities(i);
             if (identity.value().empty() || IdentityKey(identity).empty()) {
               return absl::InvalidArgumentError(absl::StrCat(
                   "discovered_identities[", i, "]: needs a type and a value"));
             }
           }
           lease_expiry_ms_.erase(request.task_id());
           Mutate(
               txn, *live,
               [&](Interpreter& interpreter, internal::RequestRecord* record) {
                 interpreter.CompleteItemTask(
                     record, item_index, request.record_count(),
                     request.discovered_identities(), request.artifact_sha256(),
                     artifact_path, artifact_size);
               });
           return true;
         })
      .status();
}

absl::Status Coordinator::FailTask(const v1::FailTaskRequest& request) {
  return RunInLoop<bool>([this, request](Txn& txn) -> absl::StatusOr<bool> {
           ASSIGN_OR_RETURN(auto found,
                            FindLeasedItem(request.task_id(), request.attempt(),
                                           request.worker_id()));
           auto [live, item_index] = found;
           SawWorker(request.worker_id(), txn.now_ms, nullptr);
           lease_expiry_ms_.erase(request.task_id());
           std::string error =
               request.error().empty() ? "Worker.Failed" : request.error();
           Mutate(
               txn, *live,
               [&](Interpreter& interpreter, internal::RequestRecord* record) {
                 interpreter.FailItemTask(record, item_index, error,
                                          request.cause());
               });
           return true;
         })
      .status();
}

}  // namespace dsar
