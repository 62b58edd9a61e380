// Health and metrics of the coordinator (docs/operations.md, "Metrics and
// health"). Part of Coordinator; see engine/coordinator.h.

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/coordinator.h"
#include "engine/notifier.h"

namespace dsar {
namespace {

// How long a scrape waits for the loop's snapshot before it takes the
// last one.
constexpr absl::Duration kSnapshotWait = absl::Seconds(1);

// "ITEM_RETRY_WAIT" -> "retry_wait".
std::string PhaseLabel(internal::ItemPhase phase) {
  std::string name = internal::ItemPhase_Name(phase);
  if (absl::StartsWith(name, "ITEM_")) name = name.substr(5);
  return absl::AsciiStrToLower(name);
}

}  // namespace

class Coordinator::SnapshotGauges : public prometheus::Collectable {
 public:
  explicit SnapshotGauges(Coordinator* coordinator)
      : coordinator_(coordinator) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::shared_ptr<const EngineSnapshot> snapshot =
        coordinator_->FreshSnapshot(kSnapshotWait);
    const int64_t backlog = coordinator_->notifier_ != nullptr
                                ? coordinator_->notifier_->Backlog()
                                : 0;
    return SnapshotFamilies(*snapshot,
                            coordinator_->options_.clock->NowMillis(), backlog);
  }

 private:
  Coordinator* coordinator_;
};

std::vector<std::shared_ptr<prometheus::Collectable>>
Coordinator::MetricsCollectables() {
  return {metrics_.registry(), std::make_shared<SnapshotGauges>(this)};
}

absl::Status Coordinator::Liveness() const {
  return CommitLoopLiveness(loop_running_.load(), loop_busy_since_ms_.load(),
                            SteadyNowMillis(), options_.loop_stall_limit);
}

absl::Status Coordinator::Readiness() {
  RETURN_IF_ERROR(Liveness());
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return absl::UnavailableError("dsard is stopping");
  }
  return CheckRoomForNewWork("not ready for new requests");
}

std::shared_ptr<const EngineSnapshot> Coordinator::FreshSnapshot(
    absl::Duration wait) {
  uint64_t seen = 0;
  {
    std::lock_guard<std::mutex> lock(snapshot_mu_);
    seen = snapshot_generation_;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) snapshot_wanted_ = true;
  }
  wake_.notify_one();
  std::unique_lock<std::mutex> lock(snapshot_mu_);
  snapshot_cv_.wait_for(lock, absl::ToChronoMilliseconds(wait),
                        [&] { return snapshot_generation_ > seen; });
  return snapshot_;
}

void Coordinator::PublishSnapshot() {
  auto snapshot = std::make_shared<EngineSnapshot>();
  const int64_t now_ms = options_.clock->NowMillis();
  snapshot->built_unix_ms = now_ms;
  for (const StoreSpec& store : options_.inventory->stores()) {
    snapshot->ready_tasks[store.name] = 0;
    snapshot->leases_held[store.name] = 0;
  }
  for (const auto& [id, live] : live_) {
    const v1::Request& request = live.record.request();
    ++snapshot->requests[{v1::RequestStatus_Name(request.status()),
                          v1::RequestType_Name(request.type())}];
    const int64_t created = TimestampMillis(request.created_at());
    const int64_t deadline = TimestampMillis(request.deadline());
    if (snapshot->oldest_created_unix_ms == 0 ||
        created < snapshot->oldest_created_unix_ms) {
      snapshot->oldest_created_unix_ms = created;
      snapshot->oldest_deadline_unix_ms = deadline;
    }
    if (deadline != 0 && (snapshot->nearest_deadline_unix_ms == 0 ||
                          deadline < snapshot->nearest_deadline_unix_ms)) {
      snapshot->nearest_deadline_unix_ms = deadline;
    }
    if (live.record.maps().empty()) continue;
    for (const internal::MapItem& item : live.record.maps().rbegin()->items()) {
      ++snapshot->steps[PhaseLabel(item.phase())];
      if (item.phase() == internal::ITEM_READY) {
        ++snapshot->ready_tasks[item.store()];
      } else if (item.phase() == internal::ITEM_LEASED) {
        ++snapshot->leases_held[item.store()];
      }
    }
  }
  const int64_t silence_ms =
      absl::ToInt64Milliseconds(options_.worker_silence_after);
  for (const auto& [worker, seen] : workers_) {
    if (now_ms - seen.last_seen_ms <= silence_ms) ++snapshot->live_workers;
  }
  snapshot->audit_log_size = audit_->AppendedSize();
  snapshot->last_checkpoint_unix_ms = last_checkpoint_ms_;
  {
    std::lock_guard<std::mutex> lock(snapshot_mu_);
    snapshot_ = std::move(snapshot);
    ++snapshot_generation_;
  }
  snapshot_cv_.notify_all();
}

}  // namespace dsar
