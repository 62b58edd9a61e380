#include "engine/interpreter.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "engine/identity.h"
#include "model/event_kinds.h"
#include "storage/request_status.h"

namespace dsar {
namespace {

using internal::ItemPhase;
using internal::MapItem;
using internal::MapRun;
using internal::RequestRecord;

// A Pass/Choice cycle in a definition must not hang the commit loop.
constexpr int kMaxStepsPerAdvance = 1000;

bool ItemFinished(const MapItem& item) {
  return item.phase() == internal::ITEM_SUCCEEDED ||
         item.phase() == internal::ITEM_FAILED ||
         item.phase() == internal::ITEM_SKIPPED;
}

bool ItemActive(const MapItem& item) {
  return item.phase() == internal::ITEM_READY ||
         item.phase() == internal::ITEM_LEASED ||
         item.phase() == internal::ITEM_RETRY_WAIT;
}

// Finished, or blocked for good: nothing more happens to it in this run.
bool ItemSettled(const MapItem& item) {
  return ItemFinished(item) || item.phase() == internal::ITEM_BLOCKED;
}

bool ItemProblem(const MapItem& item) {
  return item.phase() == internal::ITEM_FAILED ||
         item.phase() == internal::ITEM_BLOCKED;
}

}  // namespace

void SetTimestampMillis(int64_t millis, google::protobuf::Timestamp* out) {
  out->set_seconds(millis / 1000);
  out->set_nanos(static_cast<int32_t>((millis % 1000) * 1000000));
}

int64_t TimestampMillis(const google::protobuf::Timestamp& time) {
  return time.seconds() * 1000 + time.nanos() / 1000000;
}

std::string Rfc3339Millis(int64_t millis) {
  return absl::FormatTime(absl::RFC3339_sec, absl::FromUnixMillis(millis),
                          absl::UTCTimeZone());
}

Interpreter::Interpreter(const WorkflowDefinition& definition,
                         const Inventory& inventory, int64_t now_ms,
                         std::function<double()> unit_random,
                         std::vector<EventDraft>* events)
    : definition_(definition),
      inventory_(inventory),
      now_ms_(now_ms),
      unit_random_(std::move(unit_random)),
      events_(events) {}

void Interpreter::Emit(std::string kind, const std::string& state,
                       const std::string& store, uint32_t attempt,
                       std::string detail) {
  EventDraft draft;
  draft.kind = std::move(kind);
  draft.state = state;
  draft.store = store;
  draft.attempt = attempt;
  draft.detail = std::move(detail);
  draft.actor = actor_;
  events_->push_back(std::move(draft));
}

const State* Interpreter::CurrentState(const RequestRecord& record) const {
  if (IsTerminalStatus(record.request().status())) return nullptr;
  return definition_.root().Find(record.request().current_state());
}

const State* Interpreter::ItemTaskState(const RequestRecord& record,
                                        int item) const {
  const State* map = CurrentState(record);
  if (map == nullptr || map->type != StateType::kMap || record.maps().empty() ||
      item < 0 || item >= record.maps().rbegin()->items_size()) {
    return nullptr;
  }
  const State* state =
      map->iterator->Find(record.maps().rbegin()->items(item).state());
  return state != nullptr && state->type == StateType::kTask ? state : nullptr;
}

nlohmann::json Interpreter::ChoiceInput(const RequestRecord& record,
                                        const MapItem* item) const {
  const v1::Request& request = record.request();
  nlohmann::json input;
  input["id"] = request.id();
  input["type"] = v1::RequestType_Name(request.type());
  input["regulation"] = request.regulation();
  input["stores"] = nlohmann::json::array();
  for (const std::string& store : request.stores())
    input["stores"].push_back(store);
  if (item != nullptr) {
    nlohmann::json store;
    store["name"] = item->store();
    if (const StoreSpec* spec = inventory_.Find(item->store())) {
      store["kind"] = spec->kind;
    }
    store["error"] = item->error();
    input["store"] = std::move(store);
  }
  return input;
}

void Interpreter::Finish(RequestRecord* record, v1::RequestStatus status,
                         const std::string& error, const std::string& cause) {
  v1::Request* request = record->mutable_request();
  request->set_status(status);
  request->set_error(error);
  request->set_cause(cause);
  // NEEDS_ATTENTION is no end: the request waits for an operator, its
  // clock running, so it gets no completion time.
  if (IsTerminalStatus(status)) {
    SetTimestampMillis(now_ms_, request->mutable_completed_at());
  }
  const char* kind = status == v1::COMPLETED         ? kEventCompleted
                     : status == v1::CANCELLED       ? kEventCancelled
                     : status == v1::NEEDS_ATTENTION ? kEventNeedsAttention
                                                     : kEventFailed;
  if (status == v1::CANCELLED) {
    // The reason is free text: beside the request, not in the leaf.
    Emit(kind, request->current_state(), "", 0, error);
    events_->back().note = cause;
    return;
  }
  Emit(kind, request->current_state(), "", 0,
       error.empty() ? std::string() : absl::StrCat(error, ": ", cause));
}

void Interpreter::MoveTo(RequestRecord* record, const State& from) {
  if (from.end) {
    Finish(record, v1::COMPLETED, "", "");
    return;
  }
  record->mutable_request()->set_current_state(from.next);
  record->set_builtin_attempt(0);
  record->clear_builtin_retry_counts();
  record->clear_builtin_error();
  record->set_timer_due_ms(0);
  Emit(kEventStateEntered, from.next, "", 0, "");
}

void Interpreter::Advance(RequestRecord* record) {
  v1::Request* request = record->mutable_request();
  if (IsTerminalStatus(request->status()) ||
      request->status() == v1::NEEDS_ATTENTION || record->waits_for_linked()) {
    return;
  }
  if (request->current_state().empty()) {
    request->set_current_state(definition_.root().start_at);
    Emit(kEventStateEntered, request->current_state(), "", 0, "");
  }
  // A paused request keeps moving its finished parts along, but stays
  // PAUSED: the commit loop hands out no new task until it is resumed.
  bool paused = request->status() == v1::PAUSED;
  if (!paused) request->set_status(v1::RUNNING);
  for (int step = 0; step < kMaxStepsPerAdvance; ++step) {
    const State* state = definition_.root().Find(request->current_state());
    if (state == nullptr) {
      Finish(record, v1::FAILED, kErrorRuntime,
             absl::StrCat("no state named ", request->current_state()));
      return;
    }
    switch (state->type) {
      case StateType::kPass:
        MoveTo(record, *state);
        break;
      case StateType::kSucceed:
        Finish(record, v1::COMPLETED, "", "");
        return;
      case StateType::kFail:
        Finish(record, v1::FAILED, state->error, state->cause);
        return;
      case StateType::kChoice: {
        std::optional<std::string> next =
            EvaluateChoice(*state, ChoiceInput(*record, nullptr));
        if (!next) {
          Finish(record, v1::FAILED, kErrorNoChoiceMatched,
                 absl::StrCat("no rule of ", state->name, " matched"));
          return;
        }
        State hop = *state;
        hop.end = false;
        hop.next = *next;
        MoveTo(record, hop);
        break;
      }
      case StateType::kWait:
        if (!state->signal.empty()) {
          if (std::find(record->signals().begin(), record->signals().end(),
                        state->signal) != record->signals().end()) {
            MoveTo(record, *state);
            break;
          }
          // The commit loop issues the code and sets the timeout.
          if (record->timer_due_ms() != 0 &&
              now_ms_ >= record->timer_due_ms()) {
            Finish(record, v1::FAILED, "Identity.VerificationExpired",
                   "the data subject did not prove their identity in time");
            return;
          }
          if (!paused) request->set_status(v1::VERIFYING);
          return;
        }
        if (record->timer_due_ms() == 0) {
          record->set_timer_due_ms(now_ms_ + state->seconds * 1000);
        }
        if (now_ms_ < record->timer_due_ms()) return;
        MoveTo(record, *state);
        break;
      case StateType::kTask:
        // Builtin task: the commit loop runs it (after any back-off) and
        // reports through CompleteBuiltin / FailBuiltin.
        return;
      case StateType::kMap:
        if (!AdvanceMap(record, *state)) return;
        if (StopForProblems(record, *state)) return;
        Emit(kEventStateCompleted, state->name, "", 0, "");
        MoveTo(record, *state);
        break;
    }
    if (IsTerminalStatus(request->status())) return;
  }
  Finish(record, v1::FAILED, kErrorRuntime,
         "the workflow did not reach a waiting point (a loop of Pass/Choice "
         "states?)");
}

bool Interpreter::AdvanceMap(RequestRecord* record, const State& map) {
  if (record->maps().empty() || record->maps().rbegin()->state() != map.name) {
    MapRun* run = record->add_maps();
    run->set_state(map.name);
    for (const std::string& store : record->request().stores()) {
      MapItem* item = run->add_items();
      item->set_store(store);
      item->set_state(map.iterator->start_at);
      item->set_phase(internal::ITEM_WAITING);
    }
  }
  MapRun* run = record->mutable_maps(record->maps_size() - 1);
  // Blocking spreads along the dependencies: repeat until nothing changes.
  for (bool changed = true; changed;) {
    changed = false;
    for (int i = 0; i < run->items_size(); ++i) {
      MapItem* item = run->mutable_items(i);
      if (ItemSettled(*item)) continue;
      const internal::ItemPhase phase = item->phase();
      const std::string state = item->state();
      AdvanceItem(record, map, item);
      changed = changed || item->phase() != phase || item->state() != state;
    }
  }
  if (std::all_of(run->items().begin(), run->items().end(), ItemSettled)) {
    return true;
  }
  // Way forward: some store is queued, leased or waiting for a back-off. If
  // none is, the stores still WAITING wait for each other (a dependency
  // cycle the inventory let through): block them rather than hang.
  if (std::any_of(run->items().begin(), run->items().end(), ItemActive)) {
    return false;
  }
  std::vector<std::string> stuck;
  for (const MapItem& item : run->items()) {
    if (!ItemSettled(item)) stuck.push_back(item.store());
  }
  for (MapItem& item : *run->mutable_items()) {
    if (ItemSettled(item)) continue;
    Block(&item, map.name,
          absl::StrCat("waits for stores that wait for it in turn (",
                       absl::StrJoin(stuck, ", "), ")"));
  }
  return true;
}

void Interpreter::Block(MapItem* item, const std::string& map_state,
                        const std::string& cause) {
  item->set_phase(internal::ITEM_BLOCKED);
  item->set_error(kErrorStoreBlocked);
  item->set_cause(cause);
  Emit(kEventStoreBlocked, map_state, item->store(), item->attempt(), cause);
}

bool Interpreter::StopForProblems(RequestRecord* record, const State& map) {
  const MapRun& run = *record->maps().rbegin();
  std::vector<std::string> failed;
  std::vector<std::string> blocked;
  for (const MapItem& item : run.items()) {
    if (item.phase() == internal::ITEM_FAILED) {
      failed.push_back(absl::StrCat(item.store(), " (", item.error(), ")"));
    } else if (item.phase() == internal::ITEM_BLOCKED) {
      blocked.push_back(item.store());
    }
  }
  if (failed.empty() && blocked.empty()) return false;
  std::string cause = absl::StrCat(map.name, ":");
  if (!failed.empty()) {
    absl::StrAppend(&cause, " failed: ", absl::StrJoin(failed, ", "));
  }
  if (!blocked.empty()) {
    absl::StrAppend(&cause, failed.empty() ? "" : ";",
                    " blocked: ", absl::StrJoin(blocked, ", "));
  }
  // The identities given belong to different people: a person reviews
  // them; nothing was merged or changed.
  bool conflict =
      std::any_of(run.items().begin(), run.items().end(), [](const auto& i) {
        return i.phase() == internal::ITEM_FAILED &&
               i.error() == kErrorIdentityConflict;
      });
  Finish(record, v1::NEEDS_ATTENTION,
         conflict ? std::string(kErrorIdentityConflict)
                  : std::string(kErrorNeedsAttention),
         cause);
  return true;
}

std::vector<std::string> Interpreter::Upstream(const MapRun& run,
                                               const State& map,
                                               const MapItem& item) const {
  std::vector<std::string> upstream;
  if (map.item_order.empty()) return upstream;
  const StoreSpec* spec = inventory_.Find(item.store());
  if (spec == nullptr) return upstream;
  if (map.item_order != kItemOrderEraseAfter) return spec->identities_from;
  // Erasure runs after a discovery pass collected every identity. It
  // follows erase_after, and a store that supplies identities to others
  // (accounts: email -> user id) is erased only after them, so a failure
  // anywhere never leaves data that can no longer be found.
  upstream = spec->erase_after;
  for (const MapItem& other : run.items()) {
    const StoreSpec* other_spec = inventory_.Find(other.store());
    if (other_spec == nullptr) continue;
    const std::vector<std::string>& from = other_spec->identities_from;
    if (std::find(from.begin(), from.end(), item.store()) != from.end() &&
        std::find(upstream.begin(), upstream.end(), other.store()) ==
            upstream.end()) {
      upstream.push_back(other.store());
    }
  }
  return upstream;
}

Interpreter::Dependencies Interpreter::CheckDependencies(
    const MapRun& run, const State& map, const MapItem& item) const {
  std::vector<std::string> upstream = Upstream(run, map, item);
  Dependencies result;
  for (const MapItem& other : run.items()) {
    if (std::find(upstream.begin(), upstream.end(), other.store()) ==
        upstream.end()) {
      continue;
    }
    if (ItemProblem(other)) {
      result.blocker = other.store();
      result.blocker_blocked = other.phase() == internal::ITEM_BLOCKED;
      return result;
    }
    if (!ItemFinished(other)) result.done = false;
  }
  return result;
}

void Interpreter::FinishItem(MapItem* item, const std::string& map_state) {
  bool failed = !item->error().empty();
  item->set_phase(failed ? internal::ITEM_FAILED : internal::ITEM_SUCCEEDED);
  Emit(failed ? kEventStoreFailed : kEventStoreSucceeded, map_state,
       item->store(), item->attempt(),
       failed ? absl::StrCat(item->error(), ": ", item->cause())
              : absl::StrCat("records=", item->record_count()));
}

void Interpreter::AdvanceItem(RequestRecord* record, const State& map,
                              MapItem* item) {
  const MapRun& run = *record->maps().rbegin();
  for (int step = 0; step < kMaxStepsPerAdvance; ++step) {
    const State* state = map.iterator->Find(item->state());
    if (state == nullptr) {
      item->set_error(kErrorRuntime);
      item->set_cause(absl::StrCat("no iterator state named ", item->state()));
      FinishItem(item, map.name);
      return;
    }
    auto move = [&](const std::string& next, bool end) {
      if (end) {
        FinishItem(item, map.name);
      } else {
        item->set_state(next);
        item->set_phase(internal::ITEM_WAITING);
        item->clear_retry_counts();  // A new state retries afresh.
      }
    };
    switch (state->type) {
      case StateType::kTask: {
        if (item->phase() != internal::ITEM_WAITING) return;
        if (inventory_.Find(item->store()) == nullptr) {
          item->set_error(kErrorStoreNotInInventory);
          item->set_cause(absl::StrCat("store ", item->store(),
                                       " is no longer in the data inventory"));
          FinishItem(item, map.name);
          return;
        }
        Dependencies dependencies = CheckDependencies(run, map, *item);
        if (!dependencies.blocker.empty()) {
          Block(item, map.name,
                absl::StrCat(
                    "waits for ", dependencies.blocker, ", which ",
                    dependencies.blocker_blocked ? "is blocked" : "failed"));
          return;
        }
        if (!dependencies.done) return;
        if (map.max_concurrency > 0) {
          int active = static_cast<int>(std::count_if(
              run.items().begin(), run.items().end(), ItemActive));
          if (active >= map.max_concurrency) return;
        }
        // Retry counts are kept: an item back in WAITING for its group's
        // restart (RestartGroup) still counts its retries. They are
        // cleared when the item enters a new state.
        item->set_phase(internal::ITEM_READY);
        item->set_ready_since_ms(now_ms_);
        return;
      }
      case StateType::kPass:
        move(state->next, state->end);
        break;
      case StateType::kSucceed:
        FinishItem(item, map.name);
        return;
      case StateType::kFail:
        item->set_error(state->error);
        item->set_cause(state->cause);
        FinishItem(item, map.name);
        return;
      case StateType::kChoice: {
        std::optional<std::string> next =
            EvaluateChoice(*state, ChoiceInput(*record, item));
        if (!next) {
          item->set_error(kErrorNoChoiceMatched);
          item->set_cause(absl::StrCat("no rule of ", state->name, " matched"));
          FinishItem(item, map.name);
          return;
        }
        move(*next, false);
        break;
      }
      case StateType::kWait:
      case StateType::kMap:
        item->set_error(kErrorRuntime);
        item->set_cause(absl::StrCat(
            state->name,
            ": Wait and Map are not supported inside a Map iterator"));
        FinishItem(item, map.name);
        return;
    }
    if (ItemFinished(*item)) return;
  }
  item->set_error(kErrorRuntime);
  item->set_cause(
      "the iterator did not reach a task (a loop of Pass/Choice states?)");
  FinishItem(item, map.name);
}

void Interpreter::CompleteItemTask(
    RequestRecord* record, int index, int64_t record_count,
    const google::protobuf::RepeatedPtrField<v1::SubjectIdentity>& discovered,
    const std::string& artifact_sha256, const std::string& artifact_path,
    int64_t artifact_size,
    const google::protobuf::RepeatedPtrField<v1::CollectionErasure>& erasures) {
  const State* task = ItemTaskState(*record, index);
  MapItem* item =
      record->mutable_maps(record->maps_size() - 1)->mutable_items(index);
  item->set_record_count(record_count);
  *item->mutable_erasures() = erasures;
  item->set_artifact_sha256(artifact_sha256);
  item->set_artifact_path(artifact_path);
  item->set_artifact_size(artifact_size);
  MergeIdentities(discovered, record->mutable_discovered());
  Emit(
      kEventTaskCompleted, task->name, item->store(), item->attempt(),
      absl::StrCat("records=", record_count,
                   " discovered_identities=", discovered.size(),
                   artifact_sha256.empty() ? "" : " sha256=", artifact_sha256));
  if (task->end) {
    FinishItem(item, record->request().current_state());
  } else {
    item->set_state(task->next);
    item->set_phase(internal::ITEM_WAITING);
    item->clear_retry_counts();
  }
  Advance(record);
}

void Interpreter::FailItemTask(RequestRecord* record, int index,
                               const std::string& error,
                               const std::string& cause) {
  const State* task = ItemTaskState(*record, index);
  MapItem* item =
      record->mutable_maps(record->maps_size() - 1)->mutable_items(index);
  const std::string& map_state = record->request().current_state();
  Emit(kEventTaskFailed, task->name, item->store(), item->attempt(),
       absl::StrCat(error, ": ", cause));
  int retrier = FindRetrier(*task, error);
  if (retrier >= 0) {
    while (item->retry_counts_size() <= retrier) item->add_retry_counts(0);
    uint32_t done = item->retry_counts(retrier);
    const Retrier& policy = task->retry[retrier];
    if (static_cast<int>(done) < policy.max_attempts) {
      item->set_retry_counts(retrier, done + 1);
      if (RestartGroup(record, *item)) {
        item->set_phase(internal::ITEM_WAITING);
        Emit(kEventRetryScheduled, task->name, item->store(), item->attempt(),
             absl::StrCat("retry ", done + 1, " of ", policy.max_attempts,
                          " once its group has run again"));
        Advance(record);
        return;
      }
      absl::Duration delay = RetryDelay(policy, done, unit_random_());
      item->set_phase(internal::ITEM_RETRY_WAIT);
      item->set_not_before_ms(now_ms_ + absl::ToInt64Milliseconds(delay));
      Emit(kEventRetryScheduled, task->name, item->store(), item->attempt(),
           absl::StrCat("retry ", done + 1, " of ", policy.max_attempts, " in ",
                        absl::ToInt64Milliseconds(delay), " ms"));
      return;
    }
  }
  item->set_error(error);
  item->set_cause(cause);
  int catcher = FindCatcher(*task, error);
  if (catcher >= 0) {
    Emit(kEventErrorCaught, task->name, item->store(), item->attempt(),
         absl::StrCat(error, " -> ", task->catchers[catcher].next));
    item->set_state(task->catchers[catcher].next);
    item->set_phase(internal::ITEM_WAITING);
    item->clear_retry_counts();
  } else {
    FinishItem(item, map_state);
  }
  Advance(record);
}

bool Interpreter::RestartGroup(RequestRecord* record, const MapItem& failed) {
  const State* map = CurrentState(*record);
  const StoreSpec* spec = inventory_.Find(failed.store());
  if (map == nullptr || map->type != StateType::kMap ||
      map->item_order != kItemOrderEraseAfter || spec == nullptr ||
      spec->group.empty()) {
    return false;
  }
  MapRun* run = record->mutable_maps(record->maps_size() - 1);
  std::vector<std::string> restarted;
  for (const StoreSpec& member : inventory_.stores()) {
    if (member.name == failed.store()) break;  // Earlier members only.
    if (member.group != spec->group) continue;
    for (MapItem& item : *run->mutable_items()) {
      if (item.store() != member.name ||
          item.phase() != internal::ITEM_SUCCEEDED) {
        continue;
      }
      MapItem fresh;
      fresh.set_store(item.store());
      fresh.set_state(map->iterator->start_at);
      fresh.set_phase(internal::ITEM_WAITING);
      fresh.set_attempt(item.attempt());  // Fencing tokens keep growing.
      item = std::move(fresh);
      restarted.push_back(member.name);
    }
  }
  if (restarted.empty()) return false;
  Emit(kEventGroupRestarted, map->name, failed.store(), failed.attempt(),
       absl::StrCat("group=", spec->group,
                    " stores=", absl::StrJoin(restarted, ",")));
  return true;
}

void Interpreter::RetryDue(RequestRecord* record, int index) {
  MapItem* item =
      record->mutable_maps(record->maps_size() - 1)->mutable_items(index);
  item->set_phase(internal::ITEM_READY);
  item->set_ready_since_ms(now_ms_);
  item->set_not_before_ms(0);
}

void Interpreter::CompleteBuiltin(RequestRecord* record,
                                  const std::string& detail) {
  const State* task = CurrentState(*record);
  Emit(kEventTaskCompleted, task->name, "", record->builtin_attempt(), detail);
  MoveTo(record, *task);
  Advance(record);
}

void Interpreter::FailBuiltin(RequestRecord* record, const std::string& error,
                              const std::string& cause) {
  const State* task = CurrentState(*record);
  Emit(kEventTaskFailed, task->name, "", record->builtin_attempt(),
       absl::StrCat(error, ": ", cause));
  record->set_builtin_error(absl::StrCat(error, ": ", cause));
  int retrier = FindRetrier(*task, error);
  if (retrier >= 0) {
    while (record->builtin_retry_counts_size() <= retrier) {
      record->add_builtin_retry_counts(0);
    }
    uint32_t done = record->builtin_retry_counts(retrier);
    const Retrier& policy = task->retry[retrier];
    if (static_cast<int>(done) < policy.max_attempts) {
      absl::Duration delay = RetryDelay(policy, done, unit_random_());
      record->set_builtin_retry_counts(retrier, done + 1);
      record->set_timer_due_ms(now_ms_ + absl::ToInt64Milliseconds(delay));
      Emit(kEventRetryScheduled, task->name, "", record->builtin_attempt(),
           absl::StrCat("retry ", done + 1, " of ", policy.max_attempts, " in ",
                        absl::ToInt64Milliseconds(delay), " ms"));
      return;
    }
  }
  int catcher = FindCatcher(*task, error);
  if (catcher >= 0) {
    State hop = *task;
    hop.end = false;
    hop.next = task->catchers[catcher].next;
    MoveTo(record, hop);
    Advance(record);
    return;
  }
  Finish(record, v1::FAILED, error, cause);
}

absl::Status Interpreter::Retry(RequestRecord* record,
                                const std::vector<std::string>& stores,
                                const std::string& reason) {
  v1::Request* request = record->mutable_request();
  if (request->status() != v1::NEEDS_ATTENTION &&
      request->status() != v1::FAILED) {
    return absl::FailedPreconditionError(absl::StrCat(
        "request ", request->id(), " is ",
        v1::RequestStatus_Name(request->status()),
        "; only requests that need attention or failed can be retried"));
  }
  // Blocked stores always run again: they never ran, and if what blocked
  // them is not retried they are blocked again at once.
  auto wanted = [&](const MapItem& item) {
    if (item.phase() == internal::ITEM_BLOCKED) return true;
    return item.phase() == internal::ITEM_FAILED &&
           (stores.empty() || std::find(stores.begin(), stores.end(),
                                        item.store()) != stores.end());
  };
  // A run is retried when it has a failed store in scope, or, with no store
  // named, a blocked one.
  auto starts_retry = [&](const MapItem& item) {
    if (item.phase() == internal::ITEM_BLOCKED) return stores.empty();
    return wanted(item);
  };
  for (int m = record->maps_size() - 1; m >= 0; --m) {
    const MapRun& failed_run = record->maps(m);
    const State* map = definition_.root().Find(failed_run.state());
    // A later run of the same Map (an earlier retry) supersedes this one:
    // its failures were retried already, and the later run says how that
    // went.
    bool superseded = std::any_of(
        record->maps().begin() + m + 1, record->maps().end(),
        [&](const MapRun& run) { return run.state() == failed_run.state(); });
    if (superseded || map == nullptr || map->type != StateType::kMap ||
        std::none_of(failed_run.items().begin(), failed_run.items().end(),
                     starts_retry)) {
      continue;
    }
    // A new run of that Map: failed items start over, the others keep
    // their results (and are not run again).
    MapRun rerun = failed_run;
    std::vector<std::string> retried;
    for (MapItem& item : *rerun.mutable_items()) {
      if (!wanted(item)) continue;
      retried.push_back(item.store());
      MapItem fresh;
      fresh.set_store(item.store());
      fresh.set_state(map->iterator->start_at);
      fresh.set_phase(internal::ITEM_WAITING);
      fresh.set_attempt(item.attempt());  // Fencing tokens keep growing.
      item = std::move(fresh);
    }
    *record->add_maps() = std::move(rerun);
    request->set_current_state(map->name);
    request->set_status(v1::RUNNING);
    request->clear_error();
    request->clear_cause();
    request->clear_completed_at();
    record->set_timer_due_ms(0);
    Emit(kEventRetried, map->name, "", 0,
         absl::StrCat("stores=", absl::StrJoin(retried, ",")));
    events_->back().note = reason;
    Advance(record);
    return absl::OkStatus();
  }
  const State* state = definition_.root().Find(request->current_state());
  if (stores.empty() && request->status() == v1::FAILED && state != nullptr &&
      state->type == StateType::kTask) {
    request->set_status(v1::RUNNING);
    request->clear_error();
    request->clear_cause();
    request->clear_completed_at();
    record->set_timer_due_ms(0);
    record->clear_builtin_retry_counts();
    Emit(kEventRetried, state->name, "", 0, "");
    events_->back().note = reason;
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(
      absl::StrCat("request ", request->id(), " has no failed part",
                   stores.empty() ? "" : " in the named stores", " to retry"));
}

void Interpreter::LinkTo(RequestRecord* record,
                         const std::string& original_id) {
  record->set_waits_for_linked(true);
  record->mutable_request()->set_linked_to(original_id);
  record->mutable_request()->set_status(v1::RUNNING);
  Emit(kEventLinkedAsDuplicate, "", "", 0,
       absl::StrCat("duplicate_of=", original_id));
}

void Interpreter::LinkedEnded(RequestRecord* record,
                              const v1::Request& original) {
  record->set_waits_for_linked(false);
  if (original.status() == v1::COMPLETED) {
    *record->mutable_request()->mutable_bundle() = original.bundle();
    Finish(record, v1::COMPLETED, "", "");
    record->mutable_request()->set_cause(
        absl::StrCat("answered by ", original.id()));
    return;
  }
  record->mutable_request()->clear_linked_to();
  Emit(kEventUnlinked, "", "", 0,
       absl::StrCat("linked request ", original.id(), " ended ",
                    v1::RequestStatus_Name(original.status()),
                    "; this request runs on its own"));
  Advance(record);
}

void Interpreter::Fail(RequestRecord* record, const std::string& error,
                       const std::string& cause) {
  Finish(record, v1::FAILED, error, cause);
}

void Interpreter::Pause(RequestRecord* record) {
  record->set_status_before_pause(record->request().status());
  record->mutable_request()->set_status(v1::PAUSED);
}

void Interpreter::Resume(RequestRecord* record) {
  record->mutable_request()->set_status(record->status_before_pause());
  Advance(record);
}

std::vector<std::string> Interpreter::FailStoresNotInInventory(
    RequestRecord* record) {
  std::vector<std::string> failed;
  const State* map = CurrentState(*record);
  if (map == nullptr || map->type != StateType::kMap || record->maps().empty())
    return failed;
  MapRun* run = record->mutable_maps(record->maps_size() - 1);
  for (MapItem& item : *run->mutable_items()) {
    if (ItemSettled(item) || inventory_.Find(item.store()) != nullptr) continue;
    item.set_error(kErrorStoreNotInInventory);
    item.set_cause(absl::StrCat("store ", item.store(),
                                " is no longer in the data inventory"));
    FinishItem(&item, map->name);
    failed.push_back(item.store());
  }
  if (!failed.empty()) Advance(record);
  return failed;
}

void Interpreter::Cancel(RequestRecord* record, const std::string& reason) {
  if (!record->maps().empty()) {
    MapRun* run = record->mutable_maps(record->maps_size() - 1);
    for (MapItem& item : *run->mutable_items()) {
      if (!ItemFinished(item)) item.set_phase(internal::ITEM_SKIPPED);
    }
  }
  Finish(record, v1::CANCELLED, "Request.Cancelled", reason);
}

}  // namespace dsar
