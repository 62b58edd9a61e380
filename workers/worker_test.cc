#include "workers/worker.h"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <future>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/admin_server.h"
#include "common/files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/connector_errors.h"

namespace dsar {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

v1::Task TaskFor(const std::string& operation) {
  v1::Task task;
  task.set_task_id("dsr_1/0/0");
  task.set_store("accounts");
  task.set_operation(operation);
  return task;
}

TEST(TaskOperationToRun, ParsesEveryWireName) {
  for (TaskOperation operation : kAllTaskOperations) {
    absl::StatusOr<TaskOperation> parsed =
        TaskOperationToRun(TaskFor(std::string(TaskOperationName(operation))));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, operation);
  }
}

TEST(TaskOperationToRun, UnknownOperationIsAPermanentErrorNamingIt) {
  for (const char* name : {"shred", "", "Erase", "dsar:worker.erase"}) {
    absl::StatusOr<TaskOperation> parsed = TaskOperationToRun(TaskFor(name));
    ASSERT_FALSE(parsed.ok()) << '"' << name << '"';
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    std::string error = ConnectorErrorName(parsed.status());
    EXPECT_EQ(error, kErrorInvalidValue);
    EXPECT_FALSE(IsTransientErrorName(error));
    EXPECT_THAT(std::string(parsed.status().message()),
                HasSubstr(absl::StrCat("\"", name, "\" is unknown")));
    EXPECT_THAT(std::string(parsed.status().message()),
                HasSubstr("export, discover, erase"));
  }
}

// Serves `service` on a free loopback port, set in `port`; null when the
// server cannot start.
std::unique_ptr<grpc::Server> ServeOnLoopback(grpc::Service& service,
                                              int* port) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           port);
  builder.RegisterService(&service);
  return builder.BuildAndStart();
}

// The first attempt of task dsr_1/0/0: `operation` on store "activity"
// for user 42, leased for 30 s.
v1::Task ActivityTaskOfUser42(const std::string& operation) {
  v1::Task task;
  task.set_task_id("dsr_1/0/0");
  task.set_request_id("dsr_1");
  task.set_store("activity");
  task.set_operation(operation);
  task.set_attempt(1);
  task.set_lease_duration_ms(30000);
  v1::SubjectIdentity* identity = task.add_identities();
  identity->set_type(v1::USER_ID);
  identity->set_value("42");
  return task;
}

// A coordinator that answers until the upload starts, then hangs like a
// stopped dsard: the first poll gets an export task, later polls and the
// upload get no answer until Release(). With `read_upload` false it does
// not even read the stream, so the worker's writes block on flow control.
class HangingCoordinator final : public v1::WorkerService::Service {
 public:
  explicit HangingCoordinator(bool read_upload) : read_upload_(read_upload) {}

  grpc::Status PollTask(grpc::ServerContext*, const v1::PollTaskRequest*,
                        v1::PollTaskResponse* response) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!task_given_) {
        task_given_ = true;
        *response->mutable_task() = ActivityTaskOfUser42("export");
        return grpc::Status::OK;
      }
    }
    WaitForRelease();
    return grpc::Status::OK;
  }

  grpc::Status Heartbeat(grpc::ServerContext*, const v1::HeartbeatRequest*,
                         v1::HeartbeatResponse*) override {
    return grpc::Status::OK;
  }

  grpc::Status CompleteTask(grpc::ServerContext*,
                            const v1::CompleteTaskRequest*,
                            v1::CompleteTaskResponse*) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++reports_;
    return grpc::Status::OK;
  }

  grpc::Status FailTask(grpc::ServerContext*, const v1::FailTaskRequest*,
                        v1::FailTaskResponse*) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++reports_;
    return grpc::Status::OK;
  }

  grpc::Status UploadArtifact(
      grpc::ServerContext*,
      grpc::ServerReader<v1::UploadArtifactRequest>* reader,
      v1::UploadArtifactResponse*) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      upload_started_ = true;
    }
    cv_.notify_all();
    v1::UploadArtifactRequest message;
    if (read_upload_) {
      while (reader->Read(&message)) {
      }
    }
    WaitForRelease();
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "released");
  }

  // True once an upload has begun, waiting up to `timeout`.
  bool WaitForUpload(std::chrono::seconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return upload_started_; });
  }

  // Lets every hanging call return (before the server shuts down).
  void Release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      released_ = true;
    }
    cv_.notify_all();
  }

  int reports() {
    std::lock_guard<std::mutex> lock(mu_);
    return reports_;
  }

 private:
  void WaitForRelease() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return released_; });
  }

  const bool read_upload_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool task_given_ = false;
  bool upload_started_ = false;
  bool released_ = false;
  int reports_ = 0;
};

class WorkerStopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/worker_stop_test.XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A jsonl store "activity" of `lines` lines, all about user 42.
  std::shared_ptr<const Inventory> ActivityStore(int lines) {
    std::string log;
    for (int i = 0; i < lines; ++i) {
      absl::StrAppend(&log, R"({"user_id":42,"n":)", i,
                      R"(,"padding":"0123456789abcdef0123456789abcdef"})",
                      "\n");
    }
    EXPECT_TRUE(WriteFileAtomically(dir_ + "/activity.jsonl", log).ok());
    absl::StatusOr<Inventory> inventory = Inventory::Parse(R"yaml(
stores:
  - {name: activity, kind: jsonl, path: activity.jsonl,
     identity_fields: {user_id: user_id}}
)yaml",
                                                           dir_);
    EXPECT_TRUE(inventory.ok()) << inventory.status();
    return std::make_shared<const Inventory>(std::move(*inventory));
  }

  std::unique_ptr<Worker> MakeWorker(const std::string& address,
                                     int poll_wait_ms, int store_lines = 10) {
    Worker::Options options;
    options.coordinator_address = address;
    options.worker_id = "worker-stop-test";
    options.stores = {"activity"};
    options.concurrency = 1;
    options.poll_wait_ms = poll_wait_ms;
    absl::StatusOr<std::unique_ptr<Worker>> worker =
        Worker::Create(options, ActivityStore(store_lines));
    EXPECT_TRUE(worker.ok()) << worker.status();
    return std::move(*worker);
  }

  // Runs a worker (whose export has `store_lines` lines) against a
  // HangingCoordinator until its upload has begun, stops it, and checks
  // that it ended within kStopBound without reporting the task.
  void StopDuringUpload(bool read_upload, int store_lines);

  std::string dir_;
};

// The stop must not wait for a call to a coordinator that does not answer;
// the bound is generous (the old worker took the whole call deadline: a
// minute for a poll, 30 minutes for an upload).
constexpr std::chrono::seconds kStopBound{10};

// Calls Stop() and waits up to kStopBound for Run() (started as `run`) to
// return, failing the test if it does not; prints how long it took.
void StopWithinBound(Worker& worker, std::future<void>& run,
                     const char* during) {
  auto start = std::chrono::steady_clock::now();
  worker.Stop();
  bool ended = run.wait_for(kStopBound) == std::future_status::ready;
  long long took = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - start)
                       .count();
  EXPECT_TRUE(ended) << "Run() still running " << kStopBound.count()
                     << " s after Stop() " << during;
  std::printf("Run() returned %lld ms after Stop() %s\n", took, during);
}

TEST_F(WorkerStopTest, StopEndsAPollToACoordinatorThatNeverAnswers) {
  // Accepts TCP connections (the kernel does) and never speaks HTTP/2.
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(
      ::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)),
      0);
  ASSERT_EQ(::listen(listener, 16), 0);
  socklen_t length = sizeof(address);
  ASSERT_EQ(
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length),
      0);
  std::unique_ptr<Worker> worker = MakeWorker(
      absl::StrCat("127.0.0.1:", ntohs(address.sin_port)), /*poll_wait_ms=*/
      60000);
  std::future<void> run =
      std::async(std::launch::async, [&] { worker->Run(); });
  // The poll is under way once the worker has connected.
  pollfd ready{listener, POLLIN, 0};
  ASSERT_EQ(::poll(&ready, 1, /*timeout_ms=*/10000), 1)
      << "the worker never connected";
  int connection = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(connection, 0);

  StopWithinBound(*worker, run, "mid-poll");
  run.wait();
  ::close(connection);
  ::close(listener);
}

void WorkerStopTest::StopDuringUpload(bool read_upload, int store_lines) {
  HangingCoordinator coordinator(read_upload);
  int port = 0;
  std::unique_ptr<grpc::Server> server = ServeOnLoopback(coordinator, &port);
  ASSERT_NE(server, nullptr);
  std::unique_ptr<Worker> worker =
      MakeWorker(absl::StrCat("127.0.0.1:", port), 1000, store_lines);
  std::future<void> run =
      std::async(std::launch::async, [&] { worker->Run(); });
  if (coordinator.WaitForUpload(std::chrono::seconds(30))) {
    // Connected: the upload is under way on the channel.
    EXPECT_TRUE(worker->Readiness().ok()) << worker->Readiness();
    StopWithinBound(*worker, run, "mid-upload");
  } else {
    ADD_FAILURE() << "the worker never started its upload";
    worker->Stop();
  }
  coordinator.Release();  // Only now: a worker that waited for it ends.
  run.wait();
  // Abandoned, not failed: the lease expires and the task runs again.
  EXPECT_EQ(coordinator.reports(), 0);
  EXPECT_FALSE(worker->Liveness().ok());
  const std::string metrics =
      AdminServer::RenderMetrics({worker->metrics_registry()});
  EXPECT_THAT(metrics, HasSubstr("dsar_worker_tasks_total{operation=\"export\""
                                 ",outcome=\"abandoned\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("dsar_worker_polls_total{result=\"task\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("dsar_worker_tasks_in_flight 0"));
  EXPECT_THAT(metrics,
              HasSubstr("dsar_worker_task_duration_seconds_count{operation="
                        "\"export\",store=\"activity\"} 1"));
  // The identity the task carried (user 42) is in no label.
  EXPECT_THAT(metrics, Not(HasSubstr("\"42\"")));
  server->Shutdown();
}

TEST_F(WorkerStopTest, NotReadyWithoutACoordinator) {
  // Nothing listens on port 1.
  std::unique_ptr<Worker> worker = MakeWorker("127.0.0.1:1", 1000);
  absl::Status ready = worker->Readiness();
  EXPECT_EQ(ready.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(ready.message()), HasSubstr("not connected"));
  EXPECT_TRUE(worker->Liveness().ok());
}

TEST_F(WorkerStopTest, StopEndsAnUploadWaitingForTheCoordinatorsAnswer) {
  StopDuringUpload(/*read_upload=*/true, /*store_lines=*/10);
}

TEST_F(WorkerStopTest, StopEndsAnUploadBlockedOnFlowControl) {
  // Megabytes: far more than the stream's flow-control window.
  StopDuringUpload(/*read_upload=*/false, /*store_lines=*/200000);
}

TEST_F(WorkerStopTest, StopBeforeRunEndsRunAtOnce) {
  std::unique_ptr<Worker> worker = MakeWorker("127.0.0.1:1", 60000);
  worker->Stop();
  std::future<void> run =
      std::async(std::launch::async, [&] { worker->Run(); });
  EXPECT_EQ(run.wait_for(kStopBound), std::future_status::ready);
}

// A coordinator that hands out `tasks` discover tasks leased together
// (dsr_1/0/0, dsr_1/0/1, ...) to the first poll, then answers polls empty,
// and counts the reports it gets by the way they came: over ReportTasks
// (and in how many messages), or as unary calls. With `has_stream` false
// it answers ReportTasks as a dsard without it does (UNIMPLEMENTED).
class ReportCountingCoordinator final : public v1::WorkerService::Service {
 public:
  explicit ReportCountingCoordinator(bool has_stream, int tasks = 1)
      : has_stream_(has_stream), tasks_(tasks) {}

  // Leases its tasks for `lease_ms` instead of 30 s, and refuses the
  // heartbeats of `lost_task` as a dsard that took its lease back.
  void LeaseBriefly(int lease_ms, std::string lost_task) {
    std::lock_guard<std::mutex> lock(mu_);
    lease_ms_ = lease_ms;
    lost_task_ = std::move(lost_task);
  }

  grpc::Status PollTask(grpc::ServerContext*,
                        const v1::PollTaskRequest* request,
                        v1::PollTaskResponse* response) override {
    std::unique_lock<std::mutex> lock(mu_);
    ++polls_;
    cv_.notify_all();
    if (!task_given_) {
      task_given_ = true;
      max_tasks_asked_ = request->max_tasks();
      for (int i = 0; i < tasks_; ++i) {
        v1::Task task = ActivityTaskOfUser42("discover");
        task.set_task_id(absl::StrCat("dsr_1/0/", i));
        if (lease_ms_ > 0) task.set_lease_duration_ms(lease_ms_);
        if (i == 0) {
          *response->mutable_task() = std::move(task);
        } else {
          *response->add_more_tasks() = std::move(task);
        }
      }
      return grpc::Status::OK;
    }
    // Nothing more to do: an empty answer once the poll's wait ran out.
    cv_.wait_for(lock, std::chrono::milliseconds(request->wait_ms()));
    return grpc::Status::OK;
  }

  grpc::Status Heartbeat(grpc::ServerContext*,
                         const v1::HeartbeatRequest* request,
                         v1::HeartbeatResponse*) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (request->task_id() == lost_task_) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "lease taken back for the test");
    }
    return grpc::Status::OK;
  }

  grpc::Status CompleteTask(grpc::ServerContext*,
                            const v1::CompleteTaskRequest* request,
                            v1::CompleteTaskResponse*) override {
    Count(request->task_id(), &unary_reports_);
    return grpc::Status::OK;
  }

  grpc::Status ReportTasks(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<v1::TaskReportAnswer, v1::TaskReport>* stream)
      override {
    if (!has_stream_) {
      return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "no ReportTasks");
    }
    v1::TaskReport report;
    while (stream->Read(&report)) {
      v1::TaskReportAnswer answer;
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++stream_messages_;
      }
      for (const v1::TaskReport& more : report.more()) {
        Count(more.complete().task_id(), &stream_reports_);
        answer.add_more();
      }
      Count(report.complete().task_id(), &stream_reports_);
      if (!stream->Write(answer)) break;
    }
    return grpc::Status::OK;
  }

  // True once `n` reports came (either way), waiting up to `timeout`.
  bool WaitForReports(int n, std::chrono::seconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout,
                        [&] { return unary_reports_ + stream_reports_ >= n; });
  }
  int unary_reports() {
    std::lock_guard<std::mutex> lock(mu_);
    return unary_reports_;
  }
  int stream_reports() {
    std::lock_guard<std::mutex> lock(mu_);
    return stream_reports_;
  }
  int stream_messages() {
    std::lock_guard<std::mutex> lock(mu_);
    return stream_messages_;
  }
  // The last task reported, and every task reported.
  std::string reported_task() {
    std::lock_guard<std::mutex> lock(mu_);
    return reported_task_;
  }
  std::set<std::string> reported_tasks() {
    std::lock_guard<std::mutex> lock(mu_);
    return reported_tasks_;
  }
  // True once `n` polls came, waiting up to `timeout`.
  bool WaitForPolls(int n, std::chrono::seconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return polls_ >= n; });
  }
  // PollTaskRequest.max_tasks of the first poll.
  int max_tasks_asked() {
    std::lock_guard<std::mutex> lock(mu_);
    return max_tasks_asked_;
  }

 private:
  void Count(const std::string& task_id, int* counter) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++*counter;
      reported_task_ = task_id;
      reported_tasks_.insert(task_id);
    }
    cv_.notify_all();
  }

  const bool has_stream_;
  const int tasks_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool task_given_ = false;
  int lease_ms_ = 0;
  std::string lost_task_;
  int polls_ = 0;
  int max_tasks_asked_ = 0;
  int unary_reports_ = 0;
  int stream_reports_ = 0;
  int stream_messages_ = 0;
  std::string reported_task_;
  std::set<std::string> reported_tasks_;
};

using WorkerReportTest = WorkerStopTest;

// Runs a worker against `coordinator` until it has reported `tasks`
// tasks, then stops it; returns the worker's metrics.
std::string RunUntilReported(
    ReportCountingCoordinator& coordinator,
    const std::function<std::unique_ptr<Worker>(const std::string&)>&
        make_worker,
    int tasks = 1) {
  int port = 0;
  std::unique_ptr<grpc::Server> server = ServeOnLoopback(coordinator, &port);
  if (server == nullptr) {
    ADD_FAILURE() << "the fake coordinator did not start";
    return "";
  }
  std::unique_ptr<Worker> worker =
      make_worker(absl::StrCat("127.0.0.1:", port));
  std::future<void> run =
      std::async(std::launch::async, [&] { worker->Run(); });
  EXPECT_TRUE(coordinator.WaitForReports(tasks, std::chrono::seconds(30)))
      << "the worker never reported its tasks";
  worker->Stop();
  run.wait();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  return AdminServer::RenderMetrics({worker->metrics_registry()});
}

TEST_F(WorkerReportTest, ReportsOverOneStreamWhenDsardHasIt) {
  ReportCountingCoordinator coordinator(/*has_stream=*/true);
  RunUntilReported(coordinator, [&](const std::string& address) {
    return MakeWorker(address, 200);
  });
  EXPECT_EQ(coordinator.stream_reports(), 1);
  EXPECT_EQ(coordinator.unary_reports(), 0);
  EXPECT_EQ(coordinator.reported_task(), "dsr_1/0/0");
}

TEST_F(WorkerReportTest, ReportsAsUnaryCallsToADsardWithoutTheStream) {
  ReportCountingCoordinator coordinator(/*has_stream=*/false);
  RunUntilReported(coordinator, [&](const std::string& address) {
    return MakeWorker(address, 200);
  });
  EXPECT_EQ(coordinator.unary_reports(), 1);
  EXPECT_EQ(coordinator.stream_reports(), 0);
  EXPECT_EQ(coordinator.reported_task(), "dsr_1/0/0");
}

// Tasks leased together are run by one thread and reported in one
// message, and the worker asks for as many as it is configured to take.
TEST_F(WorkerReportTest, ReportsTasksLeasedTogetherInOneMessage) {
  ReportCountingCoordinator coordinator(/*has_stream=*/true, /*tasks=*/3);
  const std::string metrics = RunUntilReported(
      coordinator,
      [&](const std::string& address) { return MakeWorker(address, 200); },
      /*tasks=*/3);
  EXPECT_THAT(metrics, HasSubstr("dsar_worker_batch_tasks_count 1\n"));
  EXPECT_THAT(metrics, HasSubstr("dsar_worker_batch_tasks_sum 3\n"));
  EXPECT_EQ(coordinator.max_tasks_asked(),
            Worker::Options().max_tasks_per_poll);
  EXPECT_EQ(coordinator.stream_reports(), 3);
  EXPECT_EQ(coordinator.stream_messages(), 1);
  EXPECT_EQ(coordinator.reported_tasks(),
            (std::set<std::string>{"dsr_1/0/0", "dsr_1/0/1", "dsr_1/0/2"}));
}

TEST_F(WorkerReportTest, ReportsTasksLeasedTogetherOneByOneWithoutTheStream) {
  ReportCountingCoordinator coordinator(/*has_stream=*/false, /*tasks=*/3);
  RunUntilReported(
      coordinator,
      [&](const std::string& address) { return MakeWorker(address, 200); },
      /*tasks=*/3);
  EXPECT_EQ(coordinator.unary_reports(), 3);
  EXPECT_EQ(coordinator.reported_tasks(),
            (std::set<std::string>{"dsr_1/0/0", "dsr_1/0/1", "dsr_1/0/2"}));
}

// Every task of a batch is held from its lease on: a task waiting behind
// another is heartbeated, and when dsard takes its lease back meanwhile it
// is never run or reported.
TEST_F(WorkerReportTest, ATaskWhoseLeaseIsLostBeforeItStartsIsNotRun) {
  ReportCountingCoordinator coordinator(/*has_stream=*/true, /*tasks=*/2);
  // Heartbeats every 50 ms; the first task takes 300 ms.
  coordinator.LeaseBriefly(150, "dsr_1/0/1");
  int port = 0;
  std::unique_ptr<grpc::Server> server = ServeOnLoopback(coordinator, &port);
  ASSERT_NE(server, nullptr);
  Worker::Options options;
  options.coordinator_address = absl::StrCat("127.0.0.1:", port);
  options.worker_id = "worker-batch-test";
  options.stores = {"activity"};
  options.concurrency = 1;
  options.poll_wait_ms = 200;
  options.debug_task_delay_ms = 300;
  absl::StatusOr<std::unique_ptr<Worker>> worker =
      Worker::Create(options, ActivityStore(10));
  ASSERT_TRUE(worker.ok()) << worker.status();
  std::future<void> run =
      std::async(std::launch::async, [&] { (*worker)->Run(); });
  // The batch is over when the thread polls again.
  EXPECT_TRUE(coordinator.WaitForPolls(2, std::chrono::seconds(30)));
  (*worker)->Stop();
  run.wait();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  EXPECT_EQ(coordinator.reported_tasks(), (std::set<std::string>{"dsr_1/0/0"}));
}

}  // namespace
}  // namespace dsar
