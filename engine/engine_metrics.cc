#include "engine/engine_metrics.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/admin_server.h"
#include "prometheus/client_metric.h"

namespace dsar {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily GaugeFamily(std::string name, std::string help) {
  MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = MetricType::Gauge;
  return family;
}

void AddGauge(MetricFamily& family, std::vector<ClientMetric::Label> labels,
              double value) {
  ClientMetric metric;
  metric.label = std::move(labels);
  metric.gauge.value = value;
  family.metric.push_back(std::move(metric));
}

MetricFamily ByLabel(std::string name, std::string help,
                     const std::string& label,
                     const std::map<std::string, int64_t>& counts) {
  MetricFamily family = GaugeFamily(std::move(name), std::move(help));
  for (const auto& [value, count] : counts) {
    AddGauge(family, {{label, value}}, static_cast<double>(count));
  }
  return family;
}

MetricFamily Single(std::string name, std::string help, double value) {
  MetricFamily family = GaugeFamily(std::move(name), std::move(help));
  AddGauge(family, {}, value);
  return family;
}

double Seconds(int64_t millis) { return static_cast<double>(millis) / 1000; }

}  // namespace

std::vector<MetricFamily> SnapshotFamilies(const EngineSnapshot& snapshot,
                                           int64_t now_unix_ms,
                                           int64_t outbox_backlog) {
  std::vector<MetricFamily> families;
  MetricFamily requests =
      GaugeFamily("dsar_requests", "Unfinished requests by status and type.");
  for (const auto& [key, count] : snapshot.requests) {
    AddGauge(requests, {{"status", key.first}, {"type", key.second}},
             static_cast<double>(count));
  }
  families.push_back(std::move(requests));
  families.push_back(
      ByLabel("dsar_steps",
              "Store steps of unfinished requests' current Map runs "
              "by state.",
              "state", snapshot.steps));
  families.push_back(ByLabel("dsar_ready_tasks",
                             "Tasks waiting for a worker, by store.", "store",
                             snapshot.ready_tasks));
  families.push_back(ByLabel("dsar_leases_held",
                             "Task leases held by workers, by store.", "store",
                             snapshot.leases_held));
  families.push_back(Single("dsar_workers_live",
                            "Workers heard from within "
                            "--worker_silence_after.",
                            static_cast<double>(snapshot.live_workers)));
  families.push_back(Single("dsar_audit_log_size",
                            "Entries (leaves) in the audit log.",
                            static_cast<double>(snapshot.audit_log_size)));
  families.push_back(Single(
      "dsar_audit_checkpoint_age_seconds",
      "Seconds since the audit log's last checkpoint was signed (or since "
      "dsard started, when it signed none since).",
      Seconds(now_unix_ms - snapshot.last_checkpoint_unix_ms)));
  families.push_back(Single("dsar_outbox_backlog",
                            "Notifications not yet accepted by every sink.",
                            static_cast<double>(outbox_backlog)));
  if (snapshot.oldest_created_unix_ms != 0) {
    families.push_back(
        Single("dsar_oldest_request_age_seconds",
               "Age of the oldest unfinished request (absent when none).",
               Seconds(now_unix_ms - snapshot.oldest_created_unix_ms)));
    families.push_back(Single(
        "dsar_oldest_request_deadline_seconds",
        "Seconds until the oldest unfinished request's deadline; negative "
        "when overdue (absent when none).",
        Seconds(snapshot.oldest_deadline_unix_ms - now_unix_ms)));
    families.push_back(
        Single("dsar_nearest_deadline_seconds",
               "Seconds until the nearest deadline of any unfinished request; "
               "negative when one is overdue (absent when none).",
               Seconds(snapshot.nearest_deadline_unix_ms - now_unix_ms)));
  }
  families.push_back(
      Single("dsar_metrics_snapshot_age_seconds",
             "Age of the commit loop's snapshot these gauges come from "
             "(grows while the loop is stuck).",
             Seconds(now_unix_ms - snapshot.built_unix_ms)));
  return families;
}

int64_t SteadyNowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

absl::Status CommitLoopLiveness(bool running, int64_t busy_since_ms,
                                int64_t now_ms, absl::Duration limit) {
  if (!running) return absl::UnavailableError("commit loop is not running");
  if (busy_since_ms == 0) return absl::OkStatus();
  const int64_t busy_ms = now_ms - busy_since_ms;
  if (busy_ms <= absl::ToInt64Milliseconds(limit)) return absl::OkStatus();
  return absl::UnavailableError(
      absl::StrCat("commit loop stuck: one turn has run for ", busy_ms / 1000,
                   " s (limit ", absl::FormatDuration(limit), ")"));
}

namespace {

std::vector<double> GroupSizeBuckets() {
  return {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096};
}

}  // namespace

EngineMetrics::EngineMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      created_(prometheus::BuildCounter()
                   .Name("dsar_requests_created_total")
                   .Help("Requests created, by type.")
                   .Register(*registry_)),
      finished_(prometheus::BuildCounter()
                    .Name("dsar_requests_finished_total")
                    .Help("Requests that reached a final status, by type and "
                          "outcome (the status).")
                    .Register(*registry_)),
      leases_expired_(prometheus::BuildCounter()
                          .Name("dsar_leases_expired_total")
                          .Help("Task leases that expired without a "
                                "heartbeat (the task runs again).")
                          .Register(*registry_)
                          .Add({})),
      events_appended_(prometheus::BuildCounter()
                           .Name("dsar_audit_events_appended_total")
                           .Help("Events appended to the audit log.")
                           .Register(*registry_)
                           .Add({})),
      groups_(prometheus::BuildCounter()
                  .Name("dsar_commit_groups_total")
                  .Help("Turns of the commit loop (groups of commands).")
                  .Register(*registry_)
                  .Add({})),
      fsyncs_(prometheus::BuildCounter()
                  .Name("dsar_fsyncs_total")
                  .Help("Synced writes (WAL fsyncs) of commit groups.")
                  .Register(*registry_)
                  .Add({})),
      group_size_(prometheus::BuildHistogram()
                      .Name("dsar_commit_group_size")
                      .Help("Commands per turn of the commit loop.")
                      .Register(*registry_)
                      .Add({}, GroupSizeBuckets())),
      commit_latency_(prometheus::BuildHistogram()
                          .Name("dsar_commit_latency_seconds")
                          .Help("Time to make a group durable: audit "
                                "checkpoint, RocksDB write, WAL fsync.")
                          .Register(*registry_)
                          .Add({}, LatencyBuckets())) {}

void EngineMetrics::RequestCreated(const std::string& type) {
  created_.Add({{"type", type}}).Increment();
}

void EngineMetrics::RequestFinished(const std::string& type,
                                    const std::string& outcome) {
  finished_.Add({{"type", type}, {"outcome", outcome}}).Increment();
}

void EngineMetrics::GroupRun(size_t commands) {
  groups_.Increment();
  group_size_.Observe(static_cast<double>(commands));
}

void EngineMetrics::GroupWritten(double seconds) {
  fsyncs_.Increment();
  commit_latency_.Observe(seconds);
}

}  // namespace dsar
