// A worker dies holding a lease: the lease expires and another worker runs
// the task again under a higher attempt number, which is the only completion
// accepted.

#include <signal.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/dsar_cluster.h"
#include "tests/process_harness.h"

namespace dsar::testing {
namespace {

constexpr char kWorkerA[] = "worker-a";
constexpr char kWorkerB[] = "worker-b";

// Polls GetRequest until a step is LEASED by `worker_id`; returns that step.
absl::StatusOr<v1::StoreStep> WaitForStepLeasedBy(v1::DsarService::Stub& stub,
                                                  const std::string& id,
                                                  const std::string& worker_id,
                                                  absl::Duration timeout) {
  auto leased = [&](const v1::StoreStep& step) {
    return step.status() == v1::LEASED && step.worker_id() == worker_id;
  };
  absl::StatusOr<v1::Request> request = WaitForRequest(
      stub, id, absl::StrCat("leased by ", worker_id),
      [&](const v1::Request& r) {
        return std::any_of(r.steps().begin(), r.steps().end(), leased);
      },
      timeout);
  if (!request.ok()) return request.status();
  return *std::find_if(request->steps().begin(), request->steps().end(),
                       leased);
}

TEST(WorkerKillTest, ExpiredLeaseIsRetriedByAnotherWorker) {
  TempDir dir("dsar-worker-kill");
  absl::StatusOr<std::string> inventory = GenerateSampleStores(dir.path(), 50);
  ASSERT_TRUE(inventory.ok()) << inventory.status();

  DsardOptions dsard_options;
  dsard_options.data_dir = dir.Join("data");
  dsard_options.inventory = *inventory;
  dsard_options.lease_seconds = 2;
  absl::StatusOr<RunningDsard> dsard = StartDsard(dsard_options, dir.path());
  ASSERT_TRUE(dsard.ok()) << dsard.status();
  auto stub = v1::DsarService::NewStub(LoopbackChannel(dsard->port));

  WorkerOptions worker_a;
  worker_a.coordinator_port = dsard->port;
  worker_a.inventory = *inventory;
  worker_a.worker_id = kWorkerA;
  worker_a.debug_task_delay_ms = 60000;
  absl::StatusOr<std::unique_ptr<Process>> process_a =
      StartWorker(worker_a, dir.path());
  ASSERT_TRUE(process_a.ok()) << process_a.status();

  grpc::ClientContext create_context;
  create_context.set_deadline(
      absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  v1::Request created;
  grpc::Status created_status = stub->CreateRequest(
      &create_context,
      RequestForEmail(v1::ACCESS, "person7@example.com", "worker-kill-1"),
      &created);
  ASSERT_TRUE(created_status.ok()) << created_status.error_message();

  absl::StatusOr<v1::StoreStep> held =
      WaitForStepLeasedBy(*stub, created.id(), kWorkerA, absl::Seconds(30));
  ASSERT_TRUE(held.ok()) << held.status();
  EXPECT_EQ((*process_a)->Kill(), 128 + SIGKILL);

  WorkerOptions worker_b = worker_a;
  worker_b.worker_id = kWorkerB;
  worker_b.debug_task_delay_ms = 0;
  absl::StatusOr<std::unique_ptr<Process>> process_b =
      StartWorker(worker_b, dir.path());
  ASSERT_TRUE(process_b.ok()) << process_b.status();

  absl::StatusOr<v1::Request> done =
      WaitUntilTerminal(*stub, created.id(), absl::Seconds(60));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->status(), v1::COMPLETED) << done->ShortDebugString();

  absl::StatusOr<std::vector<v1::Event>> events =
      ListAllEvents(*stub, created.id());
  ASSERT_TRUE(events.ok()) << events.status();
  std::string history;
  for (const v1::Event& event : *events) {
    absl::StrAppend(&history, event.sequence(), " ", event.kind(), " ",
                    event.state(), " ", event.store(), " a", event.attempt(),
                    " ", event.worker_id(), "\n");
  }
  SCOPED_TRACE(history);

  // The events of the task worker A held, in order.
  std::vector<const v1::Event*> task;
  for (const v1::Event& event : *events) {
    if (event.store() == held->store() && event.state() == held->task_state())
      task.push_back(&event);
  }
  auto find = [&](size_t from, const std::string& kind,
                  uint32_t attempt) -> size_t {
    for (size_t i = from; i < task.size(); ++i) {
      if (task[i]->kind() == kind && task[i]->attempt() == attempt) return i;
    }
    return task.size();
  };
  size_t leased_a = find(0, "task_leased", 1);
  ASSERT_LT(leased_a, task.size());
  EXPECT_EQ(task[leased_a]->worker_id(), kWorkerA);
  size_t expired = find(leased_a, "lease_expired", 1);
  ASSERT_LT(expired, task.size());
  EXPECT_EQ(task[expired]->worker_id(), kWorkerA);
  size_t leased_b = find(expired, "task_leased", 2);
  ASSERT_LT(leased_b, task.size());
  EXPECT_EQ(task[leased_b]->worker_id(), kWorkerB);
  size_t completed = find(leased_b, "task_completed", 2);
  ASSERT_LT(completed, task.size());
  if (!task[completed]->worker_id().empty()) {
    EXPECT_EQ(task[completed]->worker_id(), kWorkerB);
  }
  // Attempt 1 never completed, and nothing ran after attempt 2's lease.
  EXPECT_EQ(find(0, "task_completed", 1), task.size());
  EXPECT_EQ(find(0, "task_leased", 3), task.size());

  for (const v1::StoreStep& step : done->steps()) {
    EXPECT_EQ(step.status(), v1::SUCCEEDED) << step.ShortDebugString();
    if (step.store() == held->store()) {
      EXPECT_EQ(step.attempts(), 2u);
      EXPECT_EQ(step.worker_id(), kWorkerB);
    }
  }
  (*process_b)->Terminate();
  dsard->process->Terminate();
}

}  // namespace
}  // namespace dsar::testing
