// A worker dies holding a lease: the lease expires and another worker runs
// the task again under a higher attempt number, which is the only completion
// accepted. Workers SIGKILLed at random moments of erasures leave every
// store as a finished erasure would: the JSON-lines log's erase journal is
// finished by the next worker (workers/connectors/jsonl.h).

#include <signal.h>
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
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

// dsard on `dir`/data with 2 s leases, so a killed worker's tasks come
// back quickly.
absl::StatusOr<RunningDsard> StartShortLeaseDsard(
    const TempDir& dir, const std::string& inventory) {
  DsardOptions options;
  options.data_dir = dir.Join("data");
  options.inventory = inventory;
  options.lease_seconds = 2;
  return StartDsard(options, dir.path());
}

TEST(WorkerKillTest, ExpiredLeaseIsRetriedByAnotherWorker) {
  TempDir dir("dsar-worker-kill");
  absl::StatusOr<std::string> inventory = GenerateSampleStores(dir.path(), 50);
  ASSERT_TRUE(inventory.ok()) << inventory.status();

  absl::StatusOr<RunningDsard> dsard = StartShortLeaseDsard(dir, *inventory);
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
  SCOPED_TRACE(EventHistory(*events));

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

int64_t CountRows(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  int64_t count = -1;
  if (sqlite3_open(path.c_str(), &db) == SQLITE_OK) {
    sqlite3_stmt* statement = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &statement, nullptr) ==
            SQLITE_OK &&
        sqlite3_step(statement) == SQLITE_ROW) {
      count = sqlite3_column_int64(statement, 0);
    }
    sqlite3_finalize(statement);
  }
  sqlite3_close(db);
  return count;
}

// The user_id of a line of the sample activity log; -1 when it has none.
int64_t UserIdOf(const std::string& line) {
  nlohmann::json event = nlohmann::json::parse(line, nullptr, false);
  if (!event.is_object() || !event.contains("user_id") ||
      !event["user_id"].is_number_integer()) {
    return -1;
  }
  return event["user_id"].get<int64_t>();
}

TEST(WorkerKillTest, ErasuresSurviveWorkersKilledAtRandomMoments) {
  std::mt19937_64 random(
      ChooseSeed("worker_kill_test", "DSAR_WORKER_KILL_SEED"));
  constexpr int kPeople = 120;
  constexpr int kErased = 40;  // People 1..kErased.
  constexpr int kKills = 10;

  TempDir dir("dsar-worker-kill-erase");
  absl::StatusOr<std::string> inventory =
      GenerateSampleStores(dir.path(), kPeople);
  ASSERT_TRUE(inventory.ok()) << inventory.status();
  const std::string log = dir.Join("activity.jsonl");
  absl::StatusOr<std::string> before = ReadFile(log);
  ASSERT_TRUE(before.ok()) << before.status();

  absl::StatusOr<RunningDsard> dsard = StartShortLeaseDsard(dir, *inventory);
  ASSERT_TRUE(dsard.ok()) << dsard.status();
  auto stub = v1::DsarService::NewStub(LoopbackChannel(dsard->port));
  std::vector<std::string> ids;
  for (int person = 1; person <= kErased; ++person) {
    v1::CreateRequestRequest request = RequestForEmail(
        v1::ERASURE, absl::StrCat("person", person, "@example.com"),
        absl::StrCat("kill-erase-", person));
    request.mutable_verified()->set_method("logged_in_session");
    request.mutable_verified()->set_evidence_ref("worker-kill-test");
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::Request created;
    grpc::Status status = stub->CreateRequest(&context, request, &created);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ids.push_back(created.id());
  }

  WorkerOptions worker;
  worker.coordinator_port = dsard->port;
  worker.inventory = *inventory;
  worker.worker_id = "worker-k";
  // Each worker is killed a random moment after it was seen holding a
  // lease, while requests are unfinished.
  auto leased_now = [&]() {
    for (const std::string& id : ids) {
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
      v1::GetRequestRequest get;
      get.set_id(id);
      v1::Request request;
      if (!stub->GetRequest(&context, get, &request).ok()) continue;
      for (const v1::StoreStep& step : request.steps()) {
        if (step.status() == v1::LEASED) return true;
      }
    }
    return false;
  };
  std::uniform_int_distribution<int> pause_ms(0, 40);
  for (int kill = 0; kill < kKills; ++kill) {
    absl::StatusOr<std::unique_ptr<Process>> process =
        StartWorker(worker, dir.path());
    ASSERT_TRUE(process.ok()) << process.status();
    absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (!leased_now() && absl::Now() < give_up) {
      absl::SleepFor(absl::Milliseconds(2));
    }
    absl::SleepFor(absl::Milliseconds(pause_ms(random)));
    (*process)->Kill();
  }
  absl::StatusOr<std::unique_ptr<Process>> last =
      StartWorker(worker, dir.path());
  ASSERT_TRUE(last.ok()) << last.status();
  for (const std::string& id : ids) {
    absl::StatusOr<v1::Request> done =
        WaitUntilTerminal(*stub, id, absl::Seconds(120));
    ASSERT_TRUE(done.ok()) << done.status();
    EXPECT_EQ(done->status(), v1::COMPLETED) << done->ShortDebugString();
  }
  (*last)->Terminate();
  int retried = 0;
  for (const std::string& id : ids) {
    absl::StatusOr<std::vector<v1::Event>> events = ListAllEvents(*stub, id);
    ASSERT_TRUE(events.ok()) << events.status();
    for (const v1::Event& event : *events) {
      if (event.kind() == "lease_expired") ++retried;
    }
  }
  std::printf("worker_kill_test: %d kills, %d leases expired and re-run\n",
              kKills, retried);

  // The log: every line where it was, the erased people's emptied to an
  // empty object of the same length, every other line byte for byte.
  absl::StatusOr<std::string> after = ReadFile(log);
  ASSERT_TRUE(after.ok()) << after.status();
  ASSERT_EQ(after->size(), before->size());
  std::vector<std::string> old_lines = absl::StrSplit(*before, '\n');
  std::vector<std::string> new_lines = absl::StrSplit(*after, '\n');
  ASSERT_EQ(new_lines.size(), old_lines.size());
  int erased_lines = 0;
  for (size_t i = 0; i < old_lines.size(); ++i) {
    const std::string& line = old_lines[i];
    int64_t user = UserIdOf(line);
    if (user >= 1 && user <= kErased) {
      std::string emptied(line.size(), ' ');
      emptied.front() = '{';
      emptied.back() = '}';
      EXPECT_EQ(new_lines[i], emptied) << "line " << i + 1;
      ++erased_lines;
    } else {
      EXPECT_EQ(new_lines[i], line) << "line " << i + 1;
    }
  }
  EXPECT_GT(erased_lines, 0);
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    std::string name = entry.path().filename().string();
    EXPECT_EQ(name.find(".dsar-erase"), std::string::npos) << name;
    EXPECT_EQ(name.find(".dsar-rewrite"), std::string::npos) << name;
  }
  // The SQLite stores: the erased people are gone, the others all there.
  EXPECT_EQ(CountRows(dir.Join("accounts.db"), "SELECT count(*) FROM users"),
            kPeople - kErased);
  EXPECT_EQ(CountRows(dir.Join("accounts.db"),
                      absl::StrCat("SELECT count(*) FROM users WHERE id <= ",
                                   kErased)),
            0);
  EXPECT_EQ(CountRows(dir.Join("shop.db"),
                      absl::StrCat("SELECT count(*) FROM orders WHERE "
                                   "user_id <= ",
                                   kErased)),
            0);
  EXPECT_GT(CountRows(dir.Join("shop.db"), "SELECT count(*) FROM orders"), 0);
  dsard->process->Terminate();
}

}  // namespace
}  // namespace dsar::testing
