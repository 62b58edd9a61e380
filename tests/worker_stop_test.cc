// SIGTERM stops dsar-worker within a few seconds whatever it waits for (a
// coordinator that does not answer, a store it cannot lock), with exit code
// 0; the task it held is abandoned and runs again elsewhere once its lease
// expires.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "dsar/v1/admin.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/dsar_cluster.h"
#include "tests/process_harness.h"

namespace dsar::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kWorkerA[] = "worker-a";
constexpr char kWorkerB[] = "worker-b";

// Generous: the worker stops within about two seconds (its report grace);
// before this was fixed it took the rest of its long-poll (a minute here)
// or, for a store it waited on, forever.
constexpr absl::Duration kStopBound = absl::Seconds(10);

// SIGTERMs `worker` and waits up to kStopBound for it to exit. Returns its
// exit code (nullopt if it is still running) and prints how long it took.
std::optional<int> TerminateAndTime(Process& worker, const char* during) {
  absl::Time start = absl::Now();
  EXPECT_EQ(::kill(worker.pid(), SIGTERM), 0);
  std::optional<int> code = worker.WaitForExit(kStopBound);
  std::printf("dsar-worker exited %s after SIGTERM %s\n",
              code.has_value()
                  ? absl::FormatDuration(absl::Now() - start).c_str()
                  : "not within the bound",
              during);
  return code;
}

// A loopback port that accepts TCP connections and never says a word: a
// coordinator that is up but does not answer.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (fd_ < 0 ||
        ::bind(fd_, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) !=
            0) {
      ADD_FAILURE() << "cannot listen on loopback";
      return;
    }
    port_ = ntohs(address.sin_port);
  }
  ~SilentListener() {
    for (int fd : accepted_) ::close(fd);
    if (fd_ >= 0) ::close(fd_);
  }

  int port() const { return port_; }

  // Waits up to `timeout` for a client to connect and keeps the connection
  // open, silent. False when none came.
  bool AcceptOne(absl::Duration timeout) {
    pollfd ready{fd_, POLLIN, 0};
    if (::poll(&ready, 1,
               static_cast<int>(absl::ToInt64Milliseconds(timeout))) != 1) {
      return false;
    }
    int fd = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return false;
    accepted_.push_back(fd);
    return true;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::vector<int> accepted_;
};

TEST(WorkerStopTest, StopsWhilePollingACoordinatorThatNeverAnswers) {
  TempDir dir("dsar-worker-stop-silent");
  absl::StatusOr<std::string> inventory = GenerateSampleStores(dir.path(), 5);
  ASSERT_TRUE(inventory.ok()) << inventory.status();
  SilentListener coordinator;
  ASSERT_NE(coordinator.port(), 0);

  WorkerOptions options;
  options.coordinator_port = coordinator.port();
  options.inventory = *inventory;
  options.worker_id = kWorkerA;
  options.poll_wait_ms = 60000;
  absl::StatusOr<std::unique_ptr<Process>> worker =
      StartWorker(options, dir.path());
  ASSERT_TRUE(worker.ok()) << worker.status();
  // Connected: its poll waits for an answer that never comes.
  ASSERT_TRUE(coordinator.AcceptOne(absl::Seconds(30)))
      << ReadFileOrEmpty((*worker)->log_path());

  std::optional<int> code = TerminateAndTime(**worker, "mid-poll (silent)");
  std::string log = ReadFileOrEmpty((*worker)->log_path());
  ASSERT_TRUE(code.has_value()) << "still running; log:\n" << log;
  EXPECT_EQ(*code, 0) << log;
  EXPECT_THAT(log, HasSubstr(absl::StrCat("worker ", kWorkerA, ": stopped")));
}

TEST(WorkerStopTest, StopsWhilePollingAStoppedDsard) {
  TempDir dir("dsar-worker-stop-sigstop");
  absl::StatusOr<std::string> inventory = GenerateSampleStores(dir.path(), 5);
  ASSERT_TRUE(inventory.ok()) << inventory.status();
  DsardOptions dsard_options;
  dsard_options.data_dir = dir.Join("data");
  dsard_options.inventory = *inventory;
  absl::StatusOr<RunningDsard> dsard = StartDsard(dsard_options, dir.path());
  ASSERT_TRUE(dsard.ok()) << dsard.status();

  WorkerOptions options;
  options.coordinator_port = dsard->port;
  options.inventory = *inventory;
  options.worker_id = kWorkerA;
  options.poll_wait_ms = 60000;
  absl::StatusOr<std::unique_ptr<Process>> worker =
      StartWorker(options, dir.path());
  ASSERT_TRUE(worker.ok()) << worker.status();

  // dsard has seen the worker poll: a long-poll is now in flight.
  auto admin = v1::AdminService::NewStub(LoopbackChannel(dsard->port));
  bool seen = false;
  for (absl::Time deadline = absl::Now() + absl::Seconds(30);
       !seen && absl::Now() < deadline;) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    v1::ListWorkersResponse workers;
    if (admin->ListWorkers(&context, v1::ListWorkersRequest(), &workers).ok()) {
      seen = std::any_of(
          workers.workers().begin(), workers.workers().end(),
          [](const v1::WorkerInfo& w) { return w.worker_id() == kWorkerA; });
    }
  }
  ASSERT_TRUE(seen) << "dsard never saw the worker";
  ASSERT_EQ(::kill(dsard->process->pid(), SIGSTOP), 0);

  std::optional<int> code = TerminateAndTime(**worker, "mid-poll (SIGSTOP)");
  ::kill(dsard->process->pid(), SIGCONT);
  std::string log = ReadFileOrEmpty((*worker)->log_path());
  ASSERT_TRUE(code.has_value()) << "still running; log:\n" << log;
  EXPECT_EQ(*code, 0) << log;
  dsard->process->Terminate();
}

// Polls GetRequest until the step of `store` is LEASED by `worker_id`.
absl::Status WaitForStoreLeasedBy(v1::DsarService::Stub& stub,
                                  const std::string& id,
                                  const std::string& store,
                                  const std::string& worker_id) {
  return WaitForRequest(
             stub, id, absl::StrCat(store, " leased by ", worker_id),
             [&](const v1::Request& r) {
               return std::any_of(r.steps().begin(), r.steps().end(),
                                  [&](const v1::StoreStep& step) {
                                    return step.store() == store &&
                                           step.status() == v1::LEASED &&
                                           step.worker_id() == worker_id;
                                  });
             },
             absl::Seconds(60))
      .status();
}

TEST(WorkerStopTest, StoppedWorkersTaskRunsAgainOnceItsLeaseExpires) {
  TempDir dir("dsar-worker-stop-task");
  absl::StatusOr<std::string> inventory = GenerateSampleStores(dir.path(), 50);
  ASSERT_TRUE(inventory.ok()) << inventory.status();
  // Another writer holds the activity log's lock (jsonl.h): the worker's
  // task on it waits for as long as that lasts.
  int log_lock = ::open(dir.Join("activity.jsonl").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(log_lock, 0);
  ASSERT_EQ(::flock(log_lock, LOCK_EX), 0);

  DsardOptions dsard_options;
  dsard_options.data_dir = dir.Join("data");
  dsard_options.inventory = *inventory;
  // Long enough that a heartbeat (every third of it) still arrives on a
  // loaded machine before the stop: with 2 s, a late one under CI load lost
  // the lease first, and the worker then (rightly) had nothing to abandon.
  dsard_options.lease_seconds = 4;
  absl::StatusOr<RunningDsard> dsard = StartDsard(dsard_options, dir.path());
  ASSERT_TRUE(dsard.ok()) << dsard.status();
  auto stub = v1::DsarService::NewStub(LoopbackChannel(dsard->port));

  WorkerOptions worker_a;
  worker_a.coordinator_port = dsard->port;
  worker_a.inventory = *inventory;
  worker_a.worker_id = kWorkerA;
  absl::StatusOr<std::unique_ptr<Process>> process_a =
      StartWorker(worker_a, dir.path());
  ASSERT_TRUE(process_a.ok()) << process_a.status();

  grpc::ClientContext create_context;
  create_context.set_deadline(
      absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  v1::Request created;
  grpc::Status created_status = stub->CreateRequest(
      &create_context,
      RequestForEmail(v1::ACCESS, "person7@example.com", "worker-stop-1"),
      &created);
  ASSERT_TRUE(created_status.ok()) << created_status.error_message();
  absl::Status held =
      WaitForStoreLeasedBy(*stub, created.id(), "activity", kWorkerA);
  ASSERT_TRUE(held.ok()) << held;

  std::optional<int> code =
      TerminateAndTime(**process_a, "while its task waits for a lock");
  std::string log = ReadFileOrEmpty((*process_a)->log_path());
  ::close(log_lock);  // Lets a worker that ignored the stop go on.
  ASSERT_TRUE(code.has_value()) << "still running; log:\n" << log;
  EXPECT_EQ(*code, 0) << log;
  EXPECT_THAT(log, HasSubstr("stopping: abandoned task"));
  EXPECT_THAT(log, HasSubstr("(lease will expire)"));

  WorkerOptions worker_b = worker_a;
  worker_b.worker_id = kWorkerB;
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
  // Worker A's attempt was abandoned, not reported: its lease expired (the
  // only failure of the task) and worker B ran the task again.
  bool expired = false;
  bool completed_by_b = false;
  for (const v1::Event& event : *events) {
    if (event.store() != "activity") continue;
    if (event.kind() == "task_failed") {
      EXPECT_THAT(event.detail(), HasSubstr("States.HeartbeatTimeout"));
    }
    if (event.kind() == "lease_expired" && event.worker_id() == kWorkerA) {
      expired = true;
    }
    if (event.kind() == "task_completed" && event.attempt() >= 2) {
      completed_by_b = true;
    }
  }
  EXPECT_TRUE(expired);
  EXPECT_TRUE(completed_by_b);
  for (const v1::StoreStep& step : done->steps()) {
    if (step.store() == "activity") {
      EXPECT_EQ(step.worker_id(), kWorkerB);
    }
  }
  (*process_b)->Terminate();
  dsard->process->Terminate();
}

}  // namespace
}  // namespace dsar::testing
