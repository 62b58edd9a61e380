#ifndef DSAR_ENGINE_INTERPRETER_H_
#define DSAR_ENGINE_INTERPRETER_H_

// Steps one request through its workflow definition. Pure: it changes the
// record in memory and describes what happened as event drafts; it does no
// I/O and keeps no state, so the commit loop decides what becomes durable.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "dsar/internal/records.pb.h"
#include "engine/workflow_definition.h"
#include "inventory/inventory.h"
#include "model/connector_errors.h"  // kErrorIdentityConflict.

namespace dsar {

struct EventDraft {
  std::string kind;
  std::string state;
  std::string store;
  uint32_t attempt = 0;
  std::string worker_id;
  std::string detail;
  std::vector<std::string> subject_hmacs;  // Keyed hashes, never identities.
  std::string actor;  // Who caused it, when an operator or service did.
  // Free text typed by a person (a reason): kept beside the request, never
  // in the audit leaf, which gets a keyed commitment to it.
  std::string note;
};

// Error names the engine itself raises (ASL's predefined ones).
inline constexpr char kErrorHeartbeatTimeout[] = "States.HeartbeatTimeout";
inline constexpr char kErrorNoChoiceMatched[] = "States.NoChoiceMatched";
inline constexpr char kErrorRuntime[] = "States.Runtime";
// The owner of a manual store could not do its work item
// (docs/manual-stores.md); the cause is their reason.
inline constexpr char kErrorOperatorFailed[] = "Operator.Failed";
// A store could not run because one it waits for failed or is blocked.
inline constexpr char kErrorStoreBlocked[] = "Store.Blocked";
// The request stopped with failed or blocked stores (NEEDS_ATTENTION).
inline constexpr char kErrorNeedsAttention[] = "Request.NeedsAttention";
// A store of the request is no longer in the data inventory.
inline constexpr char kErrorStoreNotInInventory[] = "Store.NotInInventory";

class Interpreter {
 public:
  // `unit_random` returns values in [0, 1) for retry jitter. `events`
  // receives a draft per observable step; all pointers must outlive this.
  Interpreter(const WorkflowDefinition& definition, const Inventory& inventory,
              int64_t now_ms, std::function<double()> unit_random,
              std::vector<EventDraft>* events);

  // Runs the workflow forward until it has to wait: a task queued or leased,
  // a timer, a builtin task to run, or the end. Idempotent when nothing can
  // move. Sets the request status (RUNNING, COMPLETED, FAILED, or
  // NEEDS_ATTENTION when a Map state ends with a failed or blocked store:
  // the request then stays at that Map state until Retry or Cancel).
  // Afterwards a RUNNING request always has a way forward: a task queued,
  // leased or backing off, a builtin task, a timer or a signal it waits
  // for; stores that could only wait for each other are blocked instead.
  void Advance(internal::RequestRecord* record);

  // The current Map's item `item` finished its task; results are stored on
  // the item (`erasures`: an erase task's counts per collection) and
  // discovered identities join the request's.
  // REQUIRES: the item is ITEM_LEASED.
  void CompleteItemTask(
      internal::RequestRecord* record, int item, int64_t record_count,
      const google::protobuf::RepeatedPtrField<v1::SubjectIdentity>& discovered,
      const std::string& artifact_sha256, const std::string& artifact_path,
      int64_t artifact_size,
      const google::protobuf::RepeatedPtrField<v1::CollectionErasure>&
          erasures = {});

  // The item's task failed with `error`: Retry (back-off to RETRY_WAIT),
  // else Catch (continue at the catcher's Next with the error recorded),
  // else the item fails. REQUIRES: the item is ITEM_LEASED.
  // Executor groups (seed 001, docs/opendsr.md): in an EraseAfter Map, a
  // retry of a store whose inventory `group` has earlier members that
  // succeeded restarts the group: those members run again from their first
  // state (in group order, which erase_after holds), and the item waits for
  // them (WAITING, no back-off) before its retry. The retry still counts
  // against the Retry's MaxAttempts.
  void FailItemTask(internal::RequestRecord* record, int item,
                    const std::string& error, const std::string& cause);

  // A RETRY_WAIT item whose back-off has passed becomes READY.
  void RetryDue(internal::RequestRecord* record, int item);

  // The builtin task of the current top-level state finished or failed.
  // `detail` goes into the completion event (e.g. the bundle's SHA-256).
  void CompleteBuiltin(internal::RequestRecord* record,
                       const std::string& detail);
  void FailBuiltin(internal::RequestRecord* record, const std::string& error,
                   const std::string& cause);

  // Fails, for good, every unfinished item of the current Map run whose
  // store is no longer in the inventory (queued, leased or backing off),
  // then advances. Returns the stores failed. An operator can retry once
  // the store is back in the inventory.
  std::vector<std::string> FailStoresNotInInventory(
      internal::RequestRecord* record);

  // Ends the request as CANCELLED; unfinished items become SKIPPED.
  void Cancel(internal::RequestRecord* record, const std::string& reason);

  // The request waits for the outcome of the open request `original_id`
  // it repeats (see v1::Request.linked_to); Advance leaves it alone.
  void LinkTo(internal::RequestRecord* record, const std::string& original_id);
  // The request it waits for ended as `original`: COMPLETED completes this
  // one too (sharing its bundle); FAILED or CANCELLED unlink it and start its
  // own workflow. REQUIRES: waits_for_linked, `original` terminal.
  void LinkedEnded(internal::RequestRecord* record,
                   const v1::Request& original);

  // Ends an unfinished request as FAILED with `error` and `cause` (e.g. the
  // subject ran out of verification attempts).
  void Fail(internal::RequestRecord* record, const std::string& error,
            const std::string& cause);

  // Puts an unfinished request on hold (PAUSED, remembering its status) and
  // lifts the hold again; Resume then advances it. REQUIRES for Pause: not
  // terminal and not PAUSED; for Resume: PAUSED.
  void Pause(internal::RequestRecord* record);
  void Resume(internal::RequestRecord* record);

  // Resumes a NEEDS_ATTENTION or FAILED request: the latest Map run with a
  // failed item of `stores` (all stores when empty) is repeated with those
  // items and every blocked item reset and the others kept, and the
  // workflow continues from there; otherwise a FAILED request whose current
  // state is a builtin task runs it again. FAILED_PRECONDITION for any
  // other status or when there is nothing to retry; the record is
  // unchanged then.
  absl::Status Retry(internal::RequestRecord* record,
                     const std::vector<std::string>& stores,
                     const std::string& reason);

  // Events drafted from now on name `actor` as their cause.
  void set_actor(std::string actor) { actor_ = std::move(actor); }

  // The Task state an item is in, or nullptr when its state is no Task.
  const State* ItemTaskState(const internal::RequestRecord& record,
                             int item) const;
  // The current top-level state, or nullptr when terminal.
  const State* CurrentState(const internal::RequestRecord& record) const;

 private:
  void Emit(std::string kind, const std::string& state,
            const std::string& store, uint32_t attempt, std::string detail);
  // Advances the current Map run; true when every item has finished.
  bool AdvanceMap(internal::RequestRecord* record, const State& map);
  void AdvanceItem(internal::RequestRecord* record, const State& map,
                   internal::MapItem* item);
  void FinishItem(internal::MapItem* item, const std::string& map_state);
  // Resets the succeeded members of `failed`'s group that come before it
  // in the inventory to run again; false when there are none (or the Map
  // does not follow erase_after).
  bool RestartGroup(internal::RequestRecord* record,
                    const internal::MapItem& failed);
  // The stores `item` waits for in this Map: identities_from, or for an
  // EraseAfter Map erase_after plus the stores it supplies identities to.
  std::vector<std::string> Upstream(const internal::MapRun& run,
                                    const State& map,
                                    const internal::MapItem& item) const;
  struct Dependencies {
    bool done = true;     // Every upstream store finished.
    std::string blocker;  // An upstream store that failed or is blocked.
    bool blocker_blocked = false;
  };
  Dependencies CheckDependencies(const internal::MapRun& run, const State& map,
                                 const internal::MapItem& item) const;
  void Block(internal::MapItem* item, const std::string& map_state,
             const std::string& cause);
  // Stops the request in NEEDS_ATTENTION when the finished Map run has a
  // failed or blocked store; false when every store succeeded.
  bool StopForProblems(internal::RequestRecord* record, const State& map);
  void MoveTo(internal::RequestRecord* record, const State& from);
  void Finish(internal::RequestRecord* record, v1::RequestStatus status,
              const std::string& error, const std::string& cause);
  nlohmann::json ChoiceInput(const internal::RequestRecord& record,
                             const internal::MapItem* item) const;

  const WorkflowDefinition& definition_;
  const Inventory& inventory_;
  int64_t now_ms_;
  std::function<double()> unit_random_;
  std::vector<EventDraft>* events_;
  std::string actor_;
};

// Millisecond timestamp helpers shared by the engine.
void SetTimestampMillis(int64_t millis, google::protobuf::Timestamp* out);
// The inverse: `time` in milliseconds since the epoch (nanos truncated).
int64_t TimestampMillis(const google::protobuf::Timestamp& time);
// `millis` as RFC 3339 in UTC to the second ("2026-11-29T21:00:00Z"), as
// event details and notifications write times.
std::string Rfc3339Millis(int64_t millis);

}  // namespace dsar

#endif  // DSAR_ENGINE_INTERPRETER_H_
