#include "engine/engine_metrics.h"

#include "common/admin_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"

namespace dsar {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string Render(const EngineSnapshot& snapshot, int64_t now_ms,
                   int64_t backlog) {
  return prometheus::TextSerializer().Serialize(
      SnapshotFamilies(snapshot, now_ms, backlog));
}

TEST(SnapshotFamiliesTest, GaugesOverTheLiveState) {
  EngineSnapshot snapshot;
  snapshot.built_unix_ms = 1'000'000;
  snapshot.requests[{"IN_PROGRESS", "ACCESS"}] = 2;
  snapshot.requests[{"VERIFYING", "ERASURE"}] = 1;
  snapshot.steps["ready"] = 3;
  snapshot.ready_tasks = {{"crm", 3}, {"billing", 0}};
  snapshot.leases_held = {{"crm", 1}, {"billing", 0}};
  snapshot.live_workers = 2;
  snapshot.audit_log_size = 42;
  snapshot.last_checkpoint_unix_ms = 990'000;
  snapshot.oldest_created_unix_ms = 400'000;
  snapshot.oldest_deadline_unix_ms = 1'500'000;
  snapshot.nearest_deadline_unix_ms = 900'000;
  std::string text = Render(snapshot, 1'002'000, 5);
  EXPECT_THAT(text, HasSubstr("# TYPE dsar_requests gauge"));
  EXPECT_THAT(
      text,
      HasSubstr("dsar_requests{status=\"IN_PROGRESS\",type=\"ACCESS\"} 2"));
  EXPECT_THAT(text, HasSubstr("dsar_steps{state=\"ready\"} 3"));
  EXPECT_THAT(text, HasSubstr("dsar_ready_tasks{store=\"crm\"} 3"));
  EXPECT_THAT(text, HasSubstr("dsar_ready_tasks{store=\"billing\"} 0"));
  EXPECT_THAT(text, HasSubstr("dsar_leases_held{store=\"crm\"} 1"));
  EXPECT_THAT(text, HasSubstr("dsar_workers_live 2"));
  EXPECT_THAT(text, HasSubstr("dsar_audit_log_size 42"));
  EXPECT_THAT(text, HasSubstr("dsar_audit_checkpoint_age_seconds 12"));
  EXPECT_THAT(text, HasSubstr("dsar_outbox_backlog 5"));
  EXPECT_THAT(text, HasSubstr("dsar_oldest_request_age_seconds 602"));
  EXPECT_THAT(text, HasSubstr("dsar_oldest_request_deadline_seconds 498"));
  // Overdue: negative.
  EXPECT_THAT(text, HasSubstr("dsar_nearest_deadline_seconds -102"));
  EXPECT_THAT(text, HasSubstr("dsar_metrics_snapshot_age_seconds 2"));
}

TEST(SnapshotFamiliesTest, NoRequestAgeWithoutLiveRequests) {
  EngineSnapshot snapshot;
  snapshot.built_unix_ms = 1000;
  std::string text = Render(snapshot, 1000, 0);
  EXPECT_THAT(text, Not(HasSubstr("dsar_oldest_request_age_seconds")));
  EXPECT_THAT(text, Not(HasSubstr("dsar_nearest_deadline_seconds")));
  EXPECT_THAT(text, HasSubstr("dsar_outbox_backlog 0"));
}

TEST(EngineMetricsTest, CountersAndHistograms) {
  EngineMetrics metrics;
  metrics.RequestCreated("ACCESS");
  metrics.RequestFinished("ACCESS", "COMPLETED");
  metrics.LeaseExpired();
  metrics.EventsAppended(3);
  metrics.GroupRun(5);
  metrics.GroupWritten(0.002);
  std::string text = AdminServer::RenderMetrics({metrics.registry()});
  EXPECT_THAT(text,
              HasSubstr("dsar_requests_created_total{type=\"ACCESS\"} 1"));
  EXPECT_THAT(text, HasSubstr("dsar_requests_finished_total{outcome="
                              "\"COMPLETED\",type=\"ACCESS\"} 1"));
  EXPECT_THAT(text, HasSubstr("dsar_leases_expired_total 1"));
  EXPECT_THAT(text, HasSubstr("dsar_audit_events_appended_total 3"));
  EXPECT_THAT(text, HasSubstr("dsar_commit_groups_total 1"));
  EXPECT_THAT(text, HasSubstr("dsar_fsyncs_total 1"));
  EXPECT_THAT(text, HasSubstr("dsar_commit_group_size_bucket{le=\"8\"} 1"));
  EXPECT_THAT(text, HasSubstr("dsar_commit_group_size_bucket{le=\"4\"} 0"));
  EXPECT_THAT(text,
              HasSubstr("dsar_commit_latency_seconds_bucket{le=\"0.0025\"} 1"));
}

TEST(CommitLoopLivenessTest, StuckOnlyPastTheLimit) {
  const absl::Duration limit = absl::Seconds(60);
  EXPECT_TRUE(CommitLoopLiveness(true, 0, 500'000, limit).ok());  // Waiting.
  EXPECT_TRUE(CommitLoopLiveness(true, 500'000, 559'000, limit).ok());
  absl::Status stuck = CommitLoopLiveness(true, 500'000, 561'000, limit);
  EXPECT_EQ(stuck.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(stuck.message()), HasSubstr("stuck"));
  EXPECT_EQ(CommitLoopLiveness(false, 0, 1, limit).code(),
            absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace dsar
