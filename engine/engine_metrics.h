#ifndef DSAR_ENGINE_ENGINE_METRICS_H_
#define DSAR_ENGINE_ENGINE_METRICS_H_

// dsard's metrics (docs/operations.md, "Metrics and health"). Two kinds:
// - counters and histograms the commit loop updates as things happen
//   (EngineMetrics), kept in a prometheus::Registry;
// - gauges over the live state, rendered at scrape time from an
//   EngineSnapshot the loop publishes when a scrape asks for one, so a
//   scrape costs the loop one pass over the live requests and nothing when
//   it is stuck (the last snapshot is served, with its age).
// Labels carry statuses, types, store names and method names only: never a
// request id, an identity or free text.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/metric_family.h"
#include "prometheus/registry.h"

namespace dsar {

// Counts over the live (unfinished) requests at one moment.
struct EngineSnapshot {
  int64_t built_unix_ms = 0;  // Wall clock when the loop built it.
  // Live requests by (status, type) names.
  std::map<std::pair<std::string, std::string>, int64_t> requests;
  // Steps of the live requests' current Map runs by state ("ready", ...).
  std::map<std::string, int64_t> steps;
  // Tasks waiting for a worker, and leases held, by store (every store of
  // the inventory appears, with 0 when it has none).
  std::map<std::string, int64_t> ready_tasks;
  std::map<std::string, int64_t> leases_held;
  int64_t live_workers = 0;  // Heard from within worker_silence_after.
  uint64_t audit_log_size = 0;
  // When the last checkpoint was signed (by this process; its start when
  // it signed none yet).
  int64_t last_checkpoint_unix_ms = 0;
  // The oldest live request's creation and deadline, and the nearest
  // deadline of any live request (engine clock); 0 when none is live.
  int64_t oldest_created_unix_ms = 0;
  int64_t oldest_deadline_unix_ms = 0;
  int64_t nearest_deadline_unix_ms = 0;
};

// The gauge families of `snapshot` as seen at `now_unix_ms` (ages and
// times to deadlines move on even while the snapshot is old) with the
// outbox backlog measured now.
std::vector<prometheus::MetricFamily> SnapshotFamilies(
    const EngineSnapshot& snapshot, int64_t now_unix_ms,
    int64_t outbox_backlog);

// Milliseconds on a monotonic clock (for how long the loop has been busy).
int64_t SteadyNowMillis();

// The liveness verdict on the commit loop: UNAVAILABLE when it is not
// running, or when its current turn began at `busy_since_ms` (steady clock;
// 0: it waits for work) more than `limit` before `now_ms`.
absl::Status CommitLoopLiveness(bool running, int64_t busy_since_ms,
                                int64_t now_ms, absl::Duration limit);

// The counters and histograms; thread-safe.
class EngineMetrics {
 public:
  EngineMetrics();
  EngineMetrics(const EngineMetrics&) = delete;
  EngineMetrics& operator=(const EngineMetrics&) = delete;

  // Where they live; dsard adds the gRPC latency histogram to it.
  const std::shared_ptr<prometheus::Registry>& registry() const {
    return registry_;
  }

  void RequestCreated(const std::string& type);
  void RequestFinished(const std::string& type, const std::string& outcome);
  void LeaseExpired() { leases_expired_.Increment(); }
  void EventsAppended(size_t count) {
    events_appended_.Increment(static_cast<double>(count));
  }
  // One turn of the loop that ran `commands` commands.
  void GroupRun(size_t commands);
  // A synced write of a group's batch that took `seconds` (audit seal,
  // RocksDB write and WAL fsync).
  void GroupWritten(double seconds);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& created_;
  prometheus::Family<prometheus::Counter>& finished_;
  prometheus::Counter& leases_expired_;
  prometheus::Counter& events_appended_;
  prometheus::Counter& groups_;
  prometheus::Counter& fsyncs_;
  prometheus::Histogram& group_size_;
  prometheus::Histogram& commit_latency_;
};

}  // namespace dsar

#endif  // DSAR_ENGINE_ENGINE_METRICS_H_
